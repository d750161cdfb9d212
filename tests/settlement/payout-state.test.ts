/**
 * The payout state machine (issue 13: "Forward-only state machine: requested → claimed →
 * submitted → confirmed | failed | cancelled"): no sequence of events or clock moves ever moves a
 * payout backward or out of a terminal state, and the state derived from the recorded facts is the
 * state the machine tracked.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  applyPayoutEvent,
  derivePayoutState,
  isCancellable,
  isClaimable,
  PAYOUT_EVENTS,
  PAYOUT_STATES,
  payoutFactsAfter,
  payoutStateRank,
  TERMINAL_PAYOUT_STATES,
  type PayoutEvent,
  type PayoutFacts,
  type PayoutState,
} from "../../src/domain/settlement/index.js";

const T0 = 1_000_000_000_000n;
const TTL_NS = 300_000_000_000n;

function quoted(): PayoutFacts {
  return {
    ledger: { held: false, posted: false, voided: null },
    control: { quote_expire_time_ns: T0 + TTL_NS, quote_cancelled: false, confirm_refused: false, claimed: false, signed_recorded: false },
  };
}

type Step = { event: PayoutEvent } | { advance_ns: bigint };
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.constantFrom(...PAYOUT_EVENTS).map((event) => ({ event })),
  fc.bigInt({ min: 0n, max: 2n * TTL_NS }).map((advance_ns) => ({ advance_ns })),
);

describe("payout state machine", () => {
  it("is forward-only: any sequence of events and clock moves never lowers the state or leaves a terminal", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        let facts = quoted();
        let now = T0;
        let state: PayoutState = derivePayoutState(facts, now);
        expect(state).toBe("quoted");
        for (const s of steps) {
          if ("advance_ns" in s) {
            now += s.advance_ns;
          } else {
            // The service's order: derive, ask the machine, then write the event's facts.
            const r = applyPayoutEvent(state, s.event);
            if (r.ok) facts = payoutFactsAfter(facts, s.event);
          }
          const next = derivePayoutState(facts, now);
          expect(payoutStateRank(next)).toBeGreaterThanOrEqual(payoutStateRank(state));
          if (TERMINAL_PAYOUT_STATES.has(state)) expect(next).toBe(state);
          state = next;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("the derived state equals the state the machine returns for every accepted event", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...PAYOUT_EVENTS), { maxLength: 30 }), (events) => {
        let facts = quoted();
        let state: PayoutState = "quoted";
        for (const event of events) {
          const r = applyPayoutEvent(state, event);
          if (!r.ok) continue;
          // "expire" is a clock fact; derive it at the quote's expiry.
          const now = event === "expire" || state === "expired" ? T0 + TTL_NS : T0;
          facts = payoutFactsAfter(facts, event);
          expect(derivePayoutState(facts, now)).toBe(r.state);
          state = r.state;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("the happy path and the documented refusals", () => {
    const path: [PayoutState, PayoutEvent][] = [
      ["quoted", "confirm"],
      ["requested", "claim"],
      ["claimed", "record_signed"],
      ["submitted", "complete"],
    ];
    const seen = path.map(([s, e]) => applyPayoutEvent(s, e));
    expect(seen).toEqual([
      { ok: true, state: "requested" },
      { ok: true, state: "claimed" },
      { ok: true, state: "submitted" },
      { ok: true, state: "confirmed" },
    ]);
    expect(applyPayoutEvent("submitted", "cancel")).toEqual({ ok: false, reason: "a payout in state submitted does not accept cancel" });
    expect(applyPayoutEvent("confirmed", "fail").ok).toBe(false);
    expect(applyPayoutEvent("failed", "complete").ok).toBe(false);
    expect(applyPayoutEvent("expired", "confirm").ok).toBe(false);
    expect(applyPayoutEvent("requested", "complete").ok).toBe(false);
    // Retries of the ending event are answered, not refused (idempotent calls).
    expect(applyPayoutEvent("confirmed", "complete")).toEqual({ ok: true, state: "confirmed" });
    expect(applyPayoutEvent("cancelled", "cancel")).toEqual({ ok: true, state: "cancelled" });
    // No state accepts an event that would move it backward.
    for (const s of PAYOUT_STATES) for (const e of PAYOUT_EVENTS) {
      const r = applyPayoutEvent(s, e);
      if (r.ok) expect(payoutStateRank(r.state)).toBeGreaterThanOrEqual(payoutStateRank(s));
    }
  });

  it("the ledger decides: a hold makes an expired-looking quote requested; a post makes it confirmed whatever the rows say", () => {
    const f = quoted();
    const late = T0 + 10n * TTL_NS;
    expect(derivePayoutState(f, late)).toBe("expired");
    expect(derivePayoutState({ ...f, ledger: { ...f.ledger, held: true } }, late)).toBe("requested");
    expect(derivePayoutState({ ...f, ledger: { held: true, posted: true, voided: null } }, late)).toBe("confirmed");
    expect(derivePayoutState({ ledger: { held: true, posted: false, voided: "cancelled" }, control: { ...f.control, signed_recorded: true } }, late)).toBe(
      "cancelled",
    );
    expect(() => derivePayoutState({ ...f, ledger: { held: true, posted: true, voided: "failed" } }, T0)).toThrow(/both posted and voided/);
    expect(() => derivePayoutState({ ...f, ledger: { held: false, posted: true, voided: null } }, T0)).toThrow(/without a hold/);
  });

  it("a lease that expires makes a claimed payout claimable and cancellable again without moving it back", () => {
    const lease = T0 + 60_000_000_000n;
    expect(isClaimable("claimed", lease, T0)).toBe(false);
    expect(isCancellable("claimed", lease, T0)).toBe(false);
    expect(isClaimable("claimed", lease, lease)).toBe(true);
    expect(isCancellable("claimed", lease, lease)).toBe(true);
    expect(isClaimable("requested", null, T0)).toBe(true);
    expect(isClaimable("submitted", null, lease)).toBe(false);
    expect(isCancellable("submitted", null, lease)).toBe(false);
    expect(isCancellable("quoted", null, T0)).toBe(true);
    expect(applyPayoutEvent("claimed", "claim")).toEqual({ ok: true, state: "claimed" });
  });
});
