/**
 * Payout destinations with a cooling period (issue 13: a changed destination takes effect only
 * after a cooling period, and the author is notified).
 */
import { describe, expect, it } from "vitest";
import {
  cancelDestinationChange,
  payingDestination,
  registerDestination,
  type RailDestinations,
} from "../../src/domain/settlement/index.js";

const S = 1_000_000_000n;
const T0 = 1_000n * S;
const COOL_S = 86_400;
const none: RailDestinations = { active: null, pending: null };

describe("payout destinations", () => {
  it("the first destination pays at once, without a notification", () => {
    const r = registerDestination(none, "0xA", T0, COOL_S);
    expect(r.change).toBe("activated");
    expect(r.notify).toBe(false);
    expect(payingDestination(r.destinations, T0)?.address).toBe("0xA");
  });

  it("a changed destination pays only after the cooling period; until then the old one pays; the author is notified", () => {
    const first = registerDestination(none, "0xA", T0, COOL_S).destinations;
    const r = registerDestination(first, "0xB", T0 + 10n * S, COOL_S);
    expect([r.change, r.notify]).toEqual(["pending", true]);
    const due = T0 + 10n * S + BigInt(COOL_S) * S;
    expect(payingDestination(r.destinations, due - 1n)?.address).toBe("0xA");
    expect(payingDestination(r.destinations, due)?.address).toBe("0xB");
  });

  it("changing again while pending restarts the cooling period (repeated changes never shorten it)", () => {
    let d = registerDestination(none, "0xA", T0, COOL_S).destinations;
    d = registerDestination(d, "0xB", T0, COOL_S).destinations;
    const later = T0 + BigInt(COOL_S - 1) * S;
    const r = registerDestination(d, "0xC", later, COOL_S);
    expect(r.notify).toBe(true);
    expect(payingDestination(r.destinations, T0 + BigInt(COOL_S) * S)?.address).toBe("0xA");
    expect(payingDestination(r.destinations, later + BigInt(COOL_S) * S)?.address).toBe("0xC");
  });

  it("registering the pending address again is idempotent and does not restart the cooling period", () => {
    let d = registerDestination(none, "0xA", T0, COOL_S).destinations;
    d = registerDestination(d, "0xB", T0, COOL_S).destinations;
    const r = registerDestination(d, "0xB", T0 + 100n * S, COOL_S);
    expect([r.change, r.notify]).toEqual(["pending", false]);
    expect(r.destinations).toEqual(d);
  });

  it("re-registering the active address, or cancelling the change, withdraws a pending change", () => {
    let d = registerDestination(none, "0xA", T0, COOL_S).destinations;
    d = registerDestination(d, "0xEvil", T0 + S, COOL_S).destinations;
    const back = registerDestination(d, "0xA", T0 + 2n * S, COOL_S);
    expect([back.change, back.notify, back.destinations.pending]).toEqual(["unchanged", true, null]);
    expect(payingDestination(back.destinations, T0 + 10n * BigInt(COOL_S) * S)?.address).toBe("0xA");
    const cancelled = cancelDestinationChange(d, T0 + 2n * S);
    expect(cancelled.pending).toBeNull();
    expect(payingDestination(cancelled, T0 + 10n * BigInt(COOL_S) * S)?.address).toBe("0xA");
  });

  it("a change whose cooling period is over cannot be cancelled any more: it is the active destination", () => {
    let d = registerDestination(none, "0xA", T0, COOL_S).destinations;
    d = registerDestination(d, "0xB", T0, COOL_S).destinations;
    const after = cancelDestinationChange(d, T0 + BigInt(COOL_S) * S);
    expect(after.active?.address).toBe("0xB");
  });

  it("a cooling period of 0 is allowed (tests, private deployments) and a negative one is refused", () => {
    let d = registerDestination(none, "0xA", T0, 0).destinations;
    d = registerDestination(d, "0xB", T0, 0).destinations;
    expect(payingDestination(d, T0)?.address).toBe("0xB");
    expect(() => registerDestination(d, "0xC", T0, -1)).toThrow(/cooling_s/);
  });
});
