/**
 * AdminService governance handlers (issue 16, ADR 0100/0101): revenue rules and the audit log.
 * Each handler: authorise (one visible step), parse the request, run one store call (which writes
 * the change and its audit entry in one transaction), map the result or the domain's refusal.
 */
import { create } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  AdminService,
  ActivateRevenueRuleResponseSchema,
  ApproveRevenueRuleResponseSchema,
  CreateRevenueRuleResponseSchema,
  EmergencyActivateRevenueRuleResponseSchema,
  GetRevenueRuleResponseSchema,
  ListAuditEntriesResponseSchema,
  ListRevenueRulesResponseSchema,
  RejectRevenueRuleResponseSchema,
  RevenueRuleScopeKind,
  RevenueRuleState,
  SubmitRevenueRuleResponseSchema,
  VerifyAuditLogResponseSchema,
} from "../../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { AUDIT_PAGE_MAX, listAudit } from "../../controlplane/audit.js";
import { RuleNotFoundError, type Actor, type GovernanceStore } from "../../controlplane/governance.js";
import { RuleInputError, RuleTransitionError, requireText, type RuleScope, type RuleState, type ScopeKind } from "../../domain/revenue-rules.js";
import { principalKey, requestIdKey } from "../../server/principal.js";
import { isAdmin, principalOf, requireAdmin, requireGovernanceScope, requireScope } from "../authz.js";
import { failedPrecondition, invalidArgument, permissionDenied, statusError } from "../errors.js";
import type { AuditVerifier } from "../governance-runtime.js";
import { auditEntryView, authorRuleView, nsOfTimestamp, ruleView } from "./governance-views.js";
import type { Kysely } from "kysely";
import type { Database } from "../../controlplane/schema.js";

/** What the governance handlers depend on. */
export interface GovernanceDeps {
  db: Kysely<Database>;
  rules: GovernanceStore;
  audit: AuditVerifier;
}

const STATES: Record<RuleState, RevenueRuleState> = {
  draft: RevenueRuleState.DRAFT,
  pending_approval: RevenueRuleState.PENDING_APPROVAL,
  cooling_down: RevenueRuleState.COOLING_DOWN,
  active: RevenueRuleState.ACTIVE,
  superseded: RevenueRuleState.SUPERSEDED,
  rejected: RevenueRuleState.REJECTED,
};
const SCOPE_KINDS: Record<ScopeKind, RevenueRuleScopeKind> = {
  platform: RevenueRuleScopeKind.PLATFORM,
  masque: RevenueRuleScopeKind.MASQUE,
  author: RevenueRuleScopeKind.AUTHOR,
};
const stateOf = (s: RevenueRuleState): RuleState | undefined => (Object.keys(STATES) as RuleState[]).find((k) => STATES[k] === s);
const scopeKindOf = (k: RevenueRuleScopeKind): ScopeKind | undefined => (Object.keys(SCOPE_KINDS) as ScopeKind[]).find((x) => SCOPE_KINDS[x] === k);

function actorOf(ctx: HandlerContext): Actor {
  const p = ctx.values.get(principalKey);
  if (!p) throw permissionDenied("no principal");
  return { kind: p.kind, id: p.id, request_id: ctx.values.get(requestIdKey) || "unknown" };
}

/** Map the domain's and store's refusals to statuses; anything else propagates. */
async function mapped<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof RuleInputError) throw invalidArgument([{ field: err.field, description: err.message }]);
    if (err instanceof RuleNotFoundError) throw statusError(Code.NotFound, "RULE_NOT_FOUND", err.message, { rule_id: err.rule_id });
    if (err instanceof RuleTransitionError) {
      if (err.code === "FOUR_EYES" || err.code === "NOT_CREATOR") throw statusError(Code.PermissionDenied, err.code, err.message);
      throw failedPrecondition(err.code, err.message);
    }
    throw err;
  }
}

const RULE_ID_RE = /^[0-9a-f-]{36}$/;
function ruleId(v: string): string {
  if (!RULE_ID_RE.test(v)) throw invalidArgument([{ field: "rule_id", description: "must be a rule id (a UUID as returned by CreateRevenueRule)" }]);
  return v;
}

function pageSize(v: number, dflt: number, max: number): number {
  if (v > max) throw invalidArgument([{ field: "page_size", description: `must be at most ${max}` }]);
  return v === 0 ? dflt : v;
}

function decodeToken<T>(token: string, parse: (parts: string[]) => T | null): T | undefined {
  if (token === "") return undefined;
  const parts = Buffer.from(token, "base64url").toString("utf8").split("|");
  const v = parse(parts);
  if (v === null) throw invalidArgument([{ field: "page_token", description: "not a page token from this method" }]);
  return v;
}
const encodeToken = (...parts: string[]): string => Buffer.from(parts.join("|"), "utf8").toString("base64url");

/** The governance part of the AdminService implementation. */
export function governanceHandlers(deps: GovernanceDeps): Partial<ServiceImpl<typeof AdminService>> {
  const { rules } = deps;
  return {
    async createRevenueRule(req, ctx) {
      requireGovernanceScope(principalOf(ctx), "admin:rules:write", "create revenue rules");
      const kind = scopeKindOf(req.scopeKind);
      if (kind === undefined) throw invalidArgument([{ field: "scope_kind", description: "must be PLATFORM, MASQUE or AUTHOR" }]);
      const scope: RuleScope = { kind, value: req.scopeValue };
      const rule = await mapped(() => rules.create(actorOf(ctx), { scope, author_bps: req.authorBps, platform_fee_bps: req.platformFeeBps, description: req.description }));
      return create(CreateRevenueRuleResponseSchema, { rule: ruleView(rule) });
    },
    async submitRevenueRule(req, ctx) {
      requireGovernanceScope(principalOf(ctx), "admin:rules:write", "submit revenue rules");
      const rule = await mapped(() => rules.submit(actorOf(ctx), ruleId(req.ruleId)));
      return create(SubmitRevenueRuleResponseSchema, { rule: ruleView(rule) });
    },
    async approveRevenueRule(req, ctx) {
      requireGovernanceScope(principalOf(ctx), "admin:rules:approve", "approve revenue rules");
      const rule = await mapped(() => rules.approve(actorOf(ctx), ruleId(req.ruleId)));
      return create(ApproveRevenueRuleResponseSchema, { rule: ruleView(rule) });
    },
    async rejectRevenueRule(req, ctx) {
      requireGovernanceScope(principalOf(ctx), "admin:rules:approve", "reject revenue rules");
      const rule = await mapped(async () => rules.reject(actorOf(ctx), ruleId(req.ruleId), requireText("reason", req.reason)));
      return create(RejectRevenueRuleResponseSchema, { rule: ruleView(rule) });
    },
    async activateRevenueRule(req, ctx) {
      requireGovernanceScope(principalOf(ctx), "admin:rules:approve", "activate revenue rules");
      const rule = await mapped(() => rules.activate(actorOf(ctx), ruleId(req.ruleId)));
      return create(ActivateRevenueRuleResponseSchema, { rule: ruleView(rule) });
    },
    async emergencyActivateRevenueRule(req, ctx) {
      requireGovernanceScope(principalOf(ctx), "admin:rules:emergency", "emergency-activate revenue rules");
      const rule = await mapped(async () => rules.emergencyActivate(actorOf(ctx), ruleId(req.ruleId), requireText("justification", req.justification)));
      return create(EmergencyActivateRevenueRuleResponseSchema, { rule: ruleView(rule) });
    },
    async getRevenueRule(req, ctx) {
      requireAdmin(principalOf(ctx), "read revenue rules");
      const rule = await rules.get(ruleId(req.ruleId));
      if (!rule) throw statusError(Code.NotFound, "RULE_NOT_FOUND", `revenue rule ${req.ruleId} not found`, { rule_id: req.ruleId });
      return create(GetRevenueRuleResponseSchema, { rule: ruleView(rule) });
    },
    async listRevenueRules(req, ctx) {
      const p = principalOf(ctx);
      const kind = req.scopeKind === RevenueRuleScopeKind.UNSPECIFIED ? undefined : scopeKindOf(req.scopeKind);
      // An author reads the rules that set its split (the platform's and its own author-scoped
      // ones; the dashboard's author page), without who proposed or approved them. Masque-scoped
      // rules and everything else stay admin-only.
      const asAuthor = p.kind === "author" && !isAdmin(p);
      if (asAuthor) {
        requireScope(p, ["ledger:read"], "list revenue rules");
        const own = (kind === "platform" && req.scopeValue === "") || (kind === "author" && req.scopeValue === p.id);
        if (!own) throw permissionDenied(`author ${JSON.stringify(p.id)} may list only the platform's revenue rules (scope_kind PLATFORM) and its own (scope_kind AUTHOR, scope_value its id)`, { principal_kind: p.kind });
      } else requireAdmin(p, "list revenue rules");
      const limit = pageSize(req.pageSize, 50, 500);
      const after = decodeToken(req.pageToken, ([t, id]) => (t && /^\d+$/.test(t) && id ? { create_time_ns: BigInt(t), rule_id: id } : null));
      const state = req.state === RevenueRuleState.UNSPECIFIED ? undefined : stateOf(req.state);
      const page = await rules.list({ ...(state ? { state } : {}), ...(kind ? { scope: { kind, value: req.scopeValue } } : {}), ...(after ? { after } : {}) }, limit + 1);
      const more = page.length > limit;
      const shown = page.slice(0, limit);
      const last = shown[shown.length - 1];
      return create(ListRevenueRulesResponseSchema, {
        // drafts are an admin's work in progress: not shown to authors
        rules: asAuthor ? shown.filter((r) => r.state !== "draft").map(authorRuleView) : shown.map(ruleView),
        nextPageToken: more && last ? encodeToken(last.create_time_ns.toString(), last.rule_id) : "",
      });
    },
    async listAuditEntries(req, ctx) {
      requireAdmin(principalOf(ctx), "read the audit log");
      const limit = pageSize(req.pageSize, 100, AUDIT_PAGE_MAX - 1);
      const after = decodeToken(req.pageToken, ([s]) => (s && /^\d+$/.test(s) ? BigInt(s) : null));
      const page = await listAudit(
        deps.db,
        {
          ...(req.ruleId ? { rule_id: req.ruleId } : {}),
          ...(req.actorId ? { actor_id: req.actorId } : {}),
          ...(req.startTime ? { start_time_ns: nsOfTimestamp(req.startTime) } : {}),
          ...(req.endTime ? { end_time_ns: nsOfTimestamp(req.endTime) } : {}),
          ...(after !== undefined ? { after_seq: after } : {}),
        },
        limit + 1,
      );
      const more = page.length > limit;
      const shown = page.slice(0, limit);
      const last = shown[shown.length - 1];
      return create(ListAuditEntriesResponseSchema, {
        entries: shown.map(auditEntryView),
        nextPageToken: more && last ? encodeToken(last.seq.toString()) : "",
      });
    },
    async verifyAuditLog(_req, ctx) {
      requireAdmin(principalOf(ctx), "verify the audit log");
      const v = await deps.audit.verify();
      return create(VerifyAuditLogResponseSchema, {
        ok: v.ok,
        entries: BigInt(v.entries),
        anchors: BigInt(v.anchors),
        firstBadSeq: v.first_bad_seq ?? 0n,
        detail: v.detail,
      });
    },
  };
}
