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
