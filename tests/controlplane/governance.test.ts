/**
 * Issue 16 in the control plane, on PGlite and (in .ci/run) on a PostgreSQL server with two
 * connection pools standing for two daemons: one active revenue rule per scope whatever runs at
 * once (requests and schedulers of several daemons), enforced by the database itself; each
 * activation recorded exactly once; concurrent audit appends keep one consistent chain.
 */
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { appendAudit, listAudit, readChain } from "../../src/controlplane/audit.js";
import { createGovernanceStore, type Actor, type GovernanceStore } from "../../src/controlplane/governance.js";
import type { ControlPlane } from "../../src/controlplane/index.js";
import { verifyChain } from "../../src/domain/audit-chain.js";
import { createTestDb, ENGINE, type TestDb } from "./support.js";

let t: TestDb;
let cp: ControlPlane;
let other: ControlPlane | null;
let now_ns: bigint;
const clock = () => now_ns;
const COOLING_S = 60;
const actor = (id: string): Actor => ({ kind: "admin", id, request_id: `req-${id}` });

beforeEach(async () => {
  t = await createTestDb();
  cp = await t.open();
  other = ENGINE === "postgres" ? await t.open() : null;
  now_ns = 1_800_000_000_000_000_000n;
});
afterEach(async () => {
  await other?.close();
  await cp.close();
  await t.dispose();
});

/** Two stores: on PostgreSQL over two pools (two daemons); on PGlite over its one handle. */
function stores(): [GovernanceStore, GovernanceStore] {
  const opts = { clock, cooling_s: () => COOLING_S };
  return [createGovernanceStore(cp.db, opts), createGovernanceStore((other ?? cp).db, opts)];
}

async function cooled(s: GovernanceStore, fee_bps: number, author: string): Promise<string> {
  const r = await s.create(actor("alice"), { scope: { kind: "author", value: author }, author_bps: 10_000 - fee_bps, platform_fee_bps: fee_bps, description: "" });
  await s.submit(actor("alice"), r.rule_id);
  await s.approve(actor("bob"), r.rule_id);
  return r.rule_id;
}

describe(`revenue rules under concurrency (${ENGINE})`, () => {
  it("two concurrent activations (requests and schedulers of two daemons) leave exactly one active rule, each activation recorded once", async () => {
    const [a, b] = stores();
    const r1 = await cooled(a, 1000, "ada");
    const r2 = await cooled(b, 2000, "ada");
    now_ns += BigInt(COOLING_S + 1) * 1_000_000_000n;
    const results = await Promise.allSettled([a.activate(actor("bob"), r1), b.activate(actor("carol"), r2), a.activateDue(10), b.activateDue(10), b.activate(actor("bob"), r1)]);
    // A call may only lose to a rule activated meanwhile (its rule is superseded by then).
    for (const r of results) {
      if (r.status === "rejected") expect(String(r.reason)).toMatch(/RuleTransitionError: cannot activate revenue rule .*: it is superseded/);
    }
    expect(results.slice(0, 4).every((r) => r.status === "fulfilled")).toBe(true);

    const active = await sql<{ rule_id: string }>`select rule_id from revenue_rule where scope_kind = 'author' and scope_value = 'ada' and state = 'active'`.execute(cp.db);
    expect(active.rows).toHaveLength(1);
    const winner = active.rows[0]!.rule_id;
    const loser = winner === r1 ? r2 : r1;
    expect((await a.get(loser))!).toMatchObject({ state: "superseded", superseded_by_rule: winner });
    for (const id of [r1, r2]) {
      const entries = await listAudit(cp.db, { rule_id: id }, 100);
      expect(entries.filter((e) => e.action === "revenue_rule.activate"), id).toHaveLength(1);
    }
    expect(verifyChain(await readChain(cp.db), []).ok).toBe(true);
    // Nothing left to do for a later scheduler pass.
    expect(await a.activateDue(10)).toEqual([]);
  });

  it("the database itself refuses a second active rule in a scope", async () => {
    const [a] = stores();
    const r1 = await cooled(a, 1000, "bea");
    await a.emergencyActivate(actor("erin"), r1, "test");
    const r2 = await a.create(actor("alice"), { scope: { kind: "author", value: "bea" }, author_bps: 9000, platform_fee_bps: 1000, description: "" });
    await expect(sql`update revenue_rule set state = 'active' where rule_id = ${r2.rule_id}`.execute(cp.db)).rejects.toThrow(/revenue_rule_one_active/);
    // Another scope is independent.
    const r3 = await a.create(actor("alice"), { scope: { kind: "author", value: "cid" }, author_bps: 9000, platform_fee_bps: 1000, description: "" });
    await a.emergencyActivate(actor("erin"), r3.rule_id, "test");
  });

  it("bootstrap creates the first platform rule once, even when two daemons start together", async () => {
    const [a, b] = stores();
    const [x, y] = await Promise.all([a.bootstrap(1500), b.bootstrap(1500)]);
    expect([x, y].filter((r) => r !== null)).toHaveLength(1);
    expect(await a.bootstrap(1200)).toBeNull();
    const platform = await a.list({ scope: { kind: "platform", value: "" } }, 10);
    expect(platform.map((r) => [r.state, r.platform_fee_bps, r.author_bps])).toEqual([["active", 1500, 8500]]);
  });

  it("concurrent audit appends from two connections get consecutive positions and one valid chain", async () => {
    const dbs = [cp.db, (other ?? cp).db];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        dbs[i % 2]!.transaction().execute((trx) =>
          appendAudit(trx, { time_ns: now_ns, actor_kind: "admin", actor_id: `a${i}`, action: "test.append", subject: `x:${i}`, request_id: `r${i}` }),
        ),
      ),
    );
    const chain = await readChain(cp.db);
    expect(chain.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => BigInt(i + 1)));
    expect(verifyChain(chain, [])).toMatchObject({ ok: true, entries: 20 });
  });

  it("an audit append rolls back with the change it records", async () => {
    await expect(
      cp.db.transaction().execute(async (trx) => {
        await appendAudit(trx, { time_ns: now_ns, actor_kind: "admin", actor_id: "x", action: "test.fail", subject: "x:1", request_id: "r" });
        throw new Error("the change failed");
      }),
    ).rejects.toThrow("the change failed");
    expect(await readChain(cp.db)).toEqual([]);
  });
});

describe(`pins written in batches (issue 20, ${ENGINE})`, () => {
  it("pinSessions pins each session to its most specific active rule in one statement; a pinned session keeps its first pin", async () => {
    const [s] = stores();
    const platform = await s.bootstrap(1500);
    expect(platform).not.toBeNull();
    const adaRule = await cooled(s, 1000, "ada");
    now_ns += BigInt(COOLING_S + 1) * 1_000_000_000n;
    await s.activate(actor("bob"), adaRule);
    const pins = await s.pinSessions([
      { session_id: "s1", masque_name: "m-ada", author: "ada" },
      { session_id: "s2", masque_name: "m-bea", author: "bea" },
      { session_id: "s1", masque_name: "m-ada", author: "ada" }, // the same Don twice in one batch
    ]);
    expect(pins.map((p) => p?.rule_id)).toEqual([adaRule, platform!.rule_id, adaRule]);
    expect(pins.map((p) => p?.platform_fee_bps)).toEqual([1000, 1500, 1000]);
    // A retried Don, after a newer rule for ada became active, keeps the session's first pin.
    const newer = await cooled(s, 2000, "ada");
    now_ns += BigInt(COOLING_S + 1) * 1_000_000_000n;
    await s.activate(actor("bob"), newer);
    const again = await s.pinSessions([
      { session_id: "s1", masque_name: "m-ada", author: "ada" },
      { session_id: "s3", masque_name: "m-ada", author: "ada" },
    ]);
    expect(again.map((p) => p?.rule_id)).toEqual([adaRule, newer]);
    expect(await s.pinOf("s1")).toEqual(pins[0]);
    // And it agrees with the one-at-a-time path.
    expect((await s.pinSession("s4", "m-ada", "ada"))?.rule_id).toBe(newer);
  });
});

describe(`the in-memory view of the active rules Don pins from (issue 20, ADR 0124, ${ENGINE})`, () => {
  it("is unknown until loaded; sees this store's activations at once and another daemon's after its next refresh; picks the most specific scope", async () => {
    const [a, b] = stores();
    expect(a.activeFor("m-ada", "ada")).toBeUndefined();
    const platform = (await a.bootstrap(1500))!;
    await Promise.all([a.refreshActive(), b.refreshActive()]);
    expect(a.activeFor("m-ada", "ada")).toMatchObject({ rule_id: platform.rule_id, platform_fee_bps: 1500, scope: { kind: "platform", value: "" } });

    // Another daemon (b) activates an author rule: a sees it only after its refresh (the tick).
    const adaRule = await cooled(b, 1000, "ada");
    now_ns += BigInt(COOLING_S + 1) * 1_000_000_000n;
    const active = await b.activate(actor("bob"), adaRule);
    expect(b.activeFor("m-ada", "ada")).toEqual({ rule_id: adaRule, scope: { kind: "author", value: "ada" }, platform_fee_bps: 1000, activate_time_ns: active.activate_time_ns });
    expect(a.activeFor("m-ada", "ada")?.rule_id).toBe(platform.rule_id);
    await a.refreshActive();
    expect(a.activeFor("m-ada", "ada")?.rule_id).toBe(adaRule);
    expect(a.activeFor("m-bea", "bea")?.rule_id).toBe(platform.rule_id);

    // An emergency activation in this store (a masque rule) is seen at once, and a refresh whose
    // query started before it committed does not undo it.
    const m = await a.create(actor("alice"), { scope: { kind: "masque", value: "m-ada" }, author_bps: 7000, platform_fee_bps: 3000, description: "" });
    const stale = a.refreshActive();
    await a.emergencyActivate(actor("frank"), m.rule_id, "urgent");
    await stale;
    expect(a.activeFor("m-ada", "ada")).toMatchObject({ rule_id: m.rule_id, platform_fee_bps: 3000 });
    // A superseding rule replaces it in the view.
    const m2 = await a.create(actor("alice"), { scope: { kind: "masque", value: "m-ada" }, author_bps: 6000, platform_fee_bps: 4000, description: "" });
    await a.emergencyActivate(actor("frank"), m2.rule_id, "again");
    await a.refreshActive();
    expect(a.activeFor("m-ada", "ada")).toMatchObject({ rule_id: m2.rule_id, platform_fee_bps: 4000 });
  });
});
