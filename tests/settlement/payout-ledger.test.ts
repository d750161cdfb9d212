/**
 * Payout plans executed against the real embedded engine (issue 13 "Ledger flows"): a hold moves
 * nothing until posted, posts exactly net to the rail and fee to the rail's fee account, voids
 * back to the author, never overdraws earnings even when concurrent, and never times out.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TransferFlags } from "tigerbeetle-node";
import { availableMicro, platformAccountId, railAccountId } from "../../src/domain/accounts.js";
import { Ledger, TransferCode } from "../../src/domain/codes.js";
import { deterministicId } from "../../src/domain/ids.js";
import { newTransfer } from "../../src/domain/records.js";
import {
  derivePayoutState,
  holdOutcome,
  payoutHoldPlan,
  payoutPostPlan,
  payoutTransferIds,
  payoutVoidPlan,
  railFeesAccountId,
  readPayoutHold,
  readPayoutLedgerFacts,
  settleOutcome,
  type PayoutHold,
} from "../../src/domain/settlement/index.js";
import { account, fundAuthor, openSettlementLedger, submit, transferStatuses, type SettlementLedger } from "./fixture.js";

let l: SettlementLedger;
beforeEach(async () => {
  l = await openSettlementLedger();
});
afterEach(async () => {
  await l.close();
});

const outbound = () => railAccountId("rail_outbound", "base");
const fees = () => railFeesAccountId("base");

async function hold(author_id: string, key: string, net_micro: bigint, fee_micro: bigint): Promise<PayoutHold> {
  const plan = payoutHoldPlan({ author_id, idempotency_key: key, rail: "base", net_micro, fee_micro });
  expect(holdOutcome(await submit(l, plan.transfers))).toEqual({ kind: "held" });
  return plan.hold;
}

async function ledgerFacts(payout_id: bigint) {
  const ids = payoutTransferIds(payout_id);
  return readPayoutLedgerFacts(payout_id, await l.client.lookupTransfers([ids.hold, ids.post, ids.void]));
}

describe("payout hold → post", () => {
  it("holds amount from earnings, then posts net to the rail outbound and fee to the rail fees, exactly", async () => {
    const earnings = await fundAuthor(l, "author-a", 10_000_000n);
    const h = await hold("author-a", "payout-1", 4_900_000n, 100_000n);

    let e = await account(l, earnings);
    expect(e.debits_pending).toBe(5_000_000n);
    expect(availableMicro(e)).toBe(5_000_000n);
    expect((await account(l, outbound())).credits_posted).toBe(0n);

    // The hold read back from the ledger is the one planned.
    const ids = payoutTransferIds(h.payout_id);
    const [t1, t2] = await l.client.lookupTransfers([ids.hold, ids.fee_hold]);
    expect(readPayoutHold(t1!, t2!)).toEqual(h);

    expect(settleOutcome(await submit(l, payoutPostPlan(h)))).toEqual({ kind: "applied" });
    e = await account(l, earnings);
    expect([e.debits_pending, e.debits_posted, e.credits_posted]).toEqual([0n, 5_000_000n, 10_000_000n]);
    expect(availableMicro(e)).toBe(5_000_000n);
    const out = await account(l, outbound());
    expect([out.credits_pending, out.credits_posted]).toEqual([0n, 4_900_000n]);
    const fee = await account(l, fees());
    expect([fee.credits_pending, fee.credits_posted]).toEqual([0n, 100_000n]);

    // A retried post (crash after posting) is `exists`, and moves nothing again.
    expect(settleOutcome(await submit(l, payoutPostPlan(h)))).toEqual({ kind: "exists" });
    expect((await account(l, outbound())).credits_posted).toBe(4_900_000n);
    expect((await account(l, earnings)).debits_posted).toBe(5_000_000n);

    expect(derivePayoutState({ ledger: await ledgerFacts(h.payout_id), control: noControl() }, l.nowNs())).toBe("confirmed");
  });

  it("a retried hold with the same key is `exists`; the same key for another amount is a reused key", async () => {
    await fundAuthor(l, "author-b", 10_000_000n);
    const first = await hold("author-b", "k", 1_000_000n, 50_000n);
    const again = payoutHoldPlan({ author_id: "author-b", idempotency_key: "k", rail: "base", net_micro: 1_000_000n, fee_micro: 50_000n });
    expect(again.hold.payout_id).toBe(first.payout_id);
    expect(holdOutcome(await submit(l, again.transfers))).toEqual({ kind: "exists" });
    const other = payoutHoldPlan({ author_id: "author-b", idempotency_key: "k", rail: "base", net_micro: 2_000_000n, fee_micro: 50_000n });
    expect(holdOutcome(await submit(l, other.transfers)).kind).toBe("idempotency_key_reused");
    expect((await account(l, first.earnings_id)).debits_pending).toBe(1_050_000n);
  });

  it("posting a smaller fee than held (Lightning's routing fee cap) returns the rest to the author", async () => {
    const earnings = await fundAuthor(l, "author-ln", 1_000_000n);
    const h = await hold("author-ln", "ln-1", 500_000n, 20_000n);
    expect(settleOutcome(await submit(l, payoutPostPlan(h, { fee_posted_micro: 7_000n }))).kind).toBe("applied");
    const e = await account(l, earnings);
    expect([e.debits_pending, e.debits_posted]).toEqual([0n, 507_000n]);
    expect((await account(l, fees())).credits_posted).toBe(7_000n);
    expect(() => payoutPostPlan(h, { fee_posted_micro: 20_001n })).toThrow(/fee_posted_micro/);
  });
});

describe("payout hold → void", () => {
  it("a definite failure voids the hold: the author's money is back, the rail got nothing", async () => {
    const earnings = await fundAuthor(l, "author-c", 3_000_000n);
    const h = await hold("author-c", "p", 2_000_000n, 100_000n);
    expect(availableMicro(await account(l, earnings))).toBe(900_000n);

    expect(settleOutcome(await submit(l, payoutVoidPlan(h.payout_id, "failed", h.earnings_id)))).toEqual({ kind: "applied" });
    const e = await account(l, earnings);
    expect([e.debits_pending, e.debits_posted, availableMicro(e)]).toEqual([0n, 0n, 3_000_000n]);
    expect((await account(l, outbound())).credits_posted).toBe(0n);
    expect((await account(l, fees())).credits_posted).toBe(0n);
    expect(derivePayoutState({ ledger: await ledgerFacts(h.payout_id), control: { ...noControl(), claimed: true, signed_recorded: true } }, l.nowNs())).toBe("failed");

    // Retry: exists. A cancel racing the failure loses: the ledger keeps the first cause.
    expect(settleOutcome(await submit(l, payoutVoidPlan(h.payout_id, "failed", h.earnings_id)))).toEqual({ kind: "exists" });
    expect(settleOutcome(await submit(l, payoutVoidPlan(h.payout_id, "cancelled", h.earnings_id)))).toEqual({ kind: "voided_with_other_cause" });
    // Posting after the void is the alarm case (money left while the ledger returned it).
    expect(settleOutcome(await submit(l, payoutPostPlan(h)))).toEqual({ kind: "already_voided" });
    expect((await account(l, outbound())).credits_posted).toBe(0n);
  });

  it("a posted payout cannot be voided (failed after the rail confirmed it)", async () => {
    const earnings = await fundAuthor(l, "author-d", 3_000_000n);
    const h = await hold("author-d", "p", 1_000_000n, 0n);
    expect(settleOutcome(await submit(l, payoutPostPlan(h))).kind).toBe("applied");
    expect(settleOutcome(await submit(l, payoutVoidPlan(h.payout_id, "failed", h.earnings_id)))).toEqual({ kind: "already_posted" });
    expect((await account(l, earnings)).debits_posted).toBe(1_000_000n);
    expect((await account(l, outbound())).credits_posted).toBe(1_000_000n);
  });
});

describe("a payout resolves exactly once", () => {
  it("a completion racing a failure: exactly one applies, and the balances follow the one that won", async () => {
    for (let i = 0; i < 20; i++) {
      const author = `author-race-${i}`;
      const earnings = await fundAuthor(l, author, 1_000_000n);
      const h = await hold(author, "p", 600_000n, 10_000n);
      const before = (await account(l, outbound())).credits_posted;
      const submitted = i % 2 === 0 ? [payoutPostPlan(h), payoutVoidPlan(h.payout_id, "failed", h.earnings_id)] : [payoutVoidPlan(h.payout_id, "failed", h.earnings_id), payoutPostPlan(h)];
      const [first, second] = await Promise.all(submitted.map((plan) => submit(l, plan)));
      const kinds = [settleOutcome(first!).kind, settleOutcome(second!).kind].sort();
      const facts = await ledgerFacts(h.payout_id);
      const e = await account(l, earnings);
      expect(e.debits_pending).toBe(0n);
      if (facts.posted) {
        expect(kinds).toEqual(["already_posted", "applied"]);
        expect(e.debits_posted).toBe(610_000n);
        expect((await account(l, outbound())).credits_posted - before).toBe(600_000n);
      } else {
        expect(facts.voided).toBe("failed");
        expect(kinds).toEqual(["already_voided", "applied"]);
        expect(e.debits_posted).toBe(0n);
        expect((await account(l, outbound())).credits_posted).toBe(before);
      }
    }
  });
});

describe("a hold can never overdraw earnings", () => {
  it("two concurrent holds that each fit but not together: exactly one is held, the other is exceeds_credits", async () => {
    const earnings = await fundAuthor(l, "author-e", 1_000_000n);
    const a = payoutHoldPlan({ author_id: "author-e", idempotency_key: "a", rail: "base", net_micro: 550_000n, fee_micro: 50_000n });
    const b = payoutHoldPlan({ author_id: "author-e", idempotency_key: "b", rail: "solana", net_micro: 550_000n, fee_micro: 50_000n });
    const [ra, rb] = await Promise.all([submit(l, a.transfers), submit(l, b.transfers)]);
    const outcomes = [holdOutcome(ra), holdOutcome(rb)].map((o) => o.kind).sort();
    expect(outcomes).toEqual(["held", "insufficient_funds"]);
    expect([...transferStatuses(ra), ...transferStatuses(rb)]).toContain("exceeds_credits");
    const e = await account(l, earnings);
    expect(e.debits_pending).toBe(600_000n);
    expect(availableMicro(e)).toBe(400_000n);
  });

  it("the fee leg counts too: net that fits with a fee that does not is refused whole (linked)", async () => {
    const earnings = await fundAuthor(l, "author-f", 1_000_000n);
    const p = payoutHoldPlan({ author_id: "author-f", idempotency_key: "x", rail: "base", net_micro: 1_000_000n, fee_micro: 1n });
    const r = await submit(l, p.transfers);
    expect(holdOutcome(r)).toEqual({ kind: "insufficient_funds" });
    expect(transferStatuses(r)).toEqual(["linked_event_failed", "exceeds_credits"]);
    const e = await account(l, earnings);
    expect([e.debits_pending, availableMicro(e)]).toEqual([0n, 1_000_000n]);
    expect((await account(l, outbound())).credits_pending).toBe(0n);

    // The refused payout's id is burned (id_already_failed), even once the author earned more:
    // that payout is dead and the author asks again with a new key (ADR 0050).
    await submit(l, [
      newTransfer({
        id: deterministicId("test", "earn-more"),
        debit_account_id: platformAccountId("platform_operator"),
        credit_account_id: earnings,
        amount: 5_000_000n,
        ledger: Ledger.usd_micro,
        code: TransferCode.session_author_share,
      }),
    ]);
    expect(holdOutcome(await submit(l, p.transfers))).toEqual({ kind: "idempotency_key_failed" });
    const facts = await ledgerFacts(p.hold.payout_id);
    expect(facts).toEqual({ held: false, posted: false, voided: null });
    expect(derivePayoutState({ ledger: facts, control: { ...noControl(), quote_expire_time_ns: l.nowNs() + 1n, confirm_refused: true } }, l.nowNs())).toBe(
      "failed",
    );
    const fresh = payoutHoldPlan({ author_id: "author-f", idempotency_key: "y", rail: "base", net_micro: 1_000_000n, fee_micro: 1n });
    expect(holdOutcome(await submit(l, fresh.transfers))).toEqual({ kind: "held" });
  });
});

describe("a payout hold has no timeout", () => {
  it("30 days later the payout is still held (a control hold with a timeout expired) and still posts", async () => {
    const earnings = await fundAuthor(l, "author-g", 2_000_000n);
    const h = await hold("author-g", "slow-rail", 900_000n, 100_000n);
    const plan = payoutHoldPlan({ author_id: "author-g", idempotency_key: "slow-rail", rail: "base", net_micro: 900_000n, fee_micro: 100_000n });
    expect(plan.transfers.map((t) => t.timeout)).toEqual([0, 0]);

    // Control: a pending transfer WITH a timeout from the same earnings, as a payout hold with a
    // timeout would be. The ledger voids it on its own once the clock passes it.
    const control = newTransfer({
      id: deterministicId("test", "timed-hold"),
      debit_account_id: earnings,
      credit_account_id: platformAccountId("platform_revenue"),
      amount: 500_000n,
      ledger: Ledger.usd_micro,
      code: TransferCode.payout,
      flags: TransferFlags.pending,
      timeout: 3600,
    });
    expect(transferStatuses(await submit(l, [control]))).toEqual(["created"]);
    expect((await account(l, earnings)).debits_pending).toBe(1_500_000n);

    l.advanceTime(30 * 24 * 3600);
    // Any write runs the ledger's expiry first; this one is a harmless zero transfer.
    const tick = newTransfer({
      id: deterministicId("test", "tick"),
      debit_account_id: platformAccountId("platform_operator"),
      credit_account_id: platformAccountId("platform_revenue"),
      amount: 0n,
      ledger: Ledger.usd_micro,
      code: TransferCode.manual_deposit,
    });
    expect(transferStatuses(await submit(l, [tick]))).toEqual(["created"]);

    const e = await account(l, earnings);
    expect(e.debits_pending).toBe(1_000_000n); // the timed control hold expired; the payout did not
    expect((await ledgerFacts(h.payout_id)).held).toBe(true);
    expect(settleOutcome(await submit(l, payoutPostPlan(h)))).toEqual({ kind: "applied" });
    expect((await account(l, outbound())).credits_posted).toBe(900_000n);
    expect((await account(l, earnings)).debits_posted).toBe(1_000_000n);
  });
});

function noControl() {
  return { quote_expire_time_ns: 0n, quote_cancelled: false, confirm_refused: false, claimed: false, signed_recorded: false };
}
