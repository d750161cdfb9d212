/**
 * Author payouts through the real daemon (issue 13 items 1-2): an author earns through sessions,
 * proves a Base address with a real EIP-191 signature, requests and confirms a payout, and the
 * Base rail adapter (the `rail` principal "base") claims it, records a real signed transaction
 * and completes or fails it. Balances are checked exactly after every money movement. Time (quote
 * expiry, leases, cooling) moves by the injected clock, never by waiting.
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { DestinationState, OwnershipPurpose, PayoutState } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { expectDenied, expectStatus } from "../accounts/errors.js";
import { expectedFee, newAccount, signedPayoutTx, startSettlementHarness, type SettlementHarness } from "./harness.js";

const AUTHOR = "author-grace"; // the researcher masque pays author-grace
let h: SettlementHarness;
const dest = newAccount();
const hot = newAccount();
let nonce = 0;

beforeAll(async () => {
  h = await startSettlementHarness();
  await h.earn("payer", 8); // 8 x 500,000 charged, 85% to the author
  const r = await h.prove(AUTHOR, dest);
  expect(r.destination).toMatchObject({ address: dest.address, state: DestinationState.ACTIVE });
}, 180_000);
afterAll(async () => {
  await h?.stop();
});

async function queued(key: string, amount: bigint) {
  const a = await h.settlement("author", AUTHOR);
  const q = (await a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: amount }, idempotencyKey: key })).payout!;
  const c = (await a.confirmPayout({ payoutId: q.payoutId })).payout!;
  expect(c.state).toBe(PayoutState.REQUESTED);
  return c;
}

describe("the author's side", () => {
  it("earned through sessions: 8 x 500,000 x 85%", async () => {
    expect(await h.earnings(AUTHOR)).toEqual({ posted: 3_400_000n, available: 3_400_000n });
  });

  it("requests a quote (fee, net, expiry), retries get the same quote, the key cannot be reused for another amount", async () => {
    const a = await h.settlement("author", AUTHOR);
    const q = (await a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: 200_000n }, idempotencyKey: "quote-1" })).payout!;
    expect(q.state).toBe(PayoutState.QUOTED);
    expect(q.quote).toMatchObject({ amountMicro: 200_000n, feeMicro: expectedFee(200_000n), netMicro: 200_000n - expectedFee(200_000n) });
    const again = (await a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: 200_000n }, idempotencyKey: "quote-1" })).payout!;
    expect(again.payoutId).toBe(q.payoutId);
    expect(again.quote).toEqual(q.quote);
    await expectStatus(a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: 300_000n }, idempotencyKey: "quote-1" }), Code.AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    // Nothing is held by a quote.
    expect((await h.earnings(AUTHOR)).available).toBe(3_400_000n);
    await a.cancelPayout({ payoutId: q.payoutId });
    expect((await a.getPayout({ payoutId: q.payoutId })).payout!.state).toBe(PayoutState.CANCELLED);
  });

  it("refuses more than available, below the minimum, and a fee as large as the amount", async () => {
    const a = await h.settlement("author", AUTHOR);
    const e = await expectStatus(a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: 3_400_001n }, idempotencyKey: "too-much" }), Code.FailedPrecondition, "INSUFFICIENT_FUNDS");
    expect(e.rawMessage).toMatch(/available 3\.400000 USD, required 3\.400001 USD/);
    await expectStatus(a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: 11_000n }, idempotencyKey: "tiny" }), Code.FailedPrecondition, "AMOUNT_BELOW_MINIMUM");
    await expectStatus(a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: 1_000n }, idempotencyKey: "fee-only" }), Code.FailedPrecondition, "FEE_EXCEEDS_AMOUNT");
  });
});

describe("a payout end to end", () => {
  it("confirm holds, the rail claims, records the signed transaction, completes at depth: balances exact", async () => {
    const before = await h.earnings(AUTHOR);
    const rails0 = await h.railCredits();
    const amount = 1_000_000n;
    const fee = expectedFee(amount);
    const p = await queued("payout-ok", amount);
    expect(p.destinationAddress).toBe(dest.address);
    expect(await h.earnings(AUTHOR)).toEqual({ posted: before.posted, available: before.available - amount });

    const rail = await h.settlement("rail", "base");
    const claimed = (await rail.claimPayouts({ rail: Rail.BASE, maxPayouts: 10 })).payouts;
    const mine = claimed.find((c) => c.payout!.payoutId === p.payoutId)!;
    expect(mine.payout).toMatchObject({ state: PayoutState.CLAIMED, destinationAddress: dest.address, quote: { netMicro: amount - fee } });
    expect(mine.signedTransaction.length).toBe(0);

    const tx = await signedPayoutTx(hot, dest.address, nonce++, amount - fee);
    const rec = (await rail.recordSignedTransaction({ payoutId: p.payoutId, signedTransaction: tx.bytes, txRef: tx.hash, replayGuard: 0n })).payout!;
    expect(rec).toMatchObject({ state: PayoutState.SUBMITTED, txRef: tx.hash });
    // The same record again is a no-op.
    expect((await rail.recordSignedTransaction({ payoutId: p.payoutId, signedTransaction: tx.bytes, txRef: tx.hash, replayGuard: 0n })).payout!.state).toBe(PayoutState.SUBMITTED);
    // Below the finality depth: refused, nothing posted.
    await expectStatus(rail.completePayout({ payoutId: p.payoutId, txRef: tx.hash, confirmations: 2 }), Code.InvalidArgument, "INVALID_ARGUMENT");

    const done = (await rail.completePayout({ payoutId: p.payoutId, txRef: tx.hash, confirmations: 3, networkFeeNative: 21_000n })).payout!;
    expect(done).toMatchObject({ state: PayoutState.CONFIRMED, txRef: tx.hash, networkFeeNative: 21_000n });
    expect((await rail.completePayout({ payoutId: p.payoutId, txRef: tx.hash, confirmations: 4 })).payout!.state).toBe(PayoutState.CONFIRMED);
    expect(await h.earnings(AUTHOR)).toEqual({ posted: before.posted - amount, available: before.available - amount });
    expect(await h.railCredits()).toEqual({ outbound: rails0.outbound + amount - fee, fees: rails0.fees + fee });
    const a = await h.settlement("author", AUTHOR);
    expect((await a.getPayout({ payoutId: p.payoutId })).payout!.state).toBe(PayoutState.CONFIRMED);
    // A completed payout can be neither failed nor cancelled.
    await expectStatus(rail.failPayout({ payoutId: p.payoutId, reason: "late", txRef: tx.hash }), Code.FailedPrecondition, "PAYOUT_ALREADY_POSTED");
    await expectStatus(a.cancelPayout({ payoutId: p.payoutId }), Code.FailedPrecondition, "PAYOUT_NOT_CANCELLABLE");
  });

  it("a failed payout returns the whole amount to the author, with the reason", async () => {
    const before = await h.earnings(AUTHOR);
    const rails0 = await h.railCredits();
    const p = await queued("payout-fail", 500_000n);
    const rail = await h.settlement("rail", "base");
    await rail.claimPayouts({ rail: Rail.BASE, maxPayouts: 10 });
    const tx = await signedPayoutTx(hot, dest.address, nonce++, p.quote!.netMicro);
    await rail.recordSignedTransaction({ payoutId: p.payoutId, signedTransaction: tx.bytes, txRef: tx.hash, replayGuard: 1n });
    // Failing names the recorded transaction the chain proved can never land.
    await expectStatus(rail.failPayout({ payoutId: p.payoutId, reason: "reverted", txRef: "" }), Code.InvalidArgument, "INVALID_ARGUMENT");
    const f = (await rail.failPayout({ payoutId: p.payoutId, reason: "hot wallet short of gas: have 0 wei", txRef: tx.hash })).payout!;
    expect(f).toMatchObject({ state: PayoutState.FAILED, failureReason: "hot wallet short of gas: have 0 wei" });
    expect((await rail.failPayout({ payoutId: p.payoutId, reason: "again", txRef: tx.hash })).payout!.state).toBe(PayoutState.FAILED);
    expect(await h.earnings(AUTHOR)).toEqual(before);
    expect(await h.railCredits()).toEqual(rails0);
    await expectStatus(rail.completePayout({ payoutId: p.payoutId, txRef: tx.hash, confirmations: 3 }), Code.FailedPrecondition, "PAYOUT_ALREADY_VOIDED");
    expect(await h.earnings(AUTHOR)).toEqual(before);
  });

  it("never records a second different transaction while the first can still land; a proven replacement is accepted", async () => {
    const p = await queued("payout-resign", 300_000n);
    const rail = await h.settlement("rail", "base");
    await rail.claimPayouts({ rail: Rail.BASE, maxPayouts: 10 });
    const first = await signedPayoutTx(hot, dest.address, nonce++, p.quote!.netMicro);
    const second = await signedPayoutTx(hot, dest.address, nonce++, p.quote!.netMicro);
    await rail.recordSignedTransaction({ payoutId: p.payoutId, signedTransaction: first.bytes, txRef: first.hash, replayGuard: 2n });
    await expectStatus(rail.recordSignedTransaction({ payoutId: p.payoutId, signedTransaction: second.bytes, txRef: second.hash, replayGuard: 3n }), Code.FailedPrecondition, "SIGNED_TRANSACTION_EXISTS");
    // A hash that is not the bytes' is refused.
    await expectStatus(rail.recordSignedTransaction({ payoutId: p.payoutId, signedTransaction: second.bytes, txRef: first.hash, replayGuard: 3n }), Code.InvalidArgument, "INVALID_ARGUMENT");
    // A re-claim hands back exactly the recorded bytes.
    const again = (await rail.claimPayouts({ rail: Rail.BASE, maxPayouts: 10 })).payouts.find((c) => c.payout!.payoutId === p.payoutId)!;
    expect(Buffer.from(again.signedTransaction).equals(Buffer.from(first.bytes))).toBe(true);
    const replaced = (await rail.recordSignedTransaction({ payoutId: p.payoutId, signedTransaction: second.bytes, txRef: second.hash, replayGuard: 3n, replacesTxRef: first.hash })).payout!;
    expect(replaced.txRef).toBe(second.hash);
    await expectStatus(rail.completePayout({ payoutId: p.payoutId, txRef: first.hash, confirmations: 3 }), Code.InvalidArgument, "INVALID_ARGUMENT");
    expect((await rail.completePayout({ payoutId: p.payoutId, txRef: second.hash, confirmations: 3 })).payout!.state).toBe(PayoutState.CONFIRMED);
  });
});

describe("cancel, leases and expiry (injected clock)", () => {
  it("cancels a queued payout: the money is back", async () => {
    const before = await h.earnings(AUTHOR);
    const p = await queued("payout-cancel", 400_000n);
    expect((await h.earnings(AUTHOR)).available).toBe(before.available - 400_000n);
    const a = await h.settlement("author", AUTHOR);
    const c = (await a.cancelPayout({ payoutId: p.payoutId })).payout!;
    expect(c.state).toBe(PayoutState.CANCELLED);
    expect((await a.cancelPayout({ payoutId: p.payoutId })).payout!.state).toBe(PayoutState.CANCELLED);
    expect(await h.earnings(AUTHOR)).toEqual(before);
    // Nothing cancelled is ever handed to the rail.
    const rail = await h.settlement("rail", "base");
    expect((await rail.claimPayouts({ rail: Rail.BASE, maxPayouts: 100 })).payouts.map((x) => x.payout!.payoutId)).not.toContain(p.payoutId);
  });

  it("a claim under a live lease cannot be cancelled; once the lease expires it returns to the queue", async () => {
    const before = await h.earnings(AUTHOR);
    const p = await queued("payout-lease", 250_000n);
    const rail = await h.settlement("rail", "base");
    const first = (await rail.claimPayouts({ rail: Rail.BASE, maxPayouts: 10, leaseS: 30 })).payouts.find((c) => c.payout!.payoutId === p.payoutId)!;
    const a = await h.settlement("author", AUTHOR);
    await expectStatus(a.cancelPayout({ payoutId: p.payoutId }), Code.FailedPrecondition, "PAYOUT_NOT_CANCELLABLE");
    h.d.advance(31); // the adapter "crashed": its lease runs out
    const tx = await signedPayoutTx(hot, dest.address, nonce++, p.quote!.netMicro);
    await expectStatus(rail.recordSignedTransaction({ payoutId: p.payoutId, signedTransaction: tx.bytes, txRef: tx.hash, replayGuard: 9n }), Code.FailedPrecondition, "LEASE_NOT_HELD");
    const second = (await rail.claimPayouts({ rail: Rail.BASE, maxPayouts: 10, leaseS: 30 })).payouts.find((c) => c.payout!.payoutId === p.payoutId)!;
    expect(second.leaseExpireTime!.seconds).toBeGreaterThan(first.leaseExpireTime!.seconds);
    h.d.advance(31);
    // Lease expired, nothing signed: the author may still cancel.
    expect((await a.cancelPayout({ payoutId: p.payoutId })).payout!.state).toBe(PayoutState.CANCELLED);
    expect(await h.earnings(AUTHOR)).toEqual(before);
  });

  it("an expired quote is refused and nothing is held", async () => {
    const a = await h.settlement("author", AUTHOR);
    const before = await h.earnings(AUTHOR);
    const q = (await a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: 100_000n }, idempotencyKey: "stale" })).payout!;
    h.d.advance(301);
    await expectStatus(a.confirmPayout({ payoutId: q.payoutId }), Code.FailedPrecondition, "QUOTE_EXPIRED");
    expect((await a.getPayout({ payoutId: q.payoutId })).payout!.state).toBe(PayoutState.EXPIRED);
    expect(await h.earnings(AUTHOR)).toEqual(before);
  });
});

describe("who may do what", () => {
  it("another author can neither see, confirm nor cancel this author's payout, and has no earnings to pay out", async () => {
    const p = await queued("payout-private", 100_000n);
    const mallory = await h.settlement("author", "mallory");
    await expectStatus(mallory.getPayout({ payoutId: p.payoutId }), Code.NotFound, "PAYOUT_NOT_FOUND");
    await expectStatus(mallory.cancelPayout({ payoutId: p.payoutId }), Code.NotFound, "PAYOUT_NOT_FOUND");
    await expectStatus(mallory.confirmPayout({ payoutId: p.payoutId }), Code.NotFound, "PAYOUT_NOT_FOUND");
    await expectDenied(mallory.listPayouts({ authorId: AUTHOR }));
    await expectStatus(mallory.requestPayout({ rail: Rail.BASE, amount: { case: "allAvailable", value: true }, idempotencyKey: "steal" }), Code.FailedPrecondition, "NO_PAYOUT_DESTINATION");
    await h.prove("mallory", newAccount());
    await expectStatus(mallory.requestPayout({ rail: Rail.BASE, amount: { case: "allAvailable", value: true }, idempotencyKey: "steal" }), Code.FailedPrecondition, "INSUFFICIENT_FUNDS");
    const a = await h.settlement("author", AUTHOR);
    expect((await a.cancelPayout({ payoutId: p.payoutId })).payout!.state).toBe(PayoutState.CANCELLED);
  });

  it("an unproven address is refused: wrong signer, another author's challenge, another address", async () => {
    const s = await h.settlement("author", "eve");
    const victim = newAccount();
    const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.PAYOUT_DESTINATION, rail: Rail.BASE, address: victim.address });
    const forged = await newAccount().signMessage({ message: challenge!.message });
    await expectStatus(s.registerPayoutDestination({ rail: Rail.BASE, address: victim.address, proof: { challengeId: challenge!.challengeId, signature: forged } }), Code.PermissionDenied, "OWNERSHIP_PROOF_INVALID");
    const g = await h.settlement("author", AUTHOR);
    const good = await victim.signMessage({ message: challenge!.message });
    await expectStatus(g.registerPayoutDestination({ rail: Rail.BASE, address: victim.address, proof: { challengeId: challenge!.challengeId, signature: good } }), Code.FailedPrecondition, "CHALLENGE_INVALID");
    await expectStatus(s.registerPayoutDestination({ rail: Rail.BASE, address: newAccount().address, proof: { challengeId: challenge!.challengeId, signature: good } }), Code.FailedPrecondition, "CHALLENGE_INVALID");
    expect((await s.listPayoutDestinations({})).destinations).toEqual([]);
    // Agents and rails do not register payout destinations.
    await expectDenied((await h.settlement("agent", "payer")).createDestinationChallenge({ purpose: OwnershipPurpose.PAYOUT_DESTINATION, rail: Rail.BASE, address: victim.address }));
  });

  it("a changed destination cools before it pays; the queued payout keeps its destination", async () => {
    const next = newAccount();
    const r = (await h.prove(AUTHOR, next)).destination!;
    expect(r).toMatchObject({ address: next.address, state: DestinationState.PENDING });
    // The author is notified: an outbox event recorded with the change, shown on the pending row.
    expect(r.notificationId).toMatch(/^ntf_[0-9a-f]{32}$/);
    expect(r.notifyTime).toBeDefined();
    const shown = (await (await h.settlement("author", AUTHOR)).listPayoutDestinations({})).destinations;
    expect(shown).toEqual([
      expect.objectContaining({ address: dest.address, state: DestinationState.ACTIVE, notificationId: "" }),
      expect.objectContaining({ address: next.address, state: DestinationState.PENDING, notificationId: r.notificationId }),
    ]);
    const p = await queued("payout-cooling", 100_000n);
    expect(p.destinationAddress).toBe(dest.address);
    h.d.advance(3601);
    const a = await h.settlement("author", AUTHOR);
    const list = (await a.listPayoutDestinations({})).destinations;
    expect(list).toEqual([expect.objectContaining({ address: next.address, state: DestinationState.ACTIVE })]);
    expect((await a.getPayout({ payoutId: p.payoutId })).payout!.destinationAddress).toBe(dest.address);
    const q = await queued("payout-after-cooling", 100_000n);
    expect(q.destinationAddress).toBe(next.address);
    await a.cancelPayout({ payoutId: q.payoutId });
    await a.cancelPayout({ payoutId: p.payoutId });
  });

  it("a rail principal acts only on its own rail; authors and agents not at all", async () => {
    const p = await queued("payout-rails", 100_000n);
    const solana = await h.settlement("rail", "solana");
    await expectDenied(solana.claimPayouts({ rail: Rail.BASE, maxPayouts: 10 }));
    await expectDenied(solana.failPayout({ payoutId: p.payoutId, reason: "x" }));
    await expectDenied(solana.completePayout({ payoutId: p.payoutId, txRef: "0x" + "00".repeat(32), confirmations: 3 }));
    await expectDenied((await h.settlement("author", AUTHOR)).claimPayouts({ rail: Rail.BASE, maxPayouts: 10 }));
    await expectDenied((await h.settlement("agent", "payer")).failPayout({ payoutId: p.payoutId, reason: "x" }));
    await (await h.settlement("author", AUTHOR)).cancelPayout({ payoutId: p.payoutId });
  });
});

describe("restart", () => {
  it("a queued payout, its destination and its recorded transaction survive a daemon restart", async () => {
    const before = await h.earnings(AUTHOR);
    const p = await queued("payout-restart", 200_000n);
    const rail = await h.settlement("rail", "base");
    await rail.claimPayouts({ rail: Rail.BASE, maxPayouts: 10 });
    const tx = await signedPayoutTx(hot, (await (await h.settlement("author", AUTHOR)).getPayout({ payoutId: p.payoutId })).payout!.destinationAddress as `0x${string}`, nonce++, p.quote!.netMicro);
    await rail.recordSignedTransaction({ payoutId: p.payoutId, signedTransaction: tx.bytes, txRef: tx.hash, replayGuard: 7n });
    await h.d.restart();
    const after = await h.settlement("rail", "base"); // new port
    const resumed = (await after.claimPayouts({ rail: Rail.BASE, maxPayouts: 10 })).payouts.find((c) => c.payout!.payoutId === p.payoutId)!;
    expect(resumed.payout).toMatchObject({ state: PayoutState.SUBMITTED, txRef: tx.hash });
    expect(Buffer.from(resumed.signedTransaction).equals(Buffer.from(tx.bytes))).toBe(true);
    await after.completePayout({ payoutId: p.payoutId, txRef: tx.hash, confirmations: 3 });
    expect(await h.earnings(AUTHOR)).toEqual({ posted: before.posted - 200_000n, available: before.available - 200_000n });
  });
});

describe("concurrency", () => {
  it("concurrent payouts never overdraw the earnings: the ledger refuses what is not there", async () => {
    const { available } = await h.earnings(AUTHOR);
    const a = await h.settlement("author", AUTHOR);
    const each = available / 4n + 1n; // four fit only as three
    const quotes = await Promise.all(
      Array.from({ length: 6 }, (_, i) => a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: each }, idempotencyKey: `race-${i}` })),
    );
    const results = await Promise.allSettled(quotes.map((q) => a.confirmPayout({ payoutId: q.payout!.payoutId })));
    const ok = results.filter((r) => r.status === "fulfilled");
    expect(ok.length).toBe(3);
    for (const r of results) if (r.status === "rejected") expect(String(r.reason)).toMatch(/insufficient funds/);
    const after = await h.earnings(AUTHOR);
    expect(after.available).toBe(available - 3n * each);
    expect(after.available).toBeGreaterThanOrEqual(0n);
    // The refused ones are FAILED (their ids are burned), the held ones queued.
    const states = await Promise.all(quotes.map(async (q) => (await a.getPayout({ payoutId: q.payout!.payoutId })).payout!.state));
    expect(states.filter((s) => s === PayoutState.REQUESTED).length).toBe(3);
    expect(states.filter((s) => s === PayoutState.FAILED).length).toBe(3);
    const listed = (await a.listPayouts({ states: [PayoutState.REQUESTED] })).payouts;
    expect(listed.map((p) => p.payoutId).sort()).toEqual(quotes.filter((_, i) => states[i] === PayoutState.REQUESTED).map((q) => q.payout!.payoutId).sort());
  });

  it("ListPayouts pages newest first without skipping or repeating, and refuses a forged page token", async () => {
    const a = await h.settlement("author", AUTHOR);
    const all = (await a.listPayouts({ pageSize: 1000 })).payouts;
    expect(all.length).toBeGreaterThan(10);
    const seen: string[] = [];
    let token = "";
    do {
      const page = await a.listPayouts({ pageSize: 3, pageToken: token });
      expect(page.payouts.length).toBeLessThanOrEqual(3);
      seen.push(...page.payouts.map((p) => p.payoutId));
      token = page.nextPageToken;
    } while (token !== "");
    expect(seen).toEqual(all.map((p) => p.payoutId));
    const times = all.map((p) => p.createTime!.seconds * 1_000_000_000n + BigInt(p.createTime!.nanos));
    expect([...times].sort((x, y) => (x > y ? -1 : x < y ? 1 : 0))).toEqual(times);
    await expectStatus(a.listPayouts({ pageToken: "bm9wZQ" }), Code.InvalidArgument, "INVALID_ARGUMENT");
  });
});
