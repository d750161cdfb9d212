/**
 * `masques-ledger reconcile --rails` on a real local chain (anvil, the precompiled 6-decimals
 * TestUSDC) against the real daemon (issue 13 "Rail reconciliation"): on-chain USDC of the hot
 * wallet and the deposit address, read through the Base chain port, against the ledger's rail
 * accounts read through the daemon's API. Balanced after a verified deposit and a confirmed
 * payout; a deposit not yet credited, and a payment the ledger does not know (paid twice), are
 * drift with exit 1. No mocks: real transactions on anvil, real ledger flows through the daemon.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import type { Address, Hex } from "viem";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { OwnershipPurpose, PayoutState } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { railDrift, reconcileRails, type RailChainFacts } from "../../src/cli/commands/reconcile-rails.js";
import { startAnvil, type Anvil } from "../support/anvil.js";
import { runCli } from "../support/daemon.js";
import { signedPayoutTx, startSettlementHarness, type SettlementHarness } from "./harness.js";

const FLOAT = 500_000_000n; // 500 USDC the operator put on the hot wallet
const AUTHOR = "author-grace";
let chain: Anvil;
let h: SettlementHarness;
let dir: string;
let usdc: Address;
let hotKey: Hex;
let hot: PrivateKeyAccount;
let depositAddress: Address;
let env: Record<string, string>;
let endpoint: string;
let token: string;

async function reconcile() {
  const [r] = await reconcileRails({ env, endpoint, token });
  return r!;
}

beforeAll(async () => {
  chain = await startAnvil();
  dir = await mkdtemp(path.join(tmpdir(), "reconcile-rails-"));
  usdc = await chain.deployToken();
  hotKey = generatePrivateKey();
  hot = await chain.fundedAccount(hotKey, 10n ** 18n);
  depositAddress = privateKeyToAccount(generatePrivateKey()).address;
  await chain.mint(usdc, hot.address, FLOAT);
  await writeFile(path.join(dir, "hot.key"), `${hotKey}\n`, { mode: 0o600 });
  env = {
    BASE_RPC_URL: chain.url,
    BASE_CHAIN_ID: "31337",
    BASE_USDC_ADDRESS: usdc,
    BASE_HOT_WALLET_KEY_FILE: path.join(dir, "hot.key"),
    BASE_DEPOSIT_ADDRESS: depositAddress,
    BASE_FINALITY_DEPTH: "3",
    RECONCILE_BASE_FLOAT_MICRO: String(FLOAT),
  };
  h = await startSettlementHarness();
  endpoint = `http://${h.d.daemon.grpcAddr}`;
  token = await h.d.token("admin", "ops");
}, 240_000);
afterAll(async () => {
  await h?.stop();
  await chain?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("reconcile --rails (Base on anvil)", () => {
  it("no drift on a funded hot wallet with nothing moved; exit 0 from the CLI", async () => {
    const r = await reconcile();
    expect(r).toMatchObject({ rail: "base", ok: true, chain_micro: FLOAT, expected_micro: FLOAT, drift_micro: 0n });
    const cli = await runCli(["reconcile", "--rails", "--endpoint", endpoint, "--token", token, "--json"], env, 120_000);
    expect(cli.stderr).toBe("");
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ ok: true, rails: [{ rail: "base", chain_micro: String(FLOAT), drift_micro: "0" }] });
  }, 180_000);

  it("a deposit on chain is drift until the adapter's verified report credits it", async () => {
    const agent = await chain.fundedAccount(generatePrivateKey(), 10n ** 17n);
    await chain.mint(usdc, agent.address, 20_000_000n);
    await h.d.fundedAgent("rec-agent", 1n);
    const s = await h.settlement("agent", "rec-agent");
    const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.DEPOSIT_SOURCE, rail: Rail.BASE, address: agent.address });
    await s.bindDepositSource({ rail: Rail.BASE, address: agent.address, proof: { challengeId: challenge!.challengeId, signature: await agent.signMessage({ message: challenge!.message }) } });
    const tx = await chain.transfer(usdc, agent, depositAddress, 7_000_000n);
    await chain.mine(2);
    const pending = await reconcile();
    expect(pending).toMatchObject({ ok: false, drift_micro: 7_000_000n });
    expect(pending.detail).toMatch(/more on chain than the ledger credited/);
    const receipt = await chain.publicClient.getTransactionReceipt({ hash: tx });
    const rail = await h.settlement("rail", "base");
    await rail.reportDeposit({ chainId: "eip155:31337", txRef: tx, eventIndex: receipt.logs[0]!.logIndex, fromAddress: agent.address, amountMicro: 7_000_000n, blockNumber: receipt.blockNumber, blockHash: receipt.blockHash, confirmations: 3 });
    expect(await reconcile()).toMatchObject({ ok: true, chain_micro: FLOAT + 7_000_000n, drift_micro: 0n, ledger: { deposits_micro: 7_000_000n } });
  }, 180_000);

  it("a payout paid on chain balances once posted (in flight before); paying it twice is drift, exit 1", async () => {
    await h.earn("rec-payer", 2);
    const dest = privateKeyToAccount(generatePrivateKey());
    await h.prove(AUTHOR, dest);
    const a = await h.settlement("author", AUTHOR);
    const q = (await a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: 600_000n }, idempotencyKey: "rec-1" })).payout!;
    await a.confirmPayout({ payoutId: q.payoutId });
    const net = q.quote!.netMicro;
    const rail = await h.settlement("rail", "base");
    await rail.claimPayouts({ rail: Rail.BASE, maxPayouts: 10 });
    // The harness's signer targets the first contract anvil's deployer creates: our TestUSDC.
    expect(usdc.toLowerCase()).toBe("0x5fbdb2315678afecb367f032d93f642f64180aa3");
    const nonce = await chain.publicClient.getTransactionCount({ address: hot.address });
    const signed = await signedPayoutTx(hot, dest.address, nonce, net);
    await rail.recordSignedTransaction({ payoutId: q.payoutId, signedTransaction: signed.bytes, txRef: signed.hash, replayGuard: BigInt(nonce) });
    await chain.publicClient.sendRawTransaction({ serializedTransaction: `0x${Buffer.from(signed.bytes).toString("hex")}` });
    await chain.mine(3);
    const inFlight = await reconcile();
    expect(inFlight).toMatchObject({ ok: true, drift_micro: -net, ledger: { in_flight_micro: net } });
    const done = await rail.completePayout({ payoutId: q.payoutId, txRef: signed.hash, confirmations: 3 });
    expect(done.payout!.state).toBe(PayoutState.CONFIRMED);
    expect(await reconcile()).toMatchObject({ ok: true, drift_micro: 0n, expected_micro: FLOAT + 7_000_000n - net, ledger: { payouts_micro: net, in_flight_micro: 0n } });

    // The same payout paid again on chain (a double payment the ledger never saw).
    await chain.transfer(usdc, hot, dest.address, net);
    const twice = await reconcile();
    expect(twice).toMatchObject({ ok: false, drift_micro: -net });
    expect(twice.detail).toMatch(/missing on chain beyond the payouts in flight/);
    const cli = await runCli(["reconcile", "--rails", "--endpoint", endpoint, "--token", token], env, 120_000);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain("[DRIFT] base:");
  }, 240_000);

  it("bad configuration is a usage error naming the variable (exit 2)", async () => {
    const cli = await runCli(["reconcile", "--rails", "--endpoint", endpoint, "--token", token], { ...env, RECONCILE_BASE_FLOAT_MICRO: "-1" }, 120_000);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain("RECONCILE_BASE_FLOAT_MICRO");
    const none = await runCli(["reconcile", "--rails", "--endpoint", endpoint, "--token", token], {}, 120_000);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("BASE_RPC_URL");
  }, 180_000);
});

describe("railDrift (pure)", () => {
  const chainFacts = (usdc_micro: bigint): RailChainFacts => ({ hot_wallet: "h", hot_usdc_micro: usdc_micro, deposit_account: "d", deposit_usdc_micro: 0n, native_balance: 0n, native_unit: "lamports" });
  it("allows exactly the payouts in flight below expected, nothing above", () => {
    const ledger = { deposits_micro: 10n, payouts_micro: 4n, in_flight_micro: 3n, fees_micro: 0n };
    expect(railDrift("solana", ledger, chainFacts(106n), 100n).ok).toBe(true);
    expect(railDrift("solana", ledger, chainFacts(103n), 100n).ok).toBe(true);
    expect(railDrift("solana", ledger, chainFacts(102n), 100n)).toMatchObject({ ok: false, drift_micro: -4n });
    expect(railDrift("solana", ledger, chainFacts(107n), 100n)).toMatchObject({ ok: false, drift_micro: 1n });
  });
});
