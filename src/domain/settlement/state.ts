/**
 * The payout state machine (issue 13: "Forward-only state machine: requested → claimed →
 * submitted → confirmed | failed | cancelled"; docs/adr/0085), preceded by the quote:
 *
 *   quoted ──confirm──▶ requested ──claim──▶ claimed ──record_signed──▶ submitted ──complete──▶ confirmed
 *     │                   │                    │  ▲claim (lease expired)  │  ▲record_signed (replacement)
 *     ├─expire─▶ expired  ├─cancel─▶ cancelled ├─cancel─▶ cancelled       └─fail─▶ failed
 *     ├─cancel─▶ cancelled                     └─fail─▶ failed
 *     └─refuse─▶ failed   (the ledger refused the hold: insufficient earnings; the id is burned)
 *
 * Pure. The state is DERIVED from facts, never stored as a column that could disagree:
 * - ledger facts (the money: hold, post, void and the void's cause) decide every money state;
 * - control-plane facts (quote, claim, recorded signed transaction) decide the rest.
 * When they disagree the ledger wins (a hold whose quote looks expired is `requested`; a posted
 * payout is `confirmed` whatever the control plane recorded) and recovery rewrites the rows.
 * A lease expiring does not move the state back: a claimed payout whose lease expired is
 * claimable again (isClaimable) and stays `claimed`.
 */
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { payoutTransferIds } from "./ids.js";
import { PayoutVoidCause } from "./plans.js";

export const PAYOUT_STATES = ["quoted", "requested", "claimed", "submitted", "confirmed", "failed", "cancelled", "expired"] as const;
export type PayoutState = (typeof PAYOUT_STATES)[number];

export const PAYOUT_EVENTS = ["confirm", "refuse", "expire", "claim", "record_signed", "complete", "fail", "cancel"] as const;
export type PayoutEvent = (typeof PAYOUT_EVENTS)[number];

/** Terminal states: nothing moves them again. */
export const TERMINAL_PAYOUT_STATES: ReadonlySet<PayoutState> = new Set(["confirmed", "failed", "cancelled", "expired"]);

/** Progress order: every accepted event keeps or raises the rank; terminals share the top rank. */
export function payoutStateRank(s: PayoutState): number {
  switch (s) {
    case "quoted":
      return 0;
    case "requested":
      return 1;
    case "claimed":
      return 2;
    case "submitted":
      return 3;
    default:
      return 4;
  }
}

const TRANSITIONS: Readonly<Record<PayoutState, Partial<Record<PayoutEvent, PayoutState>>>> = {
  quoted: { confirm: "requested", refuse: "failed", expire: "expired", cancel: "cancelled" },
  requested: { claim: "claimed", cancel: "cancelled" },
  // claim again: the previous lease expired (the caller checks); cancel: only with the lease
  // expired and nothing signed (the caller checks); fail: e.g. pre-flight found no funds.
  claimed: { claim: "claimed", record_signed: "submitted", fail: "failed", cancel: "cancelled" },
  // record_signed again: a replacement after the chain proved the recorded one can never land.
  submitted: { record_signed: "submitted", complete: "confirmed", fail: "failed" },
  // Retries of the event that ended a payout are answered with the same state (idempotency).
  confirmed: { complete: "confirmed" },
  failed: { fail: "failed", refuse: "failed" },
  cancelled: { cancel: "cancelled" },
  expired: { expire: "expired" },
};

export type TransitionResult = { ok: true; state: PayoutState } | { ok: false; reason: string };

/**
 * The state after `event`, or a refusal naming the state and the event. Forward-only by
 * construction (checked by assertion): no accepted event lowers the rank or leaves a terminal.
 */
export function applyPayoutEvent(state: PayoutState, event: PayoutEvent): TransitionResult {
  const next = TRANSITIONS[state][event];
  if (next === undefined) return { ok: false, reason: `a payout in state ${state} does not accept ${event}` };
  if (payoutStateRank(next) < payoutStateRank(state) || (TERMINAL_PAYOUT_STATES.has(state) && next !== state)) {
    throw new Error(`payout state machine moved backward: ${state} --${event}--> ${next}`);
  }
  return { ok: true, state: next };
}

// ---- facts and derivation ----------------------------------------------------------------------

/** What the ledger says about a payout (read by id, see readPayoutLedgerFacts). */
export interface PayoutLedgerFacts {
  held: boolean;
  posted: boolean;
  /** The void's cause, or null when not voided. */
  voided: "cancelled" | "failed" | null;
}

/** What the control-plane database says about a payout. */
export interface PayoutControlFacts {
  /** The quote's expiry (exclusive), ns. */
  quote_expire_time_ns: bigint;
  /** The author abandoned the quote before confirming it (nothing was held). */
  quote_cancelled: boolean;
  /** The ledger refused the confirmation's hold (insufficient earnings); the payout id is burned. */
  confirm_refused: boolean;
  /** An adapter claimed it at least once. */
  claimed: boolean;
  /** A signed transaction was recorded. */
  signed_recorded: boolean;
}

export interface PayoutFacts {
  ledger: PayoutLedgerFacts;
  control: PayoutControlFacts;
}

/**
 * The state of a payout at `now_ns`, from its facts. Throws on facts the ledger cannot produce
 * (posted and voided; posted or voided without a hold).
 */
export function derivePayoutState(facts: PayoutFacts, now_ns: bigint): PayoutState {
  const { ledger, control } = facts;
  if (ledger.posted && ledger.voided !== null) throw new Error("payout both posted and voided: ledger invariant broken");
  if ((ledger.posted || ledger.voided !== null) && !ledger.held) throw new Error("payout posted or voided without a hold");
  if (ledger.posted) return "confirmed";
  if (ledger.voided !== null) return ledger.voided;
  if (ledger.held) {
    if (control.signed_recorded) return "submitted";
    if (control.claimed) return "claimed";
    return "requested";
  }
  if (control.quote_cancelled) return "cancelled";
  if (control.confirm_refused) return "failed";
  return now_ns < control.quote_expire_time_ns ? "quoted" : "expired";
}

/**
 * The facts an accepted event records, and where: confirm/complete/fail/cancel (after confirm)
 * write the ledger; claim/record_signed/refuse (and cancelling a quote) write the control plane;
 * expire writes nothing (time passes). The service applies exactly these writes.
 */
export function payoutFactsAfter(facts: PayoutFacts, event: PayoutEvent): PayoutFacts {
  const ledger = { ...facts.ledger };
  const control = { ...facts.control };
  switch (event) {
    case "confirm":
      ledger.held = true;
      break;
    case "refuse":
      if (!ledger.held) control.confirm_refused = true;
      break;
    case "claim":
      control.claimed = true;
      break;
    case "record_signed":
      control.signed_recorded = true;
      break;
    case "complete":
      if (ledger.held && ledger.voided === null) ledger.posted = true;
      break;
    case "fail":
      if (ledger.held && !ledger.posted && ledger.voided === null) ledger.voided = "failed";
      break;
    case "cancel":
      // Before a hold there is nothing to void: the quote is abandoned (a control-plane fact).
      if (!ledger.held) control.quote_cancelled = true;
      else if (!ledger.posted && ledger.voided === null) ledger.voided = "cancelled";
      break;
    case "expire":
      break;
  }
  return { ledger, control };
}

/** Whether an adapter may claim the payout now: queued, or claimed under an expired lease. */
export function isClaimable(state: PayoutState, lease_expire_time_ns: bigint | null, now_ns: bigint): boolean {
  if (state === "requested") return true;
  return state === "claimed" && (lease_expire_time_ns === null || lease_expire_time_ns <= now_ns);
}

/** Whether the author may cancel now (CancelPayout): quoted, queued, or claimed under an expired lease. */
export function isCancellable(state: PayoutState, lease_expire_time_ns: bigint | null, now_ns: bigint): boolean {
  return state === "quoted" || isClaimable(state, lease_expire_time_ns, now_ns);
}

/**
 * Ledger facts of a payout from the transfers found by looking up its ids (payoutTransferIds:
 * lookupTransfers on hold, post and void). Throws when a found transfer does not fit its id.
 */
export function readPayoutLedgerFacts(payout_id: bigint, found: readonly Transfer[]): PayoutLedgerFacts {
  const ids = payoutTransferIds(payout_id);
  const byId = new Map(found.map((t) => [t.id, t]));
  const hold = byId.get(ids.hold);
  const post = byId.get(ids.post);
  const voidT = byId.get(ids.void);
  if (hold !== undefined && !(hold.flags & TransferFlags.pending)) throw new Error("payout hold is not pending");
  if (post !== undefined && post.pending_id !== ids.hold) throw new Error("payout post does not resolve the hold");
  if (voidT !== undefined && voidT.pending_id !== ids.hold) throw new Error("payout void does not resolve the hold");
  let voided: PayoutLedgerFacts["voided"] = null;
  if (voidT !== undefined) {
    if (voidT.user_data_64 === PayoutVoidCause.cancelled) voided = "cancelled";
    else if (voidT.user_data_64 === PayoutVoidCause.failed) voided = "failed";
    else throw new Error(`payout void has unknown cause ${voidT.user_data_64}`);
  }
  return { held: hold !== undefined, posted: post !== undefined, voided };
}
