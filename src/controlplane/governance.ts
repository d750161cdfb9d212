/**
 * Revenue rules and session pins in the control plane (issue 16, ADR 0100). Every lifecycle step
 * is ONE transaction: lock the rule row, check the step (src/domain/revenue-rules.ts), write it,
 * and append its audit entry (src/controlplane/audit.ts), so the change and its record commit
 * together. Activation also takes a per-scope advisory lock and supersedes the scope's active
 * rule; the partial unique index `revenue_rule_one_active` makes a second active rule in a scope
 * impossible whatever any daemon does.
 */
import { randomUUID } from "node:crypto";
import { sql, type Kysely, type Transaction } from "kysely";
import {
  checkActivate,
  checkApprove,
  checkEmergencyActivate,
  checkReject,
  checkSubmit,
  scopesFor,
  validateRuleInput,
  type RevenueRule,
  type RuleScope,
  type RuleState,
  type ScopeKind,
} from "../domain/revenue-rules.js";
import { revenueRuleEvent, type RevenueRuleEventType } from "../webhooks/events.js";
import { appendAudit } from "./audit.js";
import { enqueueWebhookEvent } from "./webhooks.js";
import type { Database } from "./schema.js";

type Db = Kysely<Database> | Transaction<Database>;

/** Who acts (from the token, never the request) and under which request id. */
export interface Actor {
  kind: string;
  id: string;
  request_id: string;
}

/** The daemon itself (the first rule, scheduled activations). */
export function systemActor(request_id: string): Actor {
  return { kind: "system", id: "masques-ledger", request_id };
}

/** No rule with this id. */
export class RuleNotFoundError extends Error {
  constructor(readonly rule_id: string) {
    super(`revenue rule ${rule_id} not found`);
    this.name = "RuleNotFoundError";
  }
}

const COLUMNS = sql.raw(
  [
    "rule_id", "scope_kind", "scope_value", "author_bps", "platform_fee_bps", "state", "description", "emergency", "justification",
    "created_by", "approved_by", "rejected_by", "reject_reason", "activated_by", "superseded_by_rule",
    ...["create_time_ns", "submit_time_ns", "approve_time_ns", "cooling_end_time_ns", "activate_time_ns", "supersede_time_ns", "reject_time_ns"].map(
      (c) => `${c}::text as ${c}`,
    ),
  ].join(", "),
);

interface RawRule {
  rule_id: string;
  scope_kind: ScopeKind;
  scope_value: string;
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
  create_time_ns: string;
  submit_time_ns: string | null;
  approve_time_ns: string | null;
  cooling_end_time_ns: string | null;
  activate_time_ns: string | null;
  supersede_time_ns: string | null;
  reject_time_ns: string | null;
}

const big = (s: string | null): bigint | null => (s === null ? null : BigInt(s));

function ruleOf(r: RawRule): RevenueRule {
  return {
    rule_id: r.rule_id,
    scope: { kind: r.scope_kind, value: r.scope_value },
    author_bps: r.author_bps,
    platform_fee_bps: r.platform_fee_bps,
    state: r.state,
    description: r.description,
    emergency: r.emergency,
    justification: r.justification,
    created_by: r.created_by,
    approved_by: r.approved_by,
    rejected_by: r.rejected_by,
    reject_reason: r.reject_reason,
    activated_by: r.activated_by,
    superseded_by_rule: r.superseded_by_rule,
    create_time_ns: BigInt(r.create_time_ns),
    submit_time_ns: big(r.submit_time_ns),
    approve_time_ns: big(r.approve_time_ns),
    cooling_end_time_ns: big(r.cooling_end_time_ns),
    activate_time_ns: big(r.activate_time_ns),
    supersede_time_ns: big(r.supersede_time_ns),
    reject_time_ns: big(r.reject_time_ns),
  };
}

/** The audit view of a rule (what before/after record). */
function snapshot(r: RevenueRule | null): unknown {
  if (r === null) return null;
  return {
    state: r.state,
    scope: r.scope,
    author_bps: r.author_bps,
    platform_fee_bps: r.platform_fee_bps,
    emergency: r.emergency,
    cooling_end_time_ns: r.cooling_end_time_ns,
  };
}

/** Read one rule (null: none). */
export async function getRule(db: Db, rule_id: string): Promise<RevenueRule | null> {
  const r = await sql<RawRule>`select ${COLUMNS} from revenue_rule where rule_id = ${rule_id}`.execute(db);
  return r.rows[0] ? ruleOf(r.rows[0]) : null;
}

async function lockRule(trx: Transaction<Database>, rule_id: string): Promise<RevenueRule> {
  const r = await sql<RawRule>`select ${COLUMNS} from revenue_rule where rule_id = ${rule_id} for update`.execute(trx);
  if (!r.rows[0]) throw new RuleNotFoundError(rule_id);
  return ruleOf(r.rows[0]);
}

async function lockScope(trx: Transaction<Database>, scope: RuleScope): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${`revenue_rule:${scope.kind}:${scope.value}`}))`.execute(trx);
}

async function setFields(trx: Transaction<Database>, rule_id: string, fields: Record<string, string | number | boolean | bigint | null>): Promise<RevenueRule> {
  const sets = Object.entries(fields).map(([k, v]) => sql`${sql.ref(k)} = ${typeof v === "bigint" ? v.toString() : v}`);
  const r = await sql<RawRule>`update revenue_rule set ${sql.join(sets, sql`, `)} where rule_id = ${rule_id} returning ${COLUMNS}`.execute(trx);
  return ruleOf(r.rows[0]!);
}

/** A new rule's fields (validated by validateRuleInput). */
export interface NewRule {
  scope: RuleScope;
  author_bps: number;
  platform_fee_bps: number;
  description: string;
}

/** The store over one database. `now` is the daemon clock (ns); `cooling_s` REVENUE_RULE_COOLING_S. */
export interface GovernanceStore {
  create(actor: Actor, input: NewRule): Promise<RevenueRule>;
  submit(actor: Actor, rule_id: string): Promise<RevenueRule>;
  approve(actor: Actor, rule_id: string): Promise<RevenueRule>;
  reject(actor: Actor, rule_id: string, reason: string): Promise<RevenueRule>;
  /** cooling_down → active once cooling is over; a repeat on an active rule returns it unchanged. */
  activate(actor: Actor, rule_id: string): Promise<RevenueRule>;
  emergencyActivate(actor: Actor, rule_id: string, justification: string): Promise<RevenueRule>;
  /**
   * Activate every cooling rule whose cooling is over (the scheduler; several daemons may run it
   * at once: a rule is claimed with FOR UPDATE SKIP LOCKED and its state re-checked). Returns the
   * rules this call activated (at most `limit`).
   */
  activateDue(limit: number): Promise<RevenueRule[]>;
  /** At first start: the platform-wide rule from the configured fee, active; no-op when any platform rule exists. */
  bootstrap(platform_fee_bps: number): Promise<RevenueRule | null>;
  get(rule_id: string): Promise<RevenueRule | null>;
  list(f: { state?: RuleState; scope?: RuleScope; after?: { create_time_ns: bigint; rule_id: string } }, limit: number): Promise<RevenueRule[]>;
  /** The active rule applying to (masque, author): masque, then author, then platform scope. */
  applicable(masque_name: string, author: string): Promise<RevenueRule | null>;
  /**
   * Pin the applicable rule to a session (at Don, before the hold is created) and return the pin;
   * a session pinned earlier (a retried Don) keeps its first pin. Null when no rule is active.
   */
  pinSession(session_id: string, masque_name: string, author: string): Promise<SessionPin | null>;
  /**
   * `pinSession` for many sessions in one statement (one control-plane commit: issue 20, ADR
   * 0126); answers in the order of `items`, same rules per item.
   */
  pinSessions(items: readonly { session_id: string; masque_name: string; author: string }[]): Promise<(SessionPin | null)[]>;
  /** The session's pin (null: donned before governance, or never pinned). */
  pinOf(session_id: string): Promise<SessionPin | null>;
  /**
   * The active rule applying to (masque, author) — masque, then author, then platform scope —
   * from this store's in-memory view of the active rules (issue 20, ADR 0124), without I/O.
   * `undefined` until the view is loaded (`refreshActive`); null when no rule is active. The view
   * is updated when this store activates a rule (after its transaction commits) and on every
   * `refreshActive` (the governance tick), so a rule another daemon activated is seen within one
   * GOVERNANCE_TICK_MS.
   */
  activeFor(masque_name: string, author: string): ActiveRule | null | undefined;
  /** Reload the in-memory view of the active rules from the database. */
  refreshActive(): Promise<void>;
}

/** An active rule as sessions pin it (ADR 0124). */
export interface ActiveRule {
  rule_id: string;
  scope: RuleScope;
  platform_fee_bps: number;
  activate_time_ns: bigint;
}

/** The rule a session settles under. */
export interface SessionPin {
  session_id: string;
  rule_id: string;
  platform_fee_bps: number;
  pin_time_ns: bigint;
}

/** The webhook event each audited transition emits (bootstrap emits none: no endpoint exists yet). */
const RULE_EVENT_OF_ACTION: Partial<Record<string, RevenueRuleEventType>> = {
  "revenue_rule.create": "revenue_rule.created",
  "revenue_rule.submit": "revenue_rule.submitted",
  "revenue_rule.approve": "revenue_rule.approved",
  "revenue_rule.reject": "revenue_rule.rejected",
  "revenue_rule.activate": "revenue_rule.activated",
  "revenue_rule.emergency_activate": "revenue_rule.activated",
  "revenue_rule.supersede": "revenue_rule.superseded",
};

const scopeKey = (s: RuleScope): string => `${s.kind}\u0000${s.value}`;

/**
 * This daemon's view of the active rules, one per scope (ADR 0124). A refresh replaces the view
 * with the database's, except for scopes this daemon activated a rule in while the refresh's
 * query ran (the query may predate that commit).
 */
class ActiveRules {
  private rules: Map<string, ActiveRule> | null = null;
  private epoch = 0;
  /** Scopes this daemon activated a rule in: the epoch of the activation and the rule. */
  private readonly touched = new Map<string, { epoch: number; rule: ActiveRule }>();

  /** The rule applying to (masque, author); undefined before the first load. */
  find(masque_name: string, author: string): ActiveRule | null | undefined {
    const rules = this.rules;
    if (rules === null) return undefined;
    return rules.get(scopeKey({ kind: "masque", value: masque_name })) ?? rules.get(scopeKey({ kind: "author", value: author })) ?? rules.get(scopeKey({ kind: "platform", value: "" })) ?? null;
  }

  /** A rule this daemon made active (its transaction committed). */
  note(r: RevenueRule): void {
    if (r.state !== "active" || r.activate_time_ns === null) return;
    const k = scopeKey(r.scope);
    const rule: ActiveRule = { rule_id: r.rule_id, scope: r.scope, platform_fee_bps: r.platform_fee_bps, activate_time_ns: r.activate_time_ns };
    this.touched.set(k, { epoch: ++this.epoch, rule });
    this.rules?.set(k, rule);
  }

  /** Replace the view with `read()`'s active rules (see the class comment). */
  async refresh(read: () => Promise<RevenueRule[]>): Promise<void> {
    const start = this.epoch;
    const rows = await read();
    const next = new Map<string, ActiveRule>();
    for (const r of rows) {
      if (r.activate_time_ns === null) continue;
      next.set(scopeKey(r.scope), { rule_id: r.rule_id, scope: r.scope, platform_fee_bps: r.platform_fee_bps, activate_time_ns: r.activate_time_ns });
    }
    for (const [k, t] of this.touched) {
      if (t.epoch <= start) this.touched.delete(k);
      else next.set(k, t.rule);
    }
    this.rules = next;
  }
}

/** Build the store. */
export function createGovernanceStore(db: Kysely<Database>, opts: { clock: () => bigint; cooling_s: () => number }): GovernanceStore {
  const active = new ActiveRules();
  /** Note an activation once its transaction has committed, and pass the rule on. */
  const noted = (r: RevenueRule): RevenueRule => {
    active.note(r);
    return r;
  };
  /**
   * Record a transition in `trx`: its audit entry and, for the transitions webhooks announce, its
   * `revenue_rule.*` event (issue 16, ADR 0109), so the change, its record and its notification
   * commit together.
   */
  const audit = async (trx: Transaction<Database>, actor: Actor, action: string, before: RevenueRule | null, after: RevenueRule, reason = "", emergency = false) => {
    const now = opts.clock();
    const type = RULE_EVENT_OF_ACTION[action];
    if (type) await enqueueWebhookEvent(trx, revenueRuleEvent(type, after, actor.id, reason, now), now);
    return appendAudit(trx, {
      time_ns: now,
      actor_kind: actor.kind,
      actor_id: actor.id,
      action,
      subject: `revenue_rule:${after.rule_id}`,
      rule_id: after.rule_id,
      request_id: actor.request_id,
      reason,
      before: snapshot(before),
      after: snapshot(after),
      emergency,
    });
  };

  /** Make `rule` the scope's active rule, superseding the current one; in `trx`. */
  async function activateIn(trx: Transaction<Database>, actor: Actor, rule: RevenueRule, emergency: boolean, justification: string): Promise<RevenueRule> {
    await lockScope(trx, rule.scope);
    const now = opts.clock();
    const cur = await sql<RawRule>`select ${COLUMNS} from revenue_rule where scope_kind = ${rule.scope.kind} and scope_value = ${rule.scope.value} and state = 'active' for update`.execute(trx);
    for (const raw of cur.rows) {
      const old = ruleOf(raw);
      const superseded = await setFields(trx, old.rule_id, { state: "superseded", supersede_time_ns: now, superseded_by_rule: rule.rule_id });
      await audit(trx, actor, "revenue_rule.supersede", old, superseded, `superseded by ${rule.rule_id}`, emergency);
    }
    const fields: Record<string, string | boolean | bigint> = { state: "active", activate_time_ns: now, activated_by: actor.id };
    if (emergency) Object.assign(fields, { emergency: true, justification });
    const active = await setFields(trx, rule.rule_id, fields);
    await audit(trx, actor, emergency ? "revenue_rule.emergency_activate" : "revenue_rule.activate", rule, active, justification, emergency);
    return active;
  }

  const pinOf = async (session_id: string): Promise<SessionPin | null> => {
    const r = await sql<{ session_id: string; rule_id: string; platform_fee_bps: number; pin_time_ns: string }>`
      select session_id, rule_id, platform_fee_bps, pin_time_ns::text as pin_time_ns from session_rule_pin where session_id = ${session_id}`.execute(db);
    const p = r.rows[0];
    return p ? { ...p, pin_time_ns: BigInt(p.pin_time_ns) } : null;
  };

  const applicable = async (masque_name: string, author: string): Promise<RevenueRule | null> => {
    const scopes = scopesFor(masque_name, author);
    const r = await sql<RawRule>`select ${COLUMNS} from revenue_rule where state = 'active' and (${sql.join(
      scopes.map((s) => sql`(scope_kind = ${s.kind} and scope_value = ${s.value})`),
      sql` or `,
    )})`.execute(db);
    const rules = r.rows.map(ruleOf);
    for (const s of scopes) {
      const hit = rules.find((x) => x.scope.kind === s.kind && x.scope.value === s.value);
      if (hit) return hit;
    }
    return null;
  };

  return {
    async create(actor, input) {
      validateRuleInput(input);
      return db.transaction().execute(async (trx) => {
        const rule_id = randomUUID();
        const r = await sql<RawRule>`insert into revenue_rule (rule_id, scope_kind, scope_value, author_bps, platform_fee_bps, state, description, created_by, create_time_ns)
          values (${rule_id}, ${input.scope.kind}, ${input.scope.value}, ${input.author_bps}, ${input.platform_fee_bps}, 'draft', ${input.description}, ${actor.id}, ${opts.clock().toString()})
          returning ${COLUMNS}`.execute(trx);
        const rule = ruleOf(r.rows[0]!);
        await audit(trx, actor, "revenue_rule.create", null, rule, input.description);
        return rule;
      });
    },
    submit: (actor, rule_id) =>
      db.transaction().execute(async (trx) => {
        const rule = await lockRule(trx, rule_id);
        checkSubmit(rule, actor.id);
        const after = await setFields(trx, rule_id, { state: "pending_approval", submit_time_ns: opts.clock() });
        await audit(trx, actor, "revenue_rule.submit", rule, after);
        return after;
      }),
    approve: (actor, rule_id) =>
      db.transaction().execute(async (trx) => {
        const rule = await lockRule(trx, rule_id);
        const now = opts.clock();
        const end = checkApprove(rule, actor.id, now, opts.cooling_s());
        const after = await setFields(trx, rule_id, { state: "cooling_down", approved_by: actor.id, approve_time_ns: now, cooling_end_time_ns: end });
        await audit(trx, actor, "revenue_rule.approve", rule, after);
        return after;
      }),
    reject: (actor, rule_id, reason) =>
      db.transaction().execute(async (trx) => {
        const rule = await lockRule(trx, rule_id);
        checkReject(rule);
        const after = await setFields(trx, rule_id, { state: "rejected", rejected_by: actor.id, reject_reason: reason, reject_time_ns: opts.clock() });
        await audit(trx, actor, "revenue_rule.reject", rule, after, reason);
        return after;
      }),
    activate: (actor, rule_id) =>
      db
        .transaction()
        .execute(async (trx) => {
          const rule = await lockRule(trx, rule_id);
          if (!checkActivate(rule, opts.clock())) return rule;
          return activateIn(trx, actor, rule, false, "");
        })
        .then(noted),
    emergencyActivate: (actor, rule_id, justification) =>
      db
        .transaction()
        .execute(async (trx) => {
          const rule = await lockRule(trx, rule_id);
          checkEmergencyActivate(rule);
          return activateIn(trx, actor, rule, true, justification);
        })
        .then(noted),
    async activateDue(limit) {
      const now = opts.clock();
      const due = await sql<{ rule_id: string }>`select rule_id from revenue_rule where state = 'cooling_down' and cooling_end_time_ns <= ${now.toString()}
        order by cooling_end_time_ns, rule_id limit ${limit}`.execute(db);
      const out: RevenueRule[] = [];
      for (const { rule_id } of due.rows) {
        const done = await db.transaction().execute(async (trx) => {
          const r = await sql<RawRule>`select ${COLUMNS} from revenue_rule where rule_id = ${rule_id} and state = 'cooling_down' for update skip locked`.execute(trx);
          if (!r.rows[0]) return null; // another daemon (or a request) has it, or it is no longer cooling
          const rule = ruleOf(r.rows[0]);
          if (!checkActivate(rule, opts.clock())) return null;
          return activateIn(trx, systemActor(`scheduler-${randomUUID()}`), rule, false, "");
        });
        if (done) out.push(noted(done));
      }
      return out;
    },
    bootstrap: (platform_fee_bps) =>
      db.transaction().execute(async (trx) => {
        const scope: RuleScope = { kind: "platform", value: "" };
        await lockScope(trx, scope);
        const any = await sql<{ n: string }>`select count(*)::text as n from revenue_rule where scope_kind = 'platform'`.execute(trx);
        if (any.rows[0]!.n !== "0") return null;
        const input = { scope, author_bps: 10_000 - platform_fee_bps, platform_fee_bps, description: "the configured platform fee (PLATFORM_FEE_BPS) at first start" };
        validateRuleInput(input);
        const actor = systemActor(`bootstrap-${randomUUID()}`);
        const now = opts.clock();
        const r = await sql<RawRule>`insert into revenue_rule (rule_id, scope_kind, scope_value, author_bps, platform_fee_bps, state, description, created_by, create_time_ns, activate_time_ns, activated_by)
          values (${randomUUID()}, 'platform', '', ${input.author_bps}, ${platform_fee_bps}, 'active', ${input.description}, ${actor.id}, ${now.toString()}, ${now.toString()}, ${actor.id})
          returning ${COLUMNS}`.execute(trx);
        const rule = ruleOf(r.rows[0]!);
        await audit(trx, actor, "revenue_rule.bootstrap", null, rule, input.description);
        return rule;
      })
        .then((r) => (r === null ? null : noted(r))),
    get: (rule_id) => getRule(db, rule_id),
    async list(f, limit) {
      const conds = [sql`true`];
      if (f.state) conds.push(sql`state = ${f.state}`);
      if (f.scope) conds.push(sql`scope_kind = ${f.scope.kind} and scope_value = ${f.scope.value}`);
      if (f.after) conds.push(sql`(create_time_ns, rule_id) > (${f.after.create_time_ns.toString()}::bigint, ${f.after.rule_id})`);
      const r = await sql<RawRule>`select ${COLUMNS} from revenue_rule where ${sql.join(conds, sql` and `)} order by revenue_rule.create_time_ns, revenue_rule.rule_id limit ${limit}`.execute(db);
      return r.rows.map(ruleOf);
    },
    applicable,
    async pinSession(session_id, masque_name, author) {
      // One statement in the common case: the most specific active rule, pinned unless pinned.
      const scopes = scopesFor(masque_name, author);
      const r = await sql<{ session_id: string; rule_id: string; platform_fee_bps: number; pin_time_ns: string }>`
        insert into session_rule_pin (session_id, rule_id, platform_fee_bps, pin_time_ns)
        select ${session_id}, rule_id, platform_fee_bps, ${opts.clock().toString()} from revenue_rule
          where state = 'active' and (${sql.join(scopes.map((x) => sql`(scope_kind = ${x.kind} and scope_value = ${x.value})`), sql` or `)})
          order by case scope_kind when 'masque' then 0 when 'author' then 1 else 2 end limit 1
        on conflict (session_id) do nothing
        returning session_id, rule_id, platform_fee_bps, pin_time_ns::text as pin_time_ns`.execute(db);
      const p = r.rows[0];
      return p ? { ...p, pin_time_ns: BigInt(p.pin_time_ns) } : pinOf(session_id);
    },
    async pinSessions(items) {
      if (items.length === 0) return [];
      type Row = { session_id: string; rule_id: string; platform_fee_bps: number; pin_time_ns: string };
      const values = sql.join(items.map((i) => sql`(${i.session_id}, ${i.masque_name}, ${i.author})`));
      // Same choice as pinSession per row: the most specific active rule, pinned unless pinned.
      const r = await sql<Row>`
        insert into session_rule_pin (session_id, rule_id, platform_fee_bps, pin_time_ns)
        select v.session_id, r.rule_id, r.platform_fee_bps, ${opts.clock().toString()}
          from (values ${values}) as v(session_id, masque_name, author)
          cross join lateral (
            select rule_id, platform_fee_bps from revenue_rule
              where state = 'active' and ((scope_kind = 'masque' and scope_value = v.masque_name)
                or (scope_kind = 'author' and scope_value = v.author) or (scope_kind = 'platform' and scope_value = ''))
              order by case scope_kind when 'masque' then 0 when 'author' then 1 else 2 end limit 1) as r
        on conflict (session_id) do nothing
        returning session_id, rule_id, platform_fee_bps, pin_time_ns::text as pin_time_ns`.execute(db);
      const pins = new Map<string, SessionPin>();
      for (const p of r.rows) pins.set(p.session_id, { ...p, pin_time_ns: BigInt(p.pin_time_ns) });
      // Sessions pinned earlier (retried Dons) keep their first pin: read those back in one query.
      const missing = [...new Set(items.map((i) => i.session_id).filter((id) => !pins.has(id)))];
      if (missing.length > 0) {
        const old = await sql<Row>`
          select session_id, rule_id, platform_fee_bps, pin_time_ns::text as pin_time_ns from session_rule_pin
            where session_id in (${sql.join(missing)})`.execute(db);
        for (const p of old.rows) pins.set(p.session_id, { ...p, pin_time_ns: BigInt(p.pin_time_ns) });
      }
      return items.map((i) => pins.get(i.session_id) ?? null);
    },
    pinOf,
    activeFor: (masque_name, author) => active.find(masque_name, author),
    refreshActive: () =>
      active.refresh(async () => (await sql<RawRule>`select ${COLUMNS} from revenue_rule where state = 'active'`.execute(db)).rows.map(ruleOf)),
  };
}
