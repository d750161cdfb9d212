/**
 * Issue 13, Base deposits end to end: an agent proves a source address, sends USDC to the deposit
 * address on a real anvil chain, and the Base adapter process (scanning from its durable cursor,
 * verifying every deposit on chain, reporting through the daemon) gets it credited: not below the
 * finality depth, once at depth, never when a reorg removed it before depth, once when the same
 * transaction is re-included. Forged reports (unknown tx, reverted tx, wrong token, wrong
 * recipient, wrong amount, a replayed hash) go through the adapter's verification gate against the
 * same chain and daemon and credit nothing.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { getAddress, parseAbi, type Address, type Hash } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { OwnershipPurpose } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { fileCursorStore } from "../../src/rails/adapter/cursor.js";
import { settlementClient } from "../../src/rails/adapter/daemon-client.js";
import { createRailAdapter, type RailAdapter } from "../../src/rails/adapter/runner.js";
import { connectBaseChain } from "../../src/rails/base/chain.js";
import { baseDriver } from "../../src/rails/base/driver.js";
import { createLogger } from "../../src/log.js";
import { DEV_KEYS } from "../support/anvil.js";
import { FINALITY_DEPTH, startAdapterHarness, type AdapterHarness, type AdapterProcess } from "./adapter-harness.js";

const AGENT = "dora";
const source = privateKeyToAccount(DEV_KEYS[2]);
const transferAbi = parseAbi(["function transfer(address to, uint256 amount) returns (bool)"]);
let x: AdapterHarness;
let adapter: AdapterProcess;

function cursorBlock(p: AdapterProcess): bigint {
  const c = p.lines().filter((l) => l.event === "deposit_cursor").at(-1)?.cursor;
  return typeof c === "string" ? BigInt(c.split(":")[0]!) : -1n;
}
const seen = (p: AdapterProcess, event: string, tx: string, confirmations?: number) =>
  p.lines().some((l) => l.event === event && l.tx_ref === tx.toLowerCase() && (confirmations === undefined || l.confirmations === confirmations));
const available = () => x.h.d.available(AGENT);

/**
 * Mine exactly the blocks that let the scan's cursor reach `block` (cursor = head - depth + 1),
 * then wait for the adapter's cursor to get there: the chain moves only when the test says so.
 */
async function cursorPast(what: string, block: bigint): Promise<void> {
  const head = await x.chain.headNumber();
  const need = block + BigInt(FINALITY_DEPTH) - 1n;
  if (need > head) await x.chain.mine(Number(need - head));
  await x.until(what, async () => cursorBlock(adapter), (b) => b >= block);
}

/** A signed USDC transfer source → deposit address, not yet sent (so it can be sent again after a reorg). */
async function signedDeposit(amount: bigint, token: Address = x.usdc, to: Address = x.deposit_address, gas = 100_000n): Promise<`0x${string}`> {
  const c = x.chain.publicClient;
  const [nonce, fees] = await Promise.all([c.getTransactionCount({ address: source.address, blockTag: "pending" }), c.estimateFeesPerGas()]);
  const { encodeFunctionData } = await import("viem");
  return source.signTransaction({
    chainId: 31337,
    type: "eip1559",
    to: token,
    data: encodeFunctionData({ abi: transferAbi, functionName: "transfer", args: [to, amount] }),
    nonce,
    gas,
    maxFeePerGas: fees.maxFeePerGas * 2n,
    maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    value: 0n,
  });
}
async function send(raw: `0x${string}`): Promise<Hash> {
  const hash = await x.chain.publicClient.sendRawTransaction({ serializedTransaction: raw });
  await x.chain.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 20, timeout: 60_000 });
  return hash;
}

beforeAll(async () => {
  x = await startAdapterHarness({ streamer: true });
  await x.h.d.fundedAgent(AGENT, 1n);
  const s = await x.h.settlement("agent", AGENT);
  const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.DEPOSIT_SOURCE, rail: Rail.BASE, address: source.address });
  await s.bindDepositSource({ rail: Rail.BASE, address: source.address, proof: { challengeId: challenge!.challengeId, signature: await source.signMessage({ message: challenge!.message }) } });
  await x.chain.testClient.setBalance({ address: source.address, value: 10n ** 20n });
  await x.chain.mint(x.usdc, source.address, 100_000_000n);
  adapter = await x.startAdapter();
  await x.until("the adapter's first cursor", async () => cursorBlock(adapter), (b) => b >= 0n);
}, 180_000);
afterAll(async () => {
  await x?.stop();
});

describe("deposits through the adapter process", () => {
  it("below the finality depth nothing is credited; at depth it is credited once, and stays once", async () => {
    const before = await available();
    const tx = await send(await signedDeposit(2_000_000n));
    for (let confirmations = 1; confirmations < FINALITY_DEPTH; confirmations++) {
      await x.until(`progress at ${confirmations} confirmations`, async () => seen(adapter, "deposit_progress", tx, confirmations), Boolean);
      expect(await available()).toBe(before);
      await x.chain.mine(1);
    }
    await x.until("the credit", available, (a) => a === before + 2_000_000n);
    const block = (await x.chain.publicClient.getTransactionReceipt({ hash: tx })).blockNumber;
    await cursorPast("the cursor past the deposit", block + 5n);
    expect(await available()).toBe(before + 2_000_000n);
    expect(adapter.lines().filter((l) => l.event === "deposit_reported" && l.tx_ref === tx.toLowerCase()).length).toBe(1);
    // ClickHouse `rail_deposits` (ADR 0084): the rail's facts of the credited deposit, once.
    const rows = await x.until(
      "the rail_deposits row to be credited",
      async () => x.analytics().query(`SELECT rail, tx_ref, amount_micro, block_number, confirmations, state FROM masques.rail_deposits FINAL WHERE tx_ref = '${tx.toLowerCase()}'`),
      (r) => r[0]?.state === "credited",
    );
    expect(rows).toEqual([
      { rail: "base", tx_ref: tx.toLowerCase(), amount_micro: "2000000", block_number: String(block), confirmations: expect.any(Number), state: "credited" },
    ]);
    expect(rows[0]!.confirmations).toBeGreaterThanOrEqual(FINALITY_DEPTH);
  });

  it("reorged away before depth: never credited; the same transaction re-included: credited once", async () => {
    const before = await available();
    const snap = await x.chain.snapshot();
    const raw = await signedDeposit(3_000_000n);
    const tx = await send(raw);
    const block = (await x.chain.publicClient.getTransactionReceipt({ hash: tx })).blockNumber;
    await x.until("progress at 1 confirmation", async () => seen(adapter, "deposit_progress", tx, 1), Boolean);
    await x.chain.mine(1);
    await x.until("progress at 2 confirmations", async () => seen(adapter, "deposit_progress", tx, 2), Boolean);
    await x.chain.revert(snap); // the deposit's block and the one above are gone
    await x.chain.dropTransaction(tx);
    await cursorPast("the cursor past the reorged height", block + 3n);
    expect(await available()).toBe(before);
    expect(seen(adapter, "deposit_reported", tx)).toBe(false);

    expect(await send(raw)).toBe(tx); // same bytes, same hash, same log index, a new block
    const again = (await x.chain.publicClient.getTransactionReceipt({ hash: tx })).blockNumber;
    await cursorPast("the cursor past it", again + 3n);
    await x.until("the re-included credit", available, (a) => a === before + 3_000_000n);
    expect(await available()).toBe(before + 3_000_000n);
  });
});

describe("forged reports through the adapter's verification gate", () => {
  let gate: RailAdapter;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "gate-"));
    const chain = await connectBaseChain(
      { rpc_url: x.chain.url, chain_id: 31337, token_address: x.usdc, hot_wallet_key_file: "", deposit_address: x.deposit_address, finality_depth: FINALITY_DEPTH, poll_interval_ms: 50, log_range_max_blocks: 2000, scan_from_block: null },
      DEV_KEYS[1],
    );
    const token = await x.h.d.token("rail", "base");
    gate = createRailAdapter({
      settlement: settlementClient(`http://${x.h.d.daemon.grpcAddr}`, () => token),
      driver: baseDriver(chain, null),
      cursor: fileCursorStore(dir, "base"),
      log: createLogger({ level: "silent" }),
      claim_max: 1,
      resign_max: 0,
    });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("unknown tx, reverted tx, wrong token, wrong recipient, wrong amount, replayed hash: refused, nothing extra credited", async () => {
    const before = await available();
    const other = await x.chain.deployToken();
    await x.chain.mint(other, source.address, 5_000_000n);
    const wrongToken = await send(await signedDeposit(1_000_000n, other));
    const wrongRecipient = await send(await signedDeposit(1_000_000n, x.usdc, privateKeyToAccount(DEV_KEYS[4]).address));
    const reverted = await send(await signedDeposit(10_000_000_000n)); // more than the source holds
    expect((await x.chain.publicClient.getTransactionReceipt({ hash: reverted })).status).toBe("reverted");
    const real = await send(await signedDeposit(700_000n)); // honest: the adapter process credits it
    await x.chain.mine(FINALITY_DEPTH);

    const refusals = {
      unknown: await gate.verifyAndReport({ tx_ref: `0x${"7".repeat(64)}`, event_index: 0, from_address: source.address, amount_micro: 1_000_000n }),
      reverted: await gate.verifyAndReport({ tx_ref: reverted, event_index: 0, from_address: source.address, amount_micro: 10_000_000_000n }),
      wrong_token: await gate.verifyAndReport({ tx_ref: wrongToken, event_index: 0, from_address: source.address, amount_micro: 1_000_000n }),
      wrong_recipient: await gate.verifyAndReport({ tx_ref: wrongRecipient, event_index: 0, from_address: source.address, amount_micro: 1_000_000n }),
      wrong_amount: await gate.verifyAndReport({ tx_ref: real, event_index: 0, from_address: source.address, amount_micro: 7_000_000n }),
    };
    expect(refusals.unknown).toEqual({ reported: false, kind: "unknown_tx", reason: expect.stringContaining("is not on chain") });
    expect(refusals.reverted).toEqual({ reported: false, kind: "reverted", reason: expect.stringContaining("revert") });
    expect(refusals.wrong_token).toEqual({ reported: false, kind: "wrong_token", reason: expect.stringContaining(getAddress(other)) });
    expect(refusals.wrong_recipient).toEqual({ reported: false, kind: "wrong_recipient", reason: expect.any(String) });
    expect(refusals.wrong_amount).toEqual({ reported: false, kind: "claim_mismatch", reason: "claimed amount_micro 7000000 but the chain says 700000" });

    // The honest deposit is credited once, by the adapter process or this gate, whichever first;
    // replaying its hash (any number of times, any hex case) credits nothing more.
    await x.until("the honest credit", available, (a) => a === before + 700_000n);
    expect(await gate.verifyAndReport({ tx_ref: real, event_index: 0, from_address: source.address, amount_micro: 700_000n })).toEqual({ reported: true });
    expect(await gate.verifyAndReport({ tx_ref: real.toUpperCase().replace("0X", "0x"), event_index: 0 })).toEqual({ reported: true });
    const block = (await x.chain.publicClient.getTransactionReceipt({ hash: real })).blockNumber;
    await cursorPast("the cursor past every forged tx", block + 2n);
    expect(await available()).toBe(before + 700_000n);
  });
});
