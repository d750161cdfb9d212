/**
 * Payout destinations per (author, rail) with a cooling period (issue 13: "A changed payout
 * destination takes effect only after a cooling period (configurable), and the author is
 * notified — the classic account takeover path"; docs/adr/0085).
 *
 * Pure. The control plane stores at most one ACTIVE and one PENDING destination per (author,
 * rail); these functions decide what a registration does and which destination pays at a given
 * time. Addresses are compared in their canonical form (the rail's parser canonicalises: EIP-55
 * for Base), so the caller passes canonical addresses. A payout fixes its destination when it is
 * confirmed; a later change never redirects a queued payout.
 */

export interface Destination {
  /** Canonical address. */
  address: string;
  /** When it pays (inclusive), ns. */
  effective_time_ns: bigint;
  /** When it was registered, ns. */
  create_time_ns: bigint;
}

/** One author's destinations on one rail. */
export interface RailDestinations {
  active: Destination | null;
  pending: Destination | null;
}

export type RegistrationChange =
  /** First destination of the rail: active at once. */
  | "activated"
  /** The active address again: nothing to do (a pending change is withdrawn). */
  | "unchanged"
  /** A new address: pending until now + cooling; the author must be notified. */
  | "pending";

const NS_PER_S = 1_000_000_000n;

/** Promotes a pending destination whose cooling period is over (at `now_ns`). */
export function destinationsAt(d: RailDestinations, now_ns: bigint): RailDestinations {
  if (d.pending !== null && d.pending.effective_time_ns <= now_ns) return { active: d.pending, pending: null };
  return d;
}

/** The destination a payout confirmed at `now_ns` pays, or null (NO_PAYOUT_DESTINATION). */
export function payingDestination(d: RailDestinations, now_ns: bigint): Destination | null {
  return destinationsAt(d, now_ns).active;
}

/**
 * What registering `address` (ownership already proven) does at `now_ns` with a cooling period
 * of `cooling_s` seconds (>= 0). A new address while one is pending replaces it and restarts the
 * cooling period, so repeated changes never shorten it. `notify` says whether the author must be
 * told (every change of an existing destination).
 */
export function registerDestination(
  current: RailDestinations,
  address: string,
  now_ns: bigint,
  cooling_s: number,
): { destinations: RailDestinations; change: RegistrationChange; notify: boolean } {
  if (!Number.isInteger(cooling_s) || cooling_s < 0) throw new RangeError("cooling_s: must be an integer >= 0");
  if (address === "") throw new RangeError("address: must not be empty");
  const d = destinationsAt(current, now_ns);
  if (d.active === null) {
    return { destinations: { active: { address, effective_time_ns: now_ns, create_time_ns: now_ns }, pending: null }, change: "activated", notify: false };
  }
  if (d.active.address === address) {
    return { destinations: { active: d.active, pending: null }, change: "unchanged", notify: d.pending !== null };
  }
  if (d.pending !== null && d.pending.address === address) {
    return { destinations: d, change: "pending", notify: false };
  }
  const pending: Destination = { address, effective_time_ns: now_ns + BigInt(cooling_s) * NS_PER_S, create_time_ns: now_ns };
  return { destinations: { active: d.active, pending }, change: "pending", notify: true };
}

/** Withdraws a pending change (CancelPayoutDestinationChange); the active destination stays. */
export function cancelDestinationChange(current: RailDestinations, now_ns: bigint): RailDestinations {
  return { active: destinationsAt(current, now_ns).active, pending: null };
}
