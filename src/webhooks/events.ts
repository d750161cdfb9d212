/**
 * Webhook event types (issue 16, ADR 0105): names, what they mean, the shape of their `data`.
 *
 * The body of every delivery is Standard Webhooks' recommended envelope
 * `{"type": <name>, "timestamp": <RFC 3339>, "data": {...}}`; money is micro-USD as decimal
 * strings (`*_micro`), ids are lowercase hex. An event's id (`webhook-id`, `msg_…`) is derived
 * from its type and an idempotency key, so enqueueing the same fact twice (a retried reaper pass,
 * a recovery) is one event: receivers see one webhook-id and deduplicate on it.
 *
 * Pure: no I/O. `enqueueWebhookEvent` (src/controlplane/webhooks.ts) stores them.
 */
import { createHash } from "node:crypto";
import { idToHex } from "../domain/ids.js";
import type { SessionView } from "../domain/sessions.js";

/** Every event type, with the fields of its data (documentation served by ListWebhookEventTypes). */
export const WEBHOOK_EVENT_TYPES = {
  "session.settled": "A session was settled (doffed by its agent, or reaped at its accrued price). data: session_id, masque, masque_index, author_id, reason (doff|idle|max_length), charged_micro, author_micro, platform_micro, debt_micro, fee_bps, billed_duration_ms, don_time, end_time.",
  "session.expired": "The ledger voided a session's hold at its maximum length before it could be settled; nothing was charged. data: session_id, masque_index, author_id (when known), deadline_time.",
  "revenue_rule.created": "A revenue rule draft was created. data: rule_id, scope, author_share_bps, platform_fee_bps, actor, reason.",
  "revenue_rule.submitted": "A revenue rule was submitted for approval (pending_approval). data: as revenue_rule.created.",
  "revenue_rule.approved": "A revenue rule was approved and is cooling down until effective_time. data: as revenue_rule.created plus approver, effective_time.",
  "revenue_rule.rejected": "A revenue rule was rejected. data: as revenue_rule.created plus approver, reason.",
  "revenue_rule.activated": "A revenue rule became active (end of cooling, or emergency: emergency=true with justification). data: as revenue_rule.created plus emergency, justification.",
  "revenue_rule.superseded": "A revenue rule stopped being active because another replaced it. data: rule_id, scope, superseded_by.",
  "payout.requested": "An author confirmed a payout; its amount is held. data: payout_id, author_id, rail, amount_micro, fee_micro, net_micro, status.",
  "payout.submitted": "A rail adapter recorded the signed transaction and broadcast it. data: as payout.requested plus tx_ref.",
  "payout.completed": "A payout reached the rail's finality depth and was posted. data: as payout.submitted.",
  "payout.failed": "A payout failed definitively and its hold was voided (nothing paid). data: as payout.requested plus failure_reason.",
  "payout.cancelled": "A payout was cancelled before it was sent. data: as payout.requested.",
  "payout_destination.change_pending": "A new payout destination was registered and is cooling: it pays from effective_time unless the author withdraws it (ADR 0089). data: author_id, rail, address, active_address, effective_time.",
  "payout_destination.change_withdrawn": "A pending payout destination change was withdrawn. data: author_id, rail, address, active_address.",
} as const;

export type WebhookEventType = keyof typeof WEBHOOK_EVENT_TYPES;

/** Scalars only: an event's data is flat JSON (nested objects are allowed but not needed). */
export type WebhookData = Record<string, string | number | boolean | null>;

/** One event to enqueue (see enqueueWebhookEvent). */
export interface WebhookEvent {
  /** `msg_` + 26 lowercase base32 chars, derived by `webhookEventId`. */
  readonly event_id: string;
  readonly type: WebhookEventType;
  /**
   * The author the event concerns (their endpoints receive it); null: platform-only (admin
   * endpoints receive every event).
   */
  readonly author_id: string | null;
  readonly data: WebhookData;
  /** When the fact happened, ns since the epoch (the envelope's `timestamp`). */
  readonly time_ns: bigint;
}

export function isWebhookEventType(s: string): s is WebhookEventType {
  return Object.prototype.hasOwnProperty.call(WEBHOOK_EVENT_TYPES, s);
}

/** Deterministic event id of (type, idempotency key): `msg_` + 26 base32 chars (130 bits). */
export function webhookEventId(type: WebhookEventType, key: string): string {
  const d = createHash("sha256").update("masques-ledger/webhook-event/v1\0").update(type).update("\0").update(key).digest();
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let bits = 0;
  let acc = 0;
  let out = "";
  for (const byte of d) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < 26) {
      out += alphabet[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
    if (out.length === 26) break;
  }
  return `msg_${out}`;
}

/** The exact JSON body delivered (Standard Webhooks envelope). */
export function webhookPayload(e: WebhookEvent): string {
  return JSON.stringify({ type: e.type, timestamp: rfc3339(e.time_ns), data: e.data });
}

/** ns since the epoch as RFC 3339 with milliseconds (UTC). */
export function rfc3339(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}

/** `session.settled` for a settled (doffed or reaped) session view. */
export function sessionSettledEvent(v: SessionView, masque: string, author_id: string): WebhookEvent {
  if (v.status !== "doffed" && v.status !== "reaped") throw new Error(`session.settled for a session in state ${v.status}`);
  const sid = idToHex(v.session_id);
  const end = v.end_ns ?? v.last_activity_ns;
  return {
    event_id: webhookEventId("session.settled", sid),
    type: "session.settled",
    author_id,
    time_ns: end,
    data: {
      session_id: sid,
      masque,
      masque_index: v.masque_index,
      author_id,
      reason: v.close_reason ?? (v.status === "doffed" ? "doff" : "idle"),
      charged_micro: (v.posted_micro + v.debt_micro).toString(),
      author_micro: v.author_micro.toString(),
      platform_micro: v.platform_micro.toString(),
      debt_micro: v.debt_micro.toString(),
      fee_bps: v.fee_bps,
      billed_duration_ms: v.billed_duration_ms.toString(),
      don_time: rfc3339(v.don_ns),
      end_time: rfc3339(end),
    },
  };
}

/** `session.expired`: the ledger voided the hold at `deadline_ns` (author null when unknown). */
export function sessionExpiredEvent(session_id: bigint, masque_index: number, author_id: string | null, deadline_ns: bigint): WebhookEvent {
  const sid = idToHex(session_id);
  return {
    event_id: webhookEventId("session.expired", sid),
    type: "session.expired",
    author_id,
    time_ns: deadline_ns,
    data: { session_id: sid, masque_index, author_id, deadline_time: rfc3339(deadline_ns) },
  };
}

/** A revenue rule as the `revenue_rule.*` events describe it (src/domain/revenue-rules.ts RevenueRule). */
export interface RuleEventSubject {
  readonly rule_id: string;
  readonly scope: { readonly kind: string; readonly value: string };
  readonly author_bps: number;
  readonly platform_fee_bps: number;
  readonly approved_by: string | null;
  readonly cooling_end_time_ns: bigint | null;
  readonly emergency: boolean;
  readonly justification: string;
  readonly superseded_by_rule: string | null;
}

/** The `revenue_rule.*` event types, by the transition that emits them. */
export type RevenueRuleEventType = Extract<WebhookEventType, `revenue_rule.${string}`>;

/**
 * `revenue_rule.<transition>` for `rule` after the transition, done by `actor` at `time_ns`
 * (platform-only: author_id null, so admin endpoints receive it). One event per (type, rule): a
 * rule passes each transition at most once, so the rule id is the idempotency key.
 */
export function revenueRuleEvent(type: RevenueRuleEventType, rule: RuleEventSubject, actor: string, reason: string, time_ns: bigint): WebhookEvent {
  const scope = rule.scope.kind === "platform" ? "platform" : `${rule.scope.kind}:${rule.scope.value}`;
  const data: WebhookData =
    type === "revenue_rule.superseded"
      ? { rule_id: rule.rule_id, scope, superseded_by: rule.superseded_by_rule }
      : { rule_id: rule.rule_id, scope, author_share_bps: rule.author_bps, platform_fee_bps: rule.platform_fee_bps, actor, reason };
  if (type === "revenue_rule.approved") {
    data.approver = rule.approved_by;
    data.effective_time = rule.cooling_end_time_ns === null ? null : rfc3339(rule.cooling_end_time_ns);
  }
  if (type === "revenue_rule.rejected") data.approver = actor;
  if (type === "revenue_rule.activated") {
    data.emergency = rule.emergency;
    data.justification = rule.justification;
  }
  return { event_id: webhookEventId(type, rule.rule_id), type, author_id: null, time_ns, data };
}

/** A payout as the `payout.*` events describe it (src/controlplane/settlement.ts PayoutRow). */
export interface PayoutEventSubject {
  readonly payout_id: string;
  readonly author_id: string;
  readonly rail: string;
  readonly amount_micro: bigint;
  readonly fee_micro: bigint;
  readonly net_micro: bigint;
  readonly tx_ref: string | null;
  readonly failure_reason: string | null;
}

/** The `payout.*` event types. */
export type PayoutEventType = Extract<WebhookEventType, `payout.${string}`>;

const PAYOUT_STATUS: Record<PayoutEventType, string> = {
  "payout.requested": "queued",
  "payout.submitted": "submitted",
  "payout.completed": "completed",
  "payout.failed": "failed",
  "payout.cancelled": "cancelled",
};

/**
 * `payout.<state>` for `p` at `time_ns`, scoped to the payout's author (their endpoints and the
 * admins' receive it). One event per (type, payout): a payout enters each state at most once.
 */
export function payoutEvent(type: PayoutEventType, p: PayoutEventSubject, time_ns: bigint): WebhookEvent {
  const data: WebhookData = {
    payout_id: p.payout_id,
    author_id: p.author_id,
    rail: p.rail,
    amount_micro: p.amount_micro.toString(),
    fee_micro: p.fee_micro.toString(),
    net_micro: p.net_micro.toString(),
    status: PAYOUT_STATUS[type],
  };
  if (type === "payout.submitted" || type === "payout.completed") data.tx_ref = p.tx_ref;
  if (type === "payout.failed") data.failure_reason = p.failure_reason;
  return { event_id: webhookEventId(type, p.payout_id), type, author_id: p.author_id, time_ns, data };
}

/**
 * The webhook event of a settlement outbox row (ADR 0089; its payload is already a Standard
 * Webhooks body): same type and data, the row's id as idempotency key. Throws when the row's
 * type is not a webhook event type or its payload is not such a body.
 */
export function settlementNotificationEvent(n: { notification_id: string; event_type: string; author_id: string; payload: string; create_time_ns: bigint }): WebhookEvent {
  if (!isWebhookEventType(n.event_type)) throw new Error(`settlement notification ${n.notification_id}: unknown event type ${n.event_type}`);
  const body = JSON.parse(n.payload) as { type?: unknown; data?: unknown };
  if (body.type !== n.event_type || typeof body.data !== "object" || body.data === null) {
    throw new Error(`settlement notification ${n.notification_id}: payload is not a ${n.event_type} body`);
  }
  return { event_id: webhookEventId(n.event_type, n.notification_id), type: n.event_type, author_id: n.author_id, time_ns: n.create_time_ns, data: body.data as WebhookData };
}
