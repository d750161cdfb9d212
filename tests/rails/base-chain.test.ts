/**
 * The Base rail's chain port against a REAL chain: one anvil per file (tests/support/anvil.ts),
 * the precompiled 6-decimals TestUSDC, viem. Each test runs between evm_snapshot and evm_revert.
 * Finality depth 3 here (confirmations, the including block counts as 1).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { encodeFunctionData, erc20Abi, getAddress, parseAbi, parseUnits, type Address, type Hash, type Hex } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import {
  BaseChainStartupError,
  PAYOUT_GAS_LIMIT,
  connectBaseChain,
  formatCursor,
  parseCursor,
  type BaseChain,
  type DepositFacts,
  type SignedPayout,
} from "../../src/rails/base/chain.js";
import { loadBaseRailConfig, loadHotWalletKey, type BaseRailConfig } from "../../src/rails/base/config.js";
import { DEV_KEYS, startAnvil, type Anvil } from "../support/anvil.js";

const DEPTH = 3;
/** Decimal USDC string → micro (base units), exact. */
const USDC = (decimal: string): bigint => parseUnits(decimal, 6);

let chain: Anvil;
let usdc: Address;
let otherToken: Address;
let agent: PrivateKeyAccount; // sends deposits
let depositAddress: Address;
let author: Address; // receives payouts
let hotKey: Hex;
let hot: Address;
let dir: string;
let config: BaseRailConfig;
let port: BaseChain;
let snap: Hex;

function envFor(over: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    BASE_RPC_URL: chain.url,
    BASE_CHAIN_ID: "31337",
    BASE_USDC_ADDRESS: usdc.toLowerCase(), // parsed into EIP-55
    BASE_HOT_WALLET_KEY_FILE: path.join(dir, "hot.key"),
    BASE_DEPOSIT_ADDRESS: depositAddress,
    BASE_FINALITY_DEPTH: String(DEPTH),
    BASE_POLL_INTERVAL_MS: "50",
    ...over,
  };
}

beforeAll(async () => {
  chain = await startAnvil();
  dir = await mkdtemp(path.join(tmpdir(), "base-rail-"));
  usdc = await chain.deployToken();
  otherToken = await chain.deployToken();
  agent = await chain.fundedAccount(DEV_KEYS[1], 10n ** 18n);
  depositAddress = privateKeyToAccount(DEV_KEYS[2]).address;
  author = privateKeyToAccount(`0x${"c3".repeat(32)}`).address;
  hotKey = `0x${"d4".repeat(32)}`;
  hot = (await chain.fundedAccount(hotKey, 10n ** 18n)).address;
  await chain.mint(usdc, agent.address, USDC("1000"));
  await chain.mint(otherToken, agent.address, USDC("1000"));
  await chain.mint(usdc, hot, USDC("500"));
  await writeFile(path.join(dir, "hot.key"), `${hotKey}\n`, { mode: 0o600 });
  config = loadBaseRailConfig(envFor());
  port = await connectBaseChain(config, loadHotWalletKey(config.hot_wallet_key_file));
});

afterAll(async () => {
  await chain?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  snap = await chain.snapshot();
});
afterEach(async () => {
  await chain.setAutomine(true);
  await chain.revert(snap);
});

/** The single log of an ERC-20 transfer tx. */
async function logIndexOf(hash: Hash): Promise<number> {
  const r = await chain.publicClient.getTransactionReceipt({ hash });
  expect(r.logs).toHaveLength(1);
  return (r.logs[0] as { logIndex: number }).logIndex;
}

async function balanceOf(token: Address, who: Address): Promise<bigint> {
  return chain.publicClient.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [who] });
}

/** All Transfer logs of USDC from the hot wallet (payouts actually made on chain). */
async function payoutsOnChain(): Promise<{ to: Address; value: bigint; tx: Hash }[]> {
  const logs = await chain.publicClient.getLogs({
    address: usdc,
    event: parseAbi(["event Transfer(address indexed from, address indexed to, uint256 value)"])[0],
    args: { from: hot },
    fromBlock: 0n,
    toBlock: "latest",
  });
  return logs.map((l) => ({ to: l.args.to as Address, value: l.args.value as bigint, tx: l.transactionHash }));
}

describe("start-up and configuration", () => {
  test("configuration is parsed from the environment: EIP-55 addresses, the key from its file", () => {
    expect(config.token_address).toBe(getAddress(usdc));
    expect(config.token_address).not.toBe(usdc.toLowerCase());
    expect(config).toMatchObject({ chain_id: 31337, finality_depth: DEPTH, poll_interval_ms: 50, log_range_max_blocks: 2000 });
    expect(port.hot_wallet).toBe(hot);
  });

  test("a node on another chain, or a token address that is not a 6-decimals ERC-20, refuses to start", async () => {
    await expect(connectBaseChain({ ...config, chain_id: 8453 }, hotKey)).rejects.toThrow(BaseChainStartupError);
    await expect(connectBaseChain({ ...config, chain_id: 8453 }, hotKey)).rejects.toThrow(/BASE_CHAIN_ID is 8453 but the node at BASE_RPC_URL is on chain 31337/);
    await expect(connectBaseChain({ ...config, token_address: agent.address }, hotKey)).rejects.toThrow(/BASE_USDC_ADDRESS .* does not answer decimals\(\)/);
  });
});

describe("deposits: verifyDeposit", () => {
  test("a deposit is refused below finality depth and verified at depth with the chain's facts", async () => {
    const tx = await chain.transfer(usdc, agent, depositAddress, USDC("5"));
    const log_index = await logIndexOf(tx);
    const r1 = await port.verifyDeposit({ tx_hash: tx, log_index });
    expect(r1).toMatchObject({ ok: false, refusal: { kind: "below_finality", confirmations: 1n, finality_depth: DEPTH } });
    await chain.mine(DEPTH - 2);
    expect(await port.verifyDeposit({ tx_hash: tx, log_index })).toMatchObject({ ok: false, refusal: { kind: "below_finality", confirmations: BigInt(DEPTH - 1) } });
    await chain.mine(1);
    const r = await port.verifyDeposit({ tx_hash: tx, log_index, claimed: { from: agent.address, amount_micro: USDC("5") } });
    const receipt = await chain.publicClient.getTransactionReceipt({ hash: tx });
    expect(r).toEqual({
      ok: true,
      deposit: {
        chain_id: 31337,
        tx_hash: tx,
        log_index,
        token: getAddress(usdc),
        from: agent.address,
        to: depositAddress,
        amount_micro: 5_000_000n,
        block_number: receipt.blockNumber,
        block_hash: receipt.blockHash,
        confirmations: BigInt(DEPTH),
      },
    });
  });

  test("a deposit still in the node's pool is below finality with 0 confirmations", async () => {
    await chain.setAutomine(false);
    const nonce = await chain.publicClient.getTransactionCount({ address: agent.address });
    const raw = await signTransfer(agent, usdc, depositAddress, USDC("2"), nonce);
    const tx = await chain.publicClient.sendRawTransaction({ serializedTransaction: raw });
    expect(await port.verifyDeposit({ tx_hash: tx, log_index: 0 })).toMatchObject({ ok: false, refusal: { kind: "below_finality", confirmations: 0n } });
  });

  test("a deposit reorged away before depth is never verified; re-included later it verifies in its new block", async () => {
    const nonce = await chain.publicClient.getTransactionCount({ address: agent.address });
    const raw = await signTransfer(agent, usdc, depositAddress, USDC("7"), nonce);
    const fork = await chain.snapshot();
    const tx = await chain.publicClient.sendRawTransaction({ serializedTransaction: raw });
    await chain.publicClient.waitForTransactionReceipt({ hash: tx, pollingInterval: 20 });
    const log_index = await logIndexOf(tx);
    const seen = await port.verifyDeposit({ tx_hash: tx, log_index });
    expect(seen).toMatchObject({ ok: false, refusal: { kind: "below_finality", confirmations: 1n } });
    const oldBlock = (await chain.publicClient.getTransactionReceipt({ hash: tx })).blockHash;

    // Reorg: back to before the deposit, a different block (another account's tx) and more blocks on top.
    await chain.revert(fork);
    await chain.mint(otherToken, author, USDC("1"));
    await chain.mine(DEPTH + 2);
    expect(await port.verifyDeposit({ tx_hash: tx, log_index })).toMatchObject({ ok: false, refusal: { kind: "unknown_tx" } });
    expect(await balanceOf(usdc, depositAddress)).toBe(0n);
    const scan = await port.scanDeposits(await port.initialCursor(0n));
    expect([...scan.final, ...scan.tentative].map((d) => d.tx_hash)).not.toContain(tx);

    // The same signed transaction included again (same hash, same log index), in a new block.
    await chain.publicClient.sendRawTransaction({ serializedTransaction: raw });
    await chain.publicClient.waitForTransactionReceipt({ hash: tx, pollingInterval: 20 });
    await chain.mine(DEPTH - 1);
    const again = await port.verifyDeposit({ tx_hash: tx, log_index });
    expect(again).toMatchObject({ ok: true, deposit: { tx_hash: tx, log_index, amount_micro: USDC("7"), confirmations: BigInt(DEPTH) } });
    expect(again.ok && again.deposit.block_hash).not.toBe(oldBlock);
  });

  test("forged reports are refused for what is wrong with them, even at depth", async () => {
    const good = await chain.transfer(usdc, agent, depositAddress, USDC("3"));
    const wrongToken = await chain.transfer(otherToken, agent, depositAddress, USDC("3"));
    const wrongRecipient = await chain.transfer(usdc, agent, author, USDC("3"));
    const reverted = await chain.transfer(usdc, agent, depositAddress, USDC("1000000"), 100_000n); // more than it holds
    const approve = await approveTx(agent, usdc, depositAddress, USDC("3")); // an Approval log, not a Transfer
    await chain.mine(DEPTH);
    const gi = await logIndexOf(good);

    const unknown = `0x${"ab".repeat(32)}` as Hash;
    expect(await port.verifyDeposit({ tx_hash: unknown, log_index: 0 })).toMatchObject({ ok: false, refusal: { kind: "unknown_tx" } });
    expect((await chain.publicClient.getTransactionReceipt({ hash: reverted })).status).toBe("reverted");
    expect(await port.verifyDeposit({ tx_hash: reverted, log_index: 0 })).toMatchObject({ ok: false, refusal: { kind: "reverted" } });
    expect(await port.verifyDeposit({ tx_hash: wrongToken, log_index: await logIndexOf(wrongToken) })).toMatchObject({
      ok: false,
      refusal: { kind: "wrong_token", token: getAddress(otherToken) },
    });
    expect(await port.verifyDeposit({ tx_hash: wrongRecipient, log_index: await logIndexOf(wrongRecipient) })).toMatchObject({
      ok: false,
      refusal: { kind: "wrong_recipient", to: author },
    });
    expect(await port.verifyDeposit({ tx_hash: good, log_index: gi, claimed: { amount_micro: USDC("30") } })).toMatchObject({
      ok: false,
      refusal: { kind: "claim_mismatch", field: "amount_micro", claimed: "30000000", actual: "3000000" },
    });
    expect(await port.verifyDeposit({ tx_hash: good, log_index: gi, claimed: { from: author } })).toMatchObject({
      ok: false,
      refusal: { kind: "claim_mismatch", field: "from" },
    });
    expect(await port.verifyDeposit({ tx_hash: good, log_index: gi + 1 })).toMatchObject({ ok: false, refusal: { kind: "log_not_found", log_index: gi + 1 } });
    expect(await port.verifyDeposit({ tx_hash: approve, log_index: await logIndexOf(approve) })).toMatchObject({ ok: false, refusal: { kind: "not_a_transfer" } });
    // ...and the honest report of the same block verifies.
    expect(await port.verifyDeposit({ tx_hash: good, log_index: gi, claimed: { amount_micro: USDC("3"), from: agent.address } })).toMatchObject({ ok: true });
  });
});

describe("deposits: scanDeposits with a persisted cursor", () => {
  test("final deposits advance the cursor; shallower ones are tentative until at depth; other tokens and recipients are ignored", async () => {
    let cursor = await port.initialCursor((await chain.headNumber()) + 1n);
    const d1 = await chain.transfer(usdc, agent, depositAddress, USDC("1"));
    await chain.transfer(otherToken, agent, depositAddress, USDC("9"));
    await chain.transfer(usdc, agent, author, USDC("9"));
    await chain.mine(DEPTH);
    const d2 = await chain.transfer(usdc, agent, depositAddress, USDC("2"));

    const s1 = await port.scanDeposits(cursor);
    expect(s1.reorg).toBeNull();
    expect(s1.caught_up).toBe(true);
    expect(s1.final.map((d) => [d.tx_hash, d.amount_micro])).toEqual([[d1, USDC("1")]]);
    expect(s1.tentative.map((d) => [d.tx_hash, d.confirmations])).toEqual([[d2, 1n]]);
    expect(s1.cursor.block_number).toBe((await chain.headNumber()) - BigInt(DEPTH) + 1n);
    // Persist and reload the cursor as text.
    cursor = parseCursor(formatCursor(s1.cursor));
    expect(cursor).toEqual(s1.cursor);

    await chain.mine(DEPTH - 1);
    const s2 = await port.scanDeposits(cursor);
    expect(s2.final.map((d) => d.tx_hash)).toEqual([d2]);
    expect(s2.tentative).toEqual([]);
    // Every final candidate passes verifyDeposit with the same facts.
    const v = await port.verifyDeposit({ tx_hash: d2, log_index: (s2.final[0] as DepositFacts).log_index });
    expect(v).toMatchObject({ ok: true, deposit: { amount_micro: USDC("2"), from: agent.address } });
    const s3 = await port.scanDeposits(s2.cursor);
    expect(s3).toMatchObject({ final: [], tentative: [], cursor: s2.cursor, reorg: null });
  });

  test("a reorg below the cursor is noticed (block hash changed) and the scan rewinds; the lost deposit never reappears", async () => {
    const start = await port.initialCursor((await chain.headNumber()) + 1n);
    const fork = await chain.snapshot();
    const lost = await chain.transfer(usdc, agent, depositAddress, USDC("4"));
    await chain.mine(DEPTH);
    const s1 = await port.scanDeposits(start);
    expect(s1.final.map((d) => d.tx_hash)).toEqual([lost]);

    await chain.revert(fork);
    const kept = await chain.transfer(usdc, agent, depositAddress, USDC("6"));
    await chain.mine(DEPTH + 3);
    const s2 = await port.scanDeposits(s1.cursor);
    expect(s2.reorg).toMatchObject({ block_number: s1.cursor.block_number, expected_hash: s1.cursor.block_hash });
    expect(s2.reorg?.actual_hash).not.toBe(s1.cursor.block_hash);
    expect(s2.final).toEqual([]);
    expect(s2.cursor.block_number).toBe(s1.cursor.block_number - BigInt(DEPTH));

    const s3 = await port.scanDeposits(s2.cursor);
    expect(s3.reorg).toBeNull();
    expect(s3.final.map((d) => d.tx_hash)).toEqual([kept]);
    expect(await port.verifyDeposit({ tx_hash: lost, log_index: 0 })).toMatchObject({ ok: false, refusal: { kind: "unknown_tx" } });
  });

  test("a tentative deposit that a shallow reorg removes stops appearing, and the cursor is untouched", async () => {
    await chain.mine(DEPTH);
    const first = await port.scanDeposits(await port.initialCursor((await chain.headNumber()) + 1n));
    const fork = await chain.snapshot();
    const gone = await chain.transfer(usdc, agent, depositAddress, USDC("8"));
    const seen = await port.scanDeposits(first.cursor);
    expect(seen.tentative.map((d) => d.tx_hash)).toEqual([gone]);
    expect(seen.final).toEqual([]);
    await chain.revert(fork);
    await chain.mint(otherToken, author, USDC("1")); // a different block at that height
    await chain.mine(DEPTH);
    const after = await port.scanDeposits(seen.cursor);
    expect(after.reorg).toBeNull();
    expect([...after.final, ...after.tentative].map((d) => d.tx_hash)).not.toContain(gone);
    expect(() => parseCursor("12:0x1234")).toThrow(/cursor: expected "<block number>:<0x \+ 64 hex block hash>"/);
  });

  test("one scan reads at most BASE_LOG_RANGE_MAX_BLOCKS blocks and says it has not caught up", async () => {
    const narrow = await connectBaseChain({ ...config, log_range_max_blocks: 2 }, hotKey);
    let cursor = await narrow.initialCursor((await chain.headNumber()) + 1n);
    const deposits: Hash[] = [];
    for (let i = 0; i < 5; i++) deposits.push(await chain.transfer(usdc, agent, depositAddress, USDC(String(1 + i))));
    await chain.mine(DEPTH);
    const found: Hash[] = [];
    let scans = 0;
    for (;;) {
      const s = await narrow.scanDeposits(cursor);
      scans++;
      expect(s.cursor.block_number - cursor.block_number).toBeLessThanOrEqual(2n);
      found.push(...s.final.map((d) => d.tx_hash));
      cursor = s.cursor;
      if (s.caught_up) break;
      expect(scans).toBeLessThan(20);
    }
    expect(found).toEqual(deposits);
    expect(scans).toBeGreaterThanOrEqual(3);
  });
});

describe("payouts: sign, record, broadcast, fate", () => {
  async function signNext(to: Address, amount_micro: bigint): Promise<SignedPayout> {
    const fees = await port.suggestFees();
    const { pending } = await port.nonces();
    return port.signPayout({ to, amount_micro, nonce: pending, gas_limit: PAYOUT_GAS_LIMIT, ...fees });
  }

  /** The caller's durable record of the signed tx (here a file), written before any broadcast. */
  async function record(p: SignedPayout): Promise<{ raw: Hex; hash: Hash }> {
    const file = path.join(dir, `${p.hash}.json`);
    await writeFile(file, JSON.stringify({ raw: p.raw, hash: p.hash }));
    return JSON.parse(await readFile(file, "utf8")) as { raw: Hex; hash: Hash };
  }

  test("signed → recorded → broadcast twice: one transfer on chain, fate landed, final at depth", async () => {
    const hotBefore = await port.balances();
    const pre = await port.preflightPayout({ amount_micro: USDC("12.34"), gas_limit: PAYOUT_GAS_LIMIT, max_fee_per_gas: (await port.suggestFees()).max_fee_per_gas });
    expect(pre.ok).toBe(true);
    const signed = await signNext(author, USDC("12.34"));
    expect(signed).toMatchObject({ from: hot, to: author, token: getAddress(usdc), chain_id: 31337, amount_micro: 12_340_000n });
    const rec = await record(signed);
    expect(await port.getTransactionFate(rec.hash)).toEqual({ kind: "unknown", hash: rec.hash }); // not sent yet

    expect(await port.broadcast(rec.raw)).toEqual({ ok: true, hash: rec.hash, outcome: "accepted" });
    // automine mines the block after the node accepted the tx: wait for it, never for a fixed time
    await chain.publicClient.waitForTransactionReceipt({ hash: rec.hash, pollingInterval: 20 });
    expect(await port.broadcast(rec.raw)).toEqual({ ok: true, hash: rec.hash, outcome: "already_landed" });
    const fate1 = await port.getTransactionFate(rec.hash);
    expect(fate1).toMatchObject({ kind: "landed", status: "success", confirmations: 1n, final: false });
    await chain.mine(DEPTH - 1);
    const fate = await port.getTransactionFate(rec.hash);
    expect(fate).toMatchObject({ kind: "landed", status: "success", confirmations: BigInt(DEPTH), final: true });
    expect(fate.kind === "landed" && fate.fee_wei > 0n).toBe(true);

    expect(await payoutsOnChain()).toEqual([{ to: author, value: 12_340_000n, tx: rec.hash }]);
    expect(await balanceOf(usdc, author)).toBe(12_340_000n);
    const hotAfter = await port.balances();
    expect(hotAfter.usdc_micro).toBe(hotBefore.usdc_micro - 12_340_000n);
    expect(hotAfter.eth_wei).toBe(hotBefore.eth_wei - (fate.kind === "landed" ? fate.fee_wei : 0n));
  });

  test("broadcast twice while pending is already_known; mined once", async () => {
    await chain.setAutomine(false);
    const signed = await signNext(author, USDC("1"));
    expect(await port.broadcast(signed.raw)).toMatchObject({ ok: true, outcome: "accepted" });
    expect(await port.broadcast(signed.raw)).toMatchObject({ ok: true, outcome: "already_known" });
    expect(await port.getTransactionFate(signed.hash)).toEqual({ kind: "pending", hash: signed.hash });
    await chain.mine(DEPTH);
    expect(await port.getTransactionFate(signed.hash)).toMatchObject({ kind: "landed", final: true });
    expect(await payoutsOnChain()).toHaveLength(1);
  });

  test("a broadcast the node lost is re-broadcast from the record (same hash) and lands once", async () => {
    await chain.setAutomine(false);
    const signed = await signNext(author, USDC("2.5"));
    const rec = await record(signed);
    expect(await port.broadcast(rec.raw)).toMatchObject({ ok: true, outcome: "accepted" });
    await chain.dropTransaction(rec.hash); // the node forgets it
    await chain.mine(1);
    const lost = await port.getTransactionFate(rec.hash, { from: hot, nonce: signed.nonce });
    expect(lost).toEqual({ kind: "unknown", hash: rec.hash }); // NOT replaced: the nonce is still free
    expect(await payoutsOnChain()).toEqual([]);

    expect(await port.broadcast(rec.raw)).toEqual({ ok: true, hash: rec.hash, outcome: "accepted" });
    await chain.mine(DEPTH);
    expect(await port.getTransactionFate(rec.hash)).toMatchObject({ kind: "landed", status: "success", final: true });
    expect(await payoutsOnChain()).toEqual([{ to: author, value: 2_500_000n, tx: rec.hash }]);
    expect(await port.broadcast(rec.raw)).toMatchObject({ ok: true, outcome: "already_landed" });
    expect(await payoutsOnChain()).toHaveLength(1);
  });

  test("a payout reorged out before depth is unknown (not replaced); the recorded tx is re-broadcast and lands once", async () => {
    const signed = await signNext(author, USDC("3"));
    const rec = await record(signed);
    const fork = await chain.snapshot();
    expect(await port.broadcast(rec.raw)).toMatchObject({ ok: true, outcome: "accepted" });
    // automine mines the block after the node accepted the tx: wait for it, never for a fixed time
    await chain.publicClient.waitForTransactionReceipt({ hash: rec.hash, pollingInterval: 20 });
    expect(await port.getTransactionFate(rec.hash)).toMatchObject({ kind: "landed", confirmations: 1n, final: false });
    await chain.revert(fork); // the block holding the payout is gone
    await chain.mint(otherToken, author, USDC("1"));
    await chain.mine(DEPTH);
    expect(await port.getTransactionFate(rec.hash, { from: hot, nonce: signed.nonce })).toEqual({ kind: "unknown", hash: rec.hash });
    expect(await payoutsOnChain()).toEqual([]);
    expect(await port.broadcast(rec.raw)).toMatchObject({ ok: true, outcome: "accepted" });
    await chain.mine(DEPTH - 1);
    expect(await port.getTransactionFate(rec.hash)).toMatchObject({ kind: "landed", final: true });
    expect(await payoutsOnChain()).toEqual([{ to: author, value: USDC("3"), tx: rec.hash }]);
  });

  test("only when another tx used the nonce at finality depth is a signed payout 'replaced' (it can never land)", async () => {
    const first = await signNext(author, USDC("1"));
    // Something else spends the same nonce (here: another signed payout at the same nonce).
    const other = await port.signPayout({ to: agent.address, amount_micro: USDC("1"), nonce: first.nonce, gas_limit: PAYOUT_GAS_LIMIT, max_fee_per_gas: first.max_fee_per_gas, max_priority_fee_per_gas: first.max_priority_fee_per_gas });
    expect(other.hash).not.toBe(first.hash);
    expect(await port.broadcast(other.raw)).toMatchObject({ ok: true, outcome: "accepted" });
    // Below depth: not yet provably dead.
    expect(await port.getTransactionFate(first.hash, { from: hot, nonce: first.nonce })).toMatchObject({ kind: "unknown" });
    await chain.mine(DEPTH);
    expect(await port.getTransactionFate(first.hash, { from: hot, nonce: first.nonce })).toMatchObject({ kind: "replaced", nonce: first.nonce });
    expect(await port.broadcast(first.raw)).toMatchObject({ ok: false, kind: "nonce_consumed" });
    expect((await payoutsOnChain()).map((p) => p.to)).toEqual([agent.address]);
  });

  test("pre-flight refuses before signing when the hot wallet is short of USDC or of gas", async () => {
    const fees = await port.suggestFees();
    const have = (await port.balances()).usdc_micro;
    const short = await port.preflightPayout({ amount_micro: have + 1n, gas_limit: PAYOUT_GAS_LIMIT, max_fee_per_gas: fees.max_fee_per_gas });
    expect(short).toMatchObject({ ok: false, kind: "insufficient_usdc", have_micro: have, need_micro: have + 1n });
    expect(short.ok ? "" : short.reason).toMatch(/holds \d+ micro-USDC, the payout needs \d+/);
    const reserved = await port.preflightPayout({ amount_micro: 1n, reserved_micro: have, gas_limit: PAYOUT_GAS_LIMIT, max_fee_per_gas: fees.max_fee_per_gas });
    expect(reserved).toMatchObject({ ok: false, kind: "insufficient_usdc", need_micro: have + 1n });

    const gasNeed = PAYOUT_GAS_LIMIT * fees.max_fee_per_gas;
    await chain.testClient.setBalance({ address: hot, value: gasNeed - 1n });
    const noGas = await port.preflightPayout({ amount_micro: USDC("1"), gas_limit: PAYOUT_GAS_LIMIT, max_fee_per_gas: fees.max_fee_per_gas });
    expect(noGas).toMatchObject({ ok: false, kind: "insufficient_gas", have_wei: gasNeed - 1n, need_wei: gasNeed });
    expect(noGas.ok ? "" : noGas.reason).toMatch(/gas for the payout needs up to/);
    await chain.testClient.setBalance({ address: hot, value: gasNeed });
    expect(await port.preflightPayout({ amount_micro: USDC("1"), gas_limit: PAYOUT_GAS_LIMIT, max_fee_per_gas: fees.max_fee_per_gas })).toMatchObject({ ok: true });
  });

  test("a payout broadcast without gas money is refused by the node as insufficient_funds and moves nothing", async () => {
    await chain.testClient.setBalance({ address: hot, value: 0n });
    const signed = await signNext(author, USDC("1"));
    expect(await port.broadcast(signed.raw)).toMatchObject({ ok: false, kind: "insufficient_funds" });
    expect(await payoutsOnChain()).toEqual([]);
  });

  test("signing refuses a zero amount, the zero address and inconsistent fees", async () => {
    const base = { to: author, amount_micro: 1n, nonce: 0, gas_limit: PAYOUT_GAS_LIMIT, max_fee_per_gas: 10n, max_priority_fee_per_gas: 1n };
    await expect(port.signPayout({ ...base, amount_micro: 0n })).rejects.toThrow(/amount_micro must be > 0/);
    await expect(port.signPayout({ ...base, to: "0x0000000000000000000000000000000000000000" })).rejects.toThrow(/zero address/);
    await expect(port.signPayout({ ...base, max_priority_fee_per_gas: 11n })).rejects.toThrow(/must be <= max_fee_per_gas/);
    // Deterministic: the same request signs to the same hash (so a recorded hash identifies it).
    expect((await port.signPayout(base)).hash).toBe((await port.signPayout(base)).hash);
  });
});

// ---- helpers signing as other accounts (agents), to build raw txs we can re-send ----------------

async function signTransfer(from: PrivateKeyAccount, token: Address, to: Address, amount: bigint, nonce: number): Promise<Hex> {
  return from.signTransaction({
    type: "eip1559",
    chainId: 31337,
    nonce,
    to: token,
    data: encodeFunctionData({ abi: erc20Abi, functionName: "transfer", args: [to, amount] }),
    gas: 100_000n,
    maxFeePerGas: 10n ** 10n,
    maxPriorityFeePerGas: 1n,
  });
}

async function approveTx(from: PrivateKeyAccount, token: Address, spender: Address, amount: bigint): Promise<Hash> {
  const nonce = await chain.publicClient.getTransactionCount({ address: from.address });
  const raw = await from.signTransaction({
    type: "eip1559",
    chainId: 31337,
    nonce,
    to: token,
    data: encodeFunctionData({ abi: erc20Abi, functionName: "approve", args: [spender, amount] }),
    gas: 100_000n,
    maxFeePerGas: 10n ** 10n,
    maxPriorityFeePerGas: 1n,
  });
  const hash = await chain.publicClient.sendRawTransaction({ serializedTransaction: raw });
  await chain.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 20 });
  return hash;
}
