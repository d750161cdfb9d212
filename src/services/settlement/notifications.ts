/**
 * The author's notifications of payout destination changes (issue 13: "the author is notified —
 * the classic account takeover path"; docs/adr/0089). A change is recorded as an outbox row in the
 * control plane, in the same transaction as the change itself, so no change exists without its
 * notification; the webhook engine (issue 16) delivers the rows. The body follows Standard
 * Webhooks: `{"type", "timestamp", "data"}`; the row's id is the message id (`webhook-id`).
 */
import { randomBytes } from "node:crypto";
import type { SettlementNotification } from "../../controlplane/settlement.js";
import type { RailName } from "../../domain/codes.js";

/** A new destination is cooling: it pays from `effective_time` unless the author withdraws it. */
export const DESTINATION_CHANGE_PENDING = "payout_destination.change_pending";
/** A pending change was withdrawn (CancelPayoutDestinationChange or re-registering the active address). */
export const DESTINATION_CHANGE_WITHDRAWN = "payout_destination.change_withdrawn";

const NS_PER_MS = 1_000_000n;

function iso(ns: bigint): string {
  return new Date(Number(ns / NS_PER_MS)).toISOString();
}

/** Builds the outbox row for a destination change (pure but for the random id). */
export function destinationChangeNotification(args: {
  event_type: typeof DESTINATION_CHANGE_PENDING | typeof DESTINATION_CHANGE_WITHDRAWN;
  author_id: string;
  rail: RailName;
  /** The address the change concerns (the new one, or the withdrawn one). */
  address: string;
  /** The destination paying now. */
  active_address: string | null;
  /** When the pending address would pay (pending changes only). */
  effective_time_ns: bigint | null;
  now_ns: bigint;
}): SettlementNotification {
  const data = {
    author_id: args.author_id,
    rail: args.rail,
    address: args.address,
    active_address: args.active_address,
    ...(args.effective_time_ns === null ? {} : { effective_time: iso(args.effective_time_ns) }),
  };
  return {
    notification_id: `ntf_${randomBytes(16).toString("hex")}`,
    event_type: args.event_type,
    author_id: args.author_id,
    rail: args.rail,
    payload: JSON.stringify({ type: args.event_type, timestamp: iso(args.now_ns), data }),
    create_time_ns: args.now_ns,
  };
}
