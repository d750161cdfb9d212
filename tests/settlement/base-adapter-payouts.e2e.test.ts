/**
 * Issue 13, Base payouts end to end: an author earns through real sessions, proves an address,
 * requests and confirms a payout; the Base rail adapter — a separate `masques-ledger rail base`
 * process talking to the daemon only over gRPC — pays it on a real anvil chain; it is confirmed
 * at finality depth (blocks mined explicitly) and the ledger, the author's and the rail's balances
 * and the chain agree exactly. A hot wallet short of USDC or of gas fails and voids the payout
 * with a clear reason, nothing sent; an author can never pay out more than available, another's
 * earnings or to an unproven address, and concurrent requests never overdraw. A recorded
 * transaction whose nonce was spent elsewhere (final) is signed anew once and paid once.
 */
import { Code } from "@connectrpc/connect";
import { parseEther } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { OwnershipPurpose, PayoutState } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { expectStatus, rpcError } from "../accounts/errors.js";
import { startAdapterHarness, type AdapterHarness, type AdapterProcess } from "./adapter-harness.js";
import { expectedFee, newAccount } from "./harness.js";

const AUTHOR = "author-grace"; // the researcher masque pays author-grace
const dest = newAccount();
let x: AdapterHarness;
let adapter: AdapterProcess;

beforeAll(async () => {
  x = await startAdapterHarness({ streamer: true });
  await x.h.earn("payer", 8); // 3,400,000 micro-USD to the author
  await x.h.prove(AUTHOR, dest);
  await x.chain.mint(x.usdc, x.hot.address, 1_500_000n);
  adapter = await x.startAdapter();
}, 180_000);
afterAll(async () => {
  await x?.stop();
});

describe("a payout through the adapter process", () => {
  it("is paid on chain, confirmed at depth, and the ledger, balances and chain agree exactly", async () => {
    const before = await x.h.earnings(AUTHOR);
    const rails0 = await x.h.railCredits();
    const head0 = await x.chain.headNumber();
    const amount = 1_000_000n;
    const fee = expectedFee(amount);
    const p = await x.queue(AUTHOR, "happy", amount);
    const done = (await x.settled(AUTHOR, [p.payoutId]))[0]!;
    expect(done.state).toBe(PayoutState.CONFIRMED);
    expect(await x.h.earnings(AUTHOR)).toEqual({ posted: before.posted - amount, available: before.available - amount });
    expect(await x.h.railCredits()).toEqual({ outbound: rails0.outbound + amount - fee, fees: rails0.fees + fee });
    expect(await x.usdcOf(dest.address)).toBe(amount - fee);
    const logs = await x.payoutLogs(head0);
    expect(logs).toEqual([{ tx_hash: done.txRef, to: dest.address, value: amount - fee }]);
    const receipt = await x.chain.publicClient.getTransactionReceipt({ hash: done.txRef as `0x${string}` });
    expect(done.networkFeeNative).toBe(receipt.gasUsed * receipt.effectiveGasPrice);
    expect(await x.chain.headNumber()).toBeGreaterThanOrEqual(receipt.blockNumber + 2n); // depth 3
    // ClickHouse `settlements` (ADR 0084): the ledger's side and the rail's facts, equal to the receipt.
    const id = BigInt(`0x${p.payoutId}`).toString();
    const row = await x.until(
      `settlements row of ${p.payoutId} to be paid`,
      async () => (await x.analytics().query(`SELECT status, amount_micro, rail_tx, rail_block, rail_confirmations, network_fee_native FROM masques.settlements FINAL WHERE payout_id = toUInt128('${id}')`))[0],
      (r) => r?.status === "paid",
    );
    expect(row).toEqual({
      status: "paid",
      amount_micro: String(amount - fee),
      rail_tx: receipt.transactionHash,
      rail_block: String(receipt.blockNumber),
      rail_confirmations: expect.any(Number),
      network_fee_native: String(receipt.gasUsed * receipt.effectiveGasPrice),
    });
    expect(row!.rail_confirmations).toBeGreaterThanOrEqual(3);
  });

  it("a hot wallet short of USDC: failed and voided before signing, money back, the reason names the shortfall", async () => {
    const before = await x.h.earnings(AUTHOR);
    const rails0 = await x.h.railCredits();
    const head0 = await x.chain.headNumber();
    const held = await x.usdcOf(x.hot.address); // 506,000 after the first payout
    const p = await x.queue(AUTHOR, "short-usdc", 800_000n);
    const f = (await x.settled(AUTHOR, [p.payoutId]))[0]!;
    expect(f.state).toBe(PayoutState.FAILED);
    expect(f.failureReason).toContain(`holds ${held} micro-USDC, the payout needs ${800_000n - expectedFee(800_000n)}`);
    expect(f.txRef).toBe("");
    expect(await x.h.earnings(AUTHOR)).toEqual(before);
    expect(await x.h.railCredits()).toEqual(rails0);
    expect(await x.payoutLogs(head0)).toEqual([]);
  });

  it("a hot wallet short of gas: failed and voided, money back, the reason names the ETH", async () => {
    await x.chain.mint(x.usdc, x.hot.address, 5_000_000n);
    await x.chain.testClient.setBalance({ address: x.hot.address, value: 0n });
    try {
      const before = await x.h.earnings(AUTHOR);
      const head0 = await x.chain.headNumber();
      const p = await x.queue(AUTHOR, "short-gas", 300_000n);
      const f = (await x.settled(AUTHOR, [p.payoutId]))[0]!;
      expect(f.state).toBe(PayoutState.FAILED);
      expect(f.failureReason).toMatch(/holds 0 wei of ETH, gas for the payout needs up to \d+/);
      expect(await x.h.earnings(AUTHOR)).toEqual(before);
      expect(await x.payoutLogs(head0)).toEqual([]);
    } finally {
      await x.chain.testClient.setBalance({ address: x.hot.address, value: parseEther("100") });
    }
  });
});

describe("what an author can never pay out", () => {
  it("more than available, another author's earnings, or to an address not proven", async () => {
    const a = await x.h.settlement("author", AUTHOR);
    const { available } = await x.h.earnings(AUTHOR);
    await expectStatus(a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: available + 1n }, idempotencyKey: "too-much" }), Code.FailedPrecondition, "INSUFFICIENT_FUNDS");
    // Another author sees neither grace's payouts nor can spend her earnings.
    const p = await x.queue(AUTHOR, "mine", 100_000n);
    const other = await x.h.settlement("author", "author-mallory");
    await expectStatus(other.getPayout({ payoutId: p.payoutId }), Code.NotFound, "PAYOUT_NOT_FOUND");
    await expectStatus(other.cancelPayout({ payoutId: p.payoutId }), Code.NotFound, "PAYOUT_NOT_FOUND");
    const e = await rpcError(other.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: 100_000n }, idempotencyKey: "steal" }));
    expect(e.code).toBe(Code.FailedPrecondition);
    // Mallory cannot register an address she does not control (a signature by another key).
    const target = newAccount();
    const { challenge } = await other.createDestinationChallenge({ purpose: OwnershipPurpose.PAYOUT_DESTINATION, rail: Rail.BASE, address: target.address });
    const forged = await newAccount().signMessage({ message: challenge!.message });
    await expectStatus(other.registerPayoutDestination({ rail: Rail.BASE, address: target.address, proof: { challengeId: challenge!.challengeId, signature: forged } }), Code.PermissionDenied, "OWNERSHIP_PROOF_INVALID");
    expect((await x.settled(AUTHOR, [p.payoutId]))[0]!.state).toBe(PayoutState.CONFIRMED);
    expect(await x.usdcOf(target.address)).toBe(0n);
  });

  it("concurrent payout requests never overdraw: the ledger holds what it can, the adapter pays exactly those", async () => {
    const before = await x.h.earnings(AUTHOR);
    const head0 = await x.chain.headNumber();
    const amount = (before.available * 4n) / 10n; // at most two of five fit
    const a = await x.h.settlement("author", AUTHOR);
    const quotes = await Promise.all([0, 1, 2, 3, 4].map((i) => a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: amount }, idempotencyKey: `race-${i}` })));
    const confirmed = await Promise.allSettled(quotes.map((q) => a.confirmPayout({ payoutId: q.payout!.payoutId })));
    const ids = quotes.map((q) => q.payout!.payoutId);
    const final = await x.settled(AUTHOR, ids);
    const paid = final.filter((p) => p.state === PayoutState.CONFIRMED);
    expect(paid.length).toBe(2);
    expect(final.filter((p) => p.state === PayoutState.FAILED).length).toBe(3);
    expect(confirmed.filter((c) => c.status === "fulfilled" && c.value.payout!.state === PayoutState.REQUESTED).length).toBe(2);
    const after = await x.h.earnings(AUTHOR);
    expect(after).toEqual({ posted: before.posted - 2n * amount, available: before.available - 2n * amount });
    const logs = await x.payoutLogs(head0);
    expect(logs.map((l) => l.tx_hash).sort()).toEqual(paid.map((p) => p.txRef).sort());
    expect(logs.every((l) => l.value === amount - expectedFee(amount))).toBe(true);
  });

  it("the adapter stops cleanly on SIGTERM", async () => {
    expect(await adapter.stop()).toEqual({ code: 0, signal: null });
    expect(adapter.lines().some((l) => l.event === "stopped")).toBe(true);
  });
});

describe("a recorded transaction that can never land", () => {

  it("a recorded transaction whose nonce another transaction used at depth is signed anew (replaces_tx_ref), paid once", async () => {
    const amount = 200_000n;
    const net = amount - expectedFee(amount);
    const head0 = await x.chain.headNumber();
    const p = await x.queue(AUTHOR, "replaced", amount);
    const crashed = await x.startAdapter({ RAIL_FAULT_KILL_AT: "after_record" }); // recorded, never sent
    expect(await crashed.exited).toEqual({ code: null, signal: "SIGKILL" });
    const recorded = (await x.payout(AUTHOR, p.payoutId)).txRef;
    expect(recorded).not.toBe("");
    // The hot wallet's key spends that nonce elsewhere (an operator's manual transaction), and it is final.
    const pc = x.chain.publicClient; // automine: the other transaction lands at once
    const nonce = await pc.getTransactionCount({ address: x.hot.address, blockTag: "pending" });
    const fees = await pc.estimateFeesPerGas();
    const other = await x.hot.signTransaction({ chainId: 31337, type: "eip1559", to: x.hot.address, value: 0n, nonce, gas: 21_000n, maxFeePerGas: fees.maxFeePerGas * 2n, maxPriorityFeePerGas: fees.maxPriorityFeePerGas });
    await pc.sendRawTransaction({ serializedTransaction: other });
    await x.chain.mine(4);
    const clean = await x.startAdapter();
    const done = (await x.settled(AUTHOR, [p.payoutId]))[0]!;
    expect(done.state).toBe(PayoutState.CONFIRMED);
    expect(done.txRef).not.toBe(recorded);
    expect(await x.payoutLogs(head0)).toEqual([{ tx_hash: done.txRef, to: dest.address, value: net }]);
    expect(clean.lines().some((l) => l.event === "payout_resign" && l.replaces === recorded)).toBe(true);
    await clean.stop();
  }, 120_000);
});
