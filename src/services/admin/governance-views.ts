/** AdminService governance views: a revenue rule and an audit entry as their proto messages. */
import { create } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  AuditEntrySchema,
  RevenueRuleScopeKind,
  RevenueRuleSchema,
  RevenueRuleState,
  type AuditEntry as AuditEntryMessage,
  type RevenueRule as RevenueRuleMessage,
} from "../../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import type { AuditEntry } from "../../domain/audit-chain.js";
import type { RevenueRule } from "../../domain/revenue-rules.js";
import { timestampOfNs } from "./views.js";

const STATE: Record<RevenueRule["state"], RevenueRuleState> = {
  draft: RevenueRuleState.DRAFT,
  pending_approval: RevenueRuleState.PENDING_APPROVAL,
  cooling_down: RevenueRuleState.COOLING_DOWN,
  active: RevenueRuleState.ACTIVE,
  superseded: RevenueRuleState.SUPERSEDED,
  rejected: RevenueRuleState.REJECTED,
};
const KIND: Record<RevenueRule["scope"]["kind"], RevenueRuleScopeKind> = {
  platform: RevenueRuleScopeKind.PLATFORM,
  masque: RevenueRuleScopeKind.MASQUE,
  author: RevenueRuleScopeKind.AUTHOR,
};

const ts = (ns: bigint | null): Timestamp | undefined => (ns === null ? undefined : timestampOfNs(ns));

/** google.protobuf.Timestamp -> ns since the epoch. */
export function nsOfTimestamp(t: Timestamp): bigint {
  return t.seconds * 1_000_000_000n + BigInt(t.nanos);
}

/** A stored rule as the API returns it. */
export function ruleView(r: RevenueRule): RevenueRuleMessage {
  return create(RevenueRuleSchema, {
    ruleId: r.rule_id,
    scopeKind: KIND[r.scope.kind],
    scopeValue: r.scope.value,
    authorBps: r.author_bps,
    platformFeeBps: r.platform_fee_bps,
    state: STATE[r.state],
    description: r.description,
    emergency: r.emergency,
    justification: r.justification,
    createdBy: r.created_by,
    approvedBy: r.approved_by ?? "",
    rejectedBy: r.rejected_by ?? "",
    rejectReason: r.reject_reason ?? "",
    activatedBy: r.activated_by ?? "",
    supersededByRuleId: r.superseded_by_rule ?? "",
    createTime: ts(r.create_time_ns),
    submitTime: ts(r.submit_time_ns),
    approveTime: ts(r.approve_time_ns),
    coolingEndTime: ts(r.cooling_end_time_ns),
    activateTime: ts(r.activate_time_ns),
    supersedeTime: ts(r.supersede_time_ns),
    rejectTime: ts(r.reject_time_ns),
  });
}

/**
 * A stored rule as an author reads it (ListRevenueRules of its own split): the split, state and
 * times, without the admins' subjects (created/approved/rejected/activated by).
 */
export function authorRuleView(r: RevenueRule): RevenueRuleMessage {
  const v = ruleView(r);
  v.createdBy = "";
  v.approvedBy = "";
  v.rejectedBy = "";
  v.activatedBy = "";
  return v;
}

/** A stored audit entry as the API returns it. */
export function auditEntryView(e: AuditEntry): AuditEntryMessage {
  return create(AuditEntrySchema, {
    seq: e.seq,
    time: timestampOfNs(e.time_ns),
    actorKind: e.actor_kind,
    actorId: e.actor_id,
    action: e.action,
    subject: e.subject,
    ruleId: e.rule_id ?? "",
    requestId: e.request_id,
    reason: e.reason,
    beforeJson: e.before_json ?? "",
    afterJson: e.after_json ?? "",
    emergency: e.emergency,
    prevHash: e.prev_hash,
    hash: e.hash,
  });
}
