/**
 * Issue 16, "Revenue rules", through the API on both transports (gRPC and Connect JSON): the full
 * lifecycle with activation by the daemon itself at the end of cooling (exactly once, audited),
 * four-eyes, scopes per action, activation before cooling ends, rejection, emergency activation,
 * the split a session settles with (pinned at Don), and the audit trail of each step.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RevenueRuleScopeKind, RevenueRuleState, type RevenueRule } from "../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { sql } from "kysely";
import { openControlPlane } from "../../src/controlplane/index.js";
import { runCli } from "../support/daemon.js";
import path from "node:path";
import { ADMIN, APPROVE, EMERGENCY, TRANSPORTS, WRITE, eventually, startGovDaemon, type GovDaemon } from "./harness.js";

const COOLING_S = 3600;

async function codeOf(p: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
  throw new Error("expected the call to fail");
}

let d: GovDaemon;
beforeAll(async () => {
  d = await startGovDaemon({ REVENUE_RULE_COOLING_S: String(COOLING_S), AUDIT_ANCHOR_INTERVAL_S: "0", PLATFORM_FEE_BPS: "1500" });
}, 120_000);
afterAll(async () => {
  await d?.stop();
});

describe("the first rule", () => {
  it("is the configured fee, active platform-wide, created by the daemon at first start and audited", async () => {
    const a = await d.as("grpc", "admin", "ops", ADMIN);
    const { rules } = await a.admin.listRevenueRules({ state: RevenueRuleState.ACTIVE, scopeKind: RevenueRuleScopeKind.PLATFORM });
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({ authorBps: 8500, platformFeeBps: 1500, createdBy: "masques-ledger", scopeValue: "" });
    const { entries } = await a.admin.listAuditEntries({ ruleId: rules[0]!.ruleId });
    expect(entries.map((e) => [e.action, e.actorKind])).toEqual([["revenue_rule.bootstrap", "system"]]);
  });
});

describe.each(TRANSPORTS)("revenue rules over %s", (transport) => {
  const author = `author-${transport}`;

  it("full lifecycle: draft → pending → cooling → active by itself at the end of cooling, exactly once, superseding the old rule", async () => {
    const alice = await d.as(transport, "admin", "alice", WRITE, `req-create-${transport}`);
    const bob = await d.as(transport, "admin", "bob", APPROVE, `req-approve-${transport}`);
    const older = (await alice.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: author, authorBps: 9000, platformFeeBps: 1000, description: "older" })).rule!;
    await alice.admin.submitRevenueRule({ ruleId: older.ruleId });
    await bob.admin.approveRevenueRule({ ruleId: older.ruleId });
    d.advance(COOLING_S + 1);
    await eventually(async () => ((await bob.admin.getRevenueRule({ ruleId: older.ruleId })).rule!.state === RevenueRuleState.ACTIVE ? true : undefined), "older rule active");

    const { rule: draft } = await alice.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: author, authorBps: 8000, platformFeeBps: 2000, description: "raise the fee" });
    expect(draft).toMatchObject({ state: RevenueRuleState.DRAFT, createdBy: "alice", authorBps: 8000, platformFeeBps: 2000 });
    const id = draft!.ruleId;
    expect((await alice.admin.submitRevenueRule({ ruleId: id })).rule!.state).toBe(RevenueRuleState.PENDING_APPROVAL);
    const approved = (await bob.admin.approveRevenueRule({ ruleId: id })).rule!;
    expect(approved).toMatchObject({ state: RevenueRuleState.COOLING_DOWN, approvedBy: "bob" });
    expect(approved.coolingEndTime!.seconds - approved.approveTime!.seconds).toBe(BigInt(COOLING_S));

    // Not before cooling ends: the daemon leaves it cooling, and so must a caller.
    const early = await codeOf(bob.admin.activateRevenueRule({ ruleId: id }));
    expect(early.code).toBe(Code.FailedPrecondition);
    expect(early.message).toMatch(/cooling down for \d+ s more/);
    expect((await bob.admin.getRevenueRule({ ruleId: id })).rule!.state).toBe(RevenueRuleState.COOLING_DOWN);

    d.advance(COOLING_S + 1);
    const active = await eventually(async () => {
      const r = (await bob.admin.getRevenueRule({ ruleId: id })).rule!;
      return r.state === RevenueRuleState.ACTIVE ? r : undefined;
    }, "activation by the scheduler");
    expect(active).toMatchObject({ activatedBy: "masques-ledger", emergency: false });
    // A caller activating afterwards changes nothing.
    expect((await bob.admin.activateRevenueRule({ ruleId: id })).rule).toMatchObject({ state: RevenueRuleState.ACTIVE, activatedBy: "masques-ledger" });
    const old = (await bob.admin.getRevenueRule({ ruleId: older.ruleId })).rule!;
    expect(old).toMatchObject({ state: RevenueRuleState.SUPERSEDED, supersededByRuleId: id });
    const { rules: activeNow } = await bob.admin.listRevenueRules({ state: RevenueRuleState.ACTIVE, scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: author });
    expect(activeNow.map((r) => r.ruleId)).toEqual([id]);

    // The audit trail of the rule: each step once, actor from the token, request id from the header.
    const { entries } = await bob.admin.listAuditEntries({ ruleId: id });
    expect(entries.map((e) => [e.action, e.actorId])).toEqual([
      ["revenue_rule.create", "alice"],
      ["revenue_rule.submit", "alice"],
      ["revenue_rule.approve", "bob"],
      ["revenue_rule.activate", "masques-ledger"],
    ]);
    expect(entries[0]!.requestId).toBe(`req-create-${transport}`);
    expect(entries[2]!.requestId).toBe(`req-approve-${transport}`);
    expect(JSON.parse(entries[2]!.beforeJson)).toMatchObject({ state: "pending_approval" });
    expect(JSON.parse(entries[2]!.afterJson)).toMatchObject({ state: "cooling_down" });
    // Entries chain: each prev_hash is the previous entry's hash.
    const all = (await bob.admin.listAuditEntries({ pageSize: 499 })).entries;
    for (let i = 1; i < all.length; i++) expect(all[i]!.prevHash).toBe(all[i - 1]!.hash);
  }, 180_000);

  it("four-eyes: the creator approving their own rule gets PERMISSION_DENIED", async () => {
    const both = await d.as(transport, "admin", "carol", ["admin", "admin:rules:write", "admin:rules:approve"]);
    const { rule } = await both.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: author, authorBps: 7000, platformFeeBps: 3000, description: "" });
    await both.admin.submitRevenueRule({ ruleId: rule!.ruleId });
    const denied = await codeOf(both.admin.approveRevenueRule({ ruleId: rule!.ruleId }));
    expect(denied.code).toBe(Code.PermissionDenied);
    expect(denied.message).toMatch(/four-eyes rule: carol created revenue rule .* and may not approve it/);
    expect((await both.admin.getRevenueRule({ ruleId: rule!.ruleId })).rule!.state).toBe(RevenueRuleState.PENDING_APPROVAL);
  });

  it("missing scope: PERMISSION_DENIED for each action without its own scope, and for non-admins", async () => {
    const writer = await d.as(transport, "admin", "alice", WRITE);
    const plainAdmin = await d.as(transport, "admin", "dave", ["admin", "ledger:read", "ledger:write"]);
    const approver = await d.as(transport, "admin", "bob", APPROVE);
    const agent = await d.as(transport, "agent", "eve", ["ledger:read", "ledger:write"]);
    const { rule } = await writer.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: author, authorBps: 6000, platformFeeBps: 4000, description: "" });
    await writer.admin.submitRevenueRule({ ruleId: rule!.ruleId });
    const cases: [string, () => Promise<unknown>][] = [
      ["admin scope alone approves", () => plainAdmin.admin.approveRevenueRule({ ruleId: rule!.ruleId })],
      ["admin scope alone creates", () => plainAdmin.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.PLATFORM, authorBps: 5000, platformFeeBps: 5000 })],
      ["writer approves", () => writer.admin.approveRevenueRule({ ruleId: rule!.ruleId })],
      ["approver emergency-activates", () => approver.admin.emergencyActivateRevenueRule({ ruleId: rule!.ruleId, justification: "x" })],
      ["agent creates", () => agent.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.PLATFORM, authorBps: 5000, platformFeeBps: 5000 })],
      ["agent reads the audit log", () => agent.admin.listAuditEntries({})],
    ];
    for (const [what, p] of cases) {
      const r = await codeOf(p());
      expect(r.code, what).toBe(Code.PermissionDenied);
    }
    expect((await writer.admin.getRevenueRule({ ruleId: rule!.ruleId })).rule!.state).toBe(RevenueRuleState.PENDING_APPROVAL);
  });

  it("bad splits are INVALID_ARGUMENT naming the field and the rule", async () => {
    const writer = await d.as(transport, "admin", "alice", WRITE);
    const bad = await codeOf(writer.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.PLATFORM, authorBps: 8000, platformFeeBps: 1000 }));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.message).toMatch(/platform_fee_bps: author_bps \+ platform_fee_bps must be exactly 10000 \(got 8000 \+ 1000 = 9000\)/);
    const noScope = await codeOf(writer.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.MASQUE, scopeValue: "", authorBps: 8000, platformFeeBps: 2000 }));
    expect(noScope.message).toMatch(/scope_value: a masque rule needs scope_value/);
  });

  it("a rejected rule keeps its reason and is never resubmitted", async () => {
    const writer = await d.as(transport, "admin", "alice", WRITE);
    const approver = await d.as(transport, "admin", "bob", APPROVE);
    const { rule } = await writer.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: author, authorBps: 1000, platformFeeBps: 9000, description: "" });
    await writer.admin.submitRevenueRule({ ruleId: rule!.ruleId });
    expect((await codeOf(approver.admin.rejectRevenueRule({ ruleId: rule!.ruleId, reason: "  " }))).code).toBe(Code.InvalidArgument);
    const rejected = (await approver.admin.rejectRevenueRule({ ruleId: rule!.ruleId, reason: "fee far too high" })).rule!;
    expect(rejected).toMatchObject({ state: RevenueRuleState.REJECTED, rejectedBy: "bob", rejectReason: "fee far too high" });
    const again = await codeOf(writer.admin.submitRevenueRule({ ruleId: rule!.ruleId }));
    expect(again.code).toBe(Code.FailedPrecondition);
    expect(again.message).toMatch(/it is rejected .*a rejected rule is never resubmitted: create a new draft/);
    const { entries } = await approver.admin.listAuditEntries({ ruleId: rule!.ruleId });
    expect(entries.at(-1)).toMatchObject({ action: "revenue_rule.reject", reason: "fee far too high", actorId: "bob" });
  });
});

describe("emergency activation and the split sessions settle with", () => {
  it("a session donned before a rule change settles under the old split, one donned after under the new", async () => {
    const ops = await d.as("grpc", "admin", "ops", ADMIN);
    const agent = await d.as("connect-json", "agent", "gov-agent", ["ledger:read", "ledger:write"]);
    await agent.accounts.openAgentWallet({ mode: WalletMode.PREPAID });
    await ops.accounts.deposit({ account: { ref: { case: "agentWallet", value: "gov-agent" } }, amountMicro: 50_000_000n, idempotencyKey: "gov-fund-1" });

    // A masque-scoped rule for researcher at 3000 bps (different from PLATFORM_FEE_BPS, so only
    // the pin can give a session this split once the rule is superseded).
    const writer = await d.as("grpc", "admin", "alice", WRITE);
    const breakGlass = await d.as("connect-json", "admin", "frank", EMERGENCY);
    const { rule: first } = await writer.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.MASQUE, scopeValue: "researcher", authorBps: 7000, platformFeeBps: 3000, description: "" });
    await breakGlass.admin.emergencyActivateRevenueRule({ ruleId: first!.ruleId, justification: "set up the test's first split" });

    const before = crypto.randomUUID();
    await agent.sessions.don({ sessionId: before, masque: "researcher" });

    // The rule changes: 5000 bps, activated by emergency (no cooling), flagged.
    const { rule } = await writer.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.MASQUE, scopeValue: "researcher", authorBps: 5000, platformFeeBps: 5000, description: "half" });
    expect((await codeOf(breakGlass.admin.emergencyActivateRevenueRule({ ruleId: rule!.ruleId, justification: "" }))).code).toBe(Code.InvalidArgument);
    const active: RevenueRule = (await breakGlass.admin.emergencyActivateRevenueRule({ ruleId: rule!.ruleId, justification: "author asked for an urgent correction" })).rule!;
    expect(active).toMatchObject({ state: RevenueRuleState.ACTIVE, emergency: true, justification: "author asked for an urgent correction", activatedBy: "frank" });
    const { entries } = await ops.admin.listAuditEntries({ ruleId: rule!.ruleId });
    expect(entries.at(-1)).toMatchObject({ action: "revenue_rule.emergency_activate", emergency: true, actorId: "frank" });
    expect((await ops.admin.getRevenueRule({ ruleId: first!.ruleId })).rule).toMatchObject({ state: RevenueRuleState.SUPERSEDED, supersededByRuleId: rule!.ruleId });

    const after = crypto.randomUUID();
    await agent.sessions.don({ sessionId: after, masque: "researcher" });
    for (const sid of [before, after]) {
      await agent.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 10_000n, outputTokens: 5_000n, toolCalls: 3n }] });
    }
    const s1 = (await agent.sessions.doff({ sessionId: before })).session!;
    const s2 = (await agent.sessions.doff({ sessionId: after })).session!;
    expect(s1.chargedMicro).toBe(s2.chargedMicro);
    expect(s1.chargedMicro).toBeGreaterThan(0n);
    const charged = s1.chargedMicro;
    // old: 3000 bps (the fee rounds down, the author gets the rest)
    expect(s1.platformFeeMicro).toBe((charged * 3000n) / 10_000n);
    expect(s1.authorShareMicro).toBe(charged - s1.platformFeeMicro);
    // new: 5000 bps
    expect(s2.platformFeeMicro).toBe((charged * 5000n) / 10_000n);
    expect(s2.authorShareMicro).toBe(charged - s2.platformFeeMicro);
  }, 120_000);

  it("manual deposits are audited with the admin as actor", async () => {
    const ops = await d.as("grpc", "admin", "ops", ADMIN, "req-deposit-1");
    const { entries } = await ops.admin.listAuditEntries({ actorId: "ops" });
    const dep = entries.find((e) => e.action === "account.manual_deposit");
    expect(dep).toBeDefined();
    expect(JSON.parse(dep!.afterJson)).toMatchObject({ amount_micro: "50000000", idempotency_key: "gov-fund-1" });
    // A retried deposit (same key) appends nothing.
    await ops.accounts.deposit({ account: { ref: { case: "agentWallet", value: "gov-agent" } }, amountMicro: 50_000_000n, idempotencyKey: "gov-fund-1" });
    const again = (await ops.admin.listAuditEntries({ actorId: "ops" })).entries.filter((e) => e.action === "account.manual_deposit");
    expect(again).toHaveLength(1);
  });
});

describe("the audit log", () => {
  it("verifies, is anchored in the ledger, and survives a restart", async () => {
    const ops = await d.as("grpc", "admin", "ops", ADMIN);
    const v = await eventually(async () => {
      const r = await ops.admin.verifyAuditLog({});
      return r.anchors > 0n ? r : undefined;
    }, "an anchor");
    expect(v).toMatchObject({ ok: true, firstBadSeq: 0n, detail: "" });
    expect(v.entries).toBeGreaterThanOrEqual(1n);
    await d.restart();
    expect(d.logs().some((l) => l.msg === "audit log verified")).toBe(true);
    const ops2 = await d.as("connect-json", "admin", "ops", ADMIN);
    expect((await ops2.admin.verifyAuditLog({})).ok).toBe(true);
    // The first rule is created once, not at every start.
    const { rules } = await ops2.admin.listRevenueRules({ scopeKind: RevenueRuleScopeKind.PLATFORM });
    expect(rules).toHaveLength(1);
  }, 120_000);
});

describe.each(TRANSPORTS)("over %s", (transport) => {
  it("two concurrent activations in one scope leave exactly one active rule", async () => {
    const alice = await d.as(transport, "admin", "alice", WRITE);
    const bob = await d.as(transport, "admin", "bob", APPROVE);
    const other = await d.as(transport === "grpc" ? "connect-json" : "grpc", "admin", "carol", APPROVE);
    const scope = { scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: `race-${transport}` };
    const ids: string[] = [];
    for (const fee of [1100, 1300]) {
      const { rule } = await alice.admin.createRevenueRule({ ...scope, authorBps: 10_000 - fee, platformFeeBps: fee });
      await alice.admin.submitRevenueRule({ ruleId: rule!.ruleId });
      await bob.admin.approveRevenueRule({ ruleId: rule!.ruleId });
      ids.push(rule!.ruleId);
    }
    d.advance(COOLING_S + 1);
    await Promise.allSettled([bob.admin.activateRevenueRule({ ruleId: ids[0]! }), other.admin.activateRevenueRule({ ruleId: ids[1]! })]);
    const states = await eventually(async () => {
      const s = await Promise.all(ids.map(async (id) => (await bob.admin.getRevenueRule({ ruleId: id })).rule!.state));
      return s.includes(RevenueRuleState.COOLING_DOWN) ? undefined : s;
    }, "both rules past cooling");
    expect(states.filter((x) => x === RevenueRuleState.ACTIVE)).toHaveLength(1);
    expect(states.filter((x) => x === RevenueRuleState.SUPERSEDED)).toHaveLength(1);
    const { rules } = await bob.admin.listRevenueRules({ ...scope, state: RevenueRuleState.ACTIVE });
    expect(rules).toHaveLength(1);
  }, 120_000);

  it("credit-limit changes are audited with before and after", async () => {
    const agentId = `postpaid-${transport}`;
    const ops = await d.as(transport, "admin", "ops", ADMIN, `req-limit-${transport}`);
    await ops.accounts.openAgentWallet({ agentId, mode: WalletMode.POSTPAID, creditLimitMicro: 1_000_000n });
    await ops.accounts.adjustCreditLimit({ account: { ref: { case: "agentWallet", value: agentId } }, change: { case: "increaseMicro", value: 2_000_000n }, idempotencyKey: `limit-${transport}-1` });
    const { entries } = await ops.admin.listAuditEntries({ actorId: "ops" });
    const e = entries.filter((x) => x.action === "account.adjust_credit_limit" && x.requestId === `req-limit-${transport}`);
    expect(e).toHaveLength(1);
    expect(JSON.parse(e[0]!.beforeJson)).toEqual({ credit_limit_micro: "1000000" });
    expect(JSON.parse(e[0]!.afterJson)).toMatchObject({ credit_limit_micro: "3000000", change: "increase", amount_micro: "2000000" });
    const opened = entries.filter((x) => x.action === "account.open_postpaid_wallet" && x.subject === e[0]!.subject);
    expect(opened).toHaveLength(1);
    expect(JSON.parse(opened[0]!.afterJson)).toEqual({ agent_id: agentId, credit_limit_micro: "1000000" });
  });

  it("the audit log is paged without gaps or repeats and filtered by time", async () => {
    const ops = await d.as(transport, "admin", "ops", ADMIN);
    const all = (await ops.admin.listAuditEntries({ pageSize: 499 })).entries;
    expect(all.length).toBeGreaterThan(5);
    const paged: bigint[] = [];
    let pageToken = "";
    for (let i = 0; i < 1000; i++) {
      const page = await ops.admin.listAuditEntries({ pageSize: 3, pageToken });
      paged.push(...page.entries.map((e) => e.seq));
      pageToken = page.nextPageToken;
      if (!pageToken) break;
    }
    expect(paged).toEqual(all.map((e) => e.seq));
    const mid = all[Math.floor(all.length / 2)]!;
    const after = (await ops.admin.listAuditEntries({ startTime: mid.time, pageSize: 499 })).entries;
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((e) => e.time!.seconds > mid.time!.seconds || (e.time!.seconds === mid.time!.seconds && e.time!.nanos >= mid.time!.nanos))).toBe(true);
    const before = (await ops.admin.listAuditEntries({ endTime: mid.time, pageSize: 499 })).entries;
    expect(before.length + after.length).toBe(all.length);
    expect((await codeOf(ops.admin.listAuditEntries({ pageToken: "not-a-token" }))).code).toBe(Code.InvalidArgument);
  });
});

describe("activation across a restart", () => {
  it("a rule whose cooling ends while the daemon is down activates once when it is back", async () => {
    const alice = await d.as("grpc", "admin", "alice", WRITE);
    const bob = await d.as("grpc", "admin", "bob", APPROVE);
    const { rule } = await alice.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: "restart-author", authorBps: 8800, platformFeeBps: 1200, description: "" });
    await alice.admin.submitRevenueRule({ ruleId: rule!.ruleId });
    await bob.admin.approveRevenueRule({ ruleId: rule!.ruleId });
    await d.halt();
    d.advance(COOLING_S + 1);
    await d.start();
    const ops = await d.as("connect-json", "admin", "ops", ADMIN);
    await eventually(async () => ((await ops.admin.getRevenueRule({ ruleId: rule!.ruleId })).rule!.state === RevenueRuleState.ACTIVE ? true : undefined), "activation after the restart");
    // Later ticks and another restart change nothing: one activation entry.
    await d.restart();
    const ops2 = await d.as("grpc", "admin", "ops", ADMIN);
    const { entries } = await ops2.admin.listAuditEntries({ ruleId: rule!.ruleId });
    expect(entries.filter((e) => e.action === "revenue_rule.activate")).toHaveLength(1);
    expect((await ops2.admin.getRevenueRule({ ruleId: rule!.ruleId })).rule!.state).toBe(RevenueRuleState.ACTIVE);
  }, 180_000);
});

describe("tampering on disk (last: it damages this daemon's log)", () => {
  it("is reported by `masques-ledger reconcile` and at start-up, with the position of the first bad entry", async () => {
    await d.halt();
    const cp = await openControlPlane({ pgliteDir: path.join(d.dataDir, "controlplane"), poolMax: 1, dataDir: d.dataDir });
    try {
      await sql`update audit_entry set actor_id = 'mallory' where seq = 3`.execute(cp.db);
    } finally {
      await cp.close();
    }
    const r = await runCli(["reconcile", "--json"], { MASQUES_DATA_DIR: d.dataDir }, 240_000);
    const out = JSON.parse(r.stdout) as { audit: { ok: boolean; first_bad_seq: string; detail: string } };
    expect(out.audit).toMatchObject({ ok: false, first_bad_seq: "3" });
    expect(out.audit.detail).toMatch(/entry 3: content does not match its hash/);
    expect(r.code).toBe(1);

    await d.start();
    const line = d.logs().find((l) => l.msg === "audit log verification FAILED: the log was tampered with; anchoring stops until it is investigated");
    expect(line).toMatchObject({ first_bad_seq: "3" });
    const ops = await d.as("grpc", "admin", "ops", ADMIN);
    expect(await ops.admin.verifyAuditLog({})).toMatchObject({ ok: false, firstBadSeq: 3n });
  }, 300_000);
});
