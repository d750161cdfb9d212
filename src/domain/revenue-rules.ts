/**
 * Revenue rules (issue 16, seed 003 FR-3, ADR 0100): how a settled session's charge is split
 * between the masque's author and the platform, and the rule's lifecycle. Pure: the control plane
 * (src/controlplane/governance.ts) stores rules and runs these checks inside its transactions.
 *
 *   draft ──submit──▶ pending_approval ──approve──▶ cooling_down ──(cooling over)──▶ active ──▶ superseded
 *                          │                            │
 *                          └──────reject (reason)───────┴──▶ rejected (final: never resubmitted)
 *   draft | pending_approval | cooling_down ──emergency activation (justification)──▶ active (flagged)
 *
 * A rule's scope is the whole platform, one masque (by name) or one author. The rule that applies
 * to a session is the most specific active one: masque, then author, then platform.
 */
import { BPS_DENOMINATOR } from "./split.js";

export const RULE_STATES = ["draft", "pending_approval", "cooling_down", "active", "superseded", "rejected"] as const;
export type RuleState = (typeof RULE_STATES)[number];

export const SCOPE_KINDS = ["platform", "masque", "author"] as const;
export type ScopeKind = (typeof SCOPE_KINDS)[number];

/** Where a rule applies. `value` is "" for the platform, else a masque name or an author id. */
export interface RuleScope {
  kind: ScopeKind;
  value: string;
}

/** A stored rule (times in ns since the epoch; null when the step has not happened). */
export interface RevenueRule {
  rule_id: string;
  scope: RuleScope;
  author_bps: number;
  platform_fee_bps: number;
  state: RuleState;
  description: string;
  emergency: boolean;
  justification: string;
  created_by: string;
  approved_by: string | null;
  rejected_by: string | null;
  reject_reason: string | null;
  activated_by: string | null;
  superseded_by_rule: string | null;
  create_time_ns: bigint;
  submit_time_ns: bigint | null;
  approve_time_ns: bigint | null;
  cooling_end_time_ns: bigint | null;
  activate_time_ns: bigint | null;
  supersede_time_ns: bigint | null;
  reject_time_ns: bigint | null;
}

/** A lifecycle step refused: `code` is the machine-readable reason, `message` names the rule. */
export class RuleTransitionError extends Error {
  constructor(
    readonly code: "RULE_STATE" | "FOUR_EYES" | "COOLING_NOT_OVER" | "NOT_CREATOR",
    message: string,
  ) {
    super(message);
    this.name = "RuleTransitionError";
  }
}

/** Bad input for a new rule: `field` names the request field, `message` the rule it breaks. */
export class RuleInputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "RuleInputError";
  }
}

const SCOPE_VALUE_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
/** Longest description, justification or reason (characters). */
export const RULE_TEXT_MAX = 2_000;

/**
 * Validate a new rule's split and scope. Throws RuleInputError naming the field: both shares are
 * whole basis points in 0..10,000 and sum to exactly 10,000; a platform scope has no value, a
 * masque or author scope has one (1-128 of [A-Za-z0-9._:@-]).
 */
export function validateRuleInput(input: { scope: RuleScope; author_bps: number; platform_fee_bps: number; description: string }): void {
  const denominator = Number(BPS_DENOMINATOR);
  for (const [field, v] of [["author_bps", input.author_bps], ["platform_fee_bps", input.platform_fee_bps]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > denominator) throw new RuleInputError(field, `${field} must be a whole number of basis points in 0..10000 (got ${v})`);
  }
  if (input.author_bps + input.platform_fee_bps !== denominator) {
    throw new RuleInputError(
      "platform_fee_bps",
      `author_bps + platform_fee_bps must be exactly 10000 (got ${input.author_bps} + ${input.platform_fee_bps} = ${input.author_bps + input.platform_fee_bps})`,
    );
  }
  if (input.scope.kind === "platform") {
    if (input.scope.value !== "") throw new RuleInputError("scope_value", "a platform-wide rule has no scope_value (leave it empty)");
  } else if (!SCOPE_VALUE_RE.test(input.scope.value)) {
    throw new RuleInputError("scope_value", `a ${input.scope.kind} rule needs scope_value: 1-128 characters of [A-Za-z0-9._:@-]`);
  }
  if (input.description.length > RULE_TEXT_MAX) throw new RuleInputError("description", `description must be at most ${RULE_TEXT_MAX} characters`);
}

/** Require non-blank text of at most RULE_TEXT_MAX characters (a reason, a justification). */
export function requireText(field: string, text: string): string {
  const t = text.trim();
  if (t.length === 0) throw new RuleInputError(field, `${field} is required and may not be blank`);
  if (t.length > RULE_TEXT_MAX) throw new RuleInputError(field, `${field} must be at most ${RULE_TEXT_MAX} characters`);
  return t;
}

function refuse(rule: RevenueRule, action: string, allowed: readonly RuleState[]): never {
  const hint = rule.state === "rejected" ? "; a rejected rule is never resubmitted: create a new draft" : "";
  throw new RuleTransitionError("RULE_STATE", `cannot ${action} revenue rule ${rule.rule_id}: it is ${rule.state} (must be ${allowed.join(" or ")})${hint}`);
}

/** draft → pending_approval; only the rule's creator submits it (seed 003 FR-3.2). */
export function checkSubmit(rule: RevenueRule, actor: string): void {
  if (rule.state !== "draft") refuse(rule, "submit", ["draft"]);
  if (rule.created_by !== actor) throw new RuleTransitionError("NOT_CREATOR", `only the creator (${rule.created_by}) may submit revenue rule ${rule.rule_id}`);
}

/** pending_approval → cooling_down; the approver (token `sub`) differs from the creator. Returns the end of cooling. */
export function checkApprove(rule: RevenueRule, approver: string, now_ns: bigint, cooling_s: number): bigint {
  if (rule.state !== "pending_approval") refuse(rule, "approve", ["pending_approval"]);
  if (rule.created_by === approver) {
    throw new RuleTransitionError("FOUR_EYES", `four-eyes rule: ${approver} created revenue rule ${rule.rule_id} and may not approve it; another approver must`);
  }
  return now_ns + BigInt(cooling_s) * 1_000_000_000n;
}

/** pending_approval | cooling_down → rejected. */
export function checkReject(rule: RevenueRule): void {
  if (rule.state !== "pending_approval" && rule.state !== "cooling_down") refuse(rule, "reject", ["pending_approval", "cooling_down"]);
}

/** cooling_down → active, once cooling is over. Returns false when the rule is already active (a repeat). */
export function checkActivate(rule: RevenueRule, now_ns: bigint): boolean {
  if (rule.state === "active") return false;
  if (rule.state !== "cooling_down") refuse(rule, "activate", ["cooling_down"]);
  const end = rule.cooling_end_time_ns;
  if (end === null) throw new Error(`invariant: cooling rule ${rule.rule_id} has no cooling end`);
  if (now_ns < end) {
    const left_s = (end - now_ns + 999_999_999n) / 1_000_000_000n;
    throw new RuleTransitionError("COOLING_NOT_OVER", `revenue rule ${rule.rule_id} is cooling down for ${left_s} s more; it activates by itself when cooling ends (or use emergency activation)`);
  }
  return true;
}

/** draft | pending_approval | cooling_down → active now (emergency; skips approval and cooling). */
export function checkEmergencyActivate(rule: RevenueRule): void {
  if (rule.state !== "draft" && rule.state !== "pending_approval" && rule.state !== "cooling_down") {
    refuse(rule, "emergency-activate", ["draft", "pending_approval", "cooling_down"]);
  }
}

/** The scopes that may apply to a session, most specific first. */
export function scopesFor(masque_name: string, author: string): RuleScope[] {
  return [
    { kind: "masque", value: masque_name },
    { kind: "author", value: author },
    { kind: "platform", value: "" },
  ];
}
