/**
 * Issue 16, "Audit log": tampering with the stored log (PGlite tables on disk) is detected, with
 * the position of the first bad entry: an edited, a deleted and a reordered entry break the chain
 * at their position; a truncated tail and a consistent wholesale rewrite are caught by the
 * anchors the daemon wrote into the ledger. Real control plane and embedded ledger, in process.
 */
import { sql } from "kysely";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { appendAudit, readChain } from "../../src/controlplane/audit.js";
import { entryHash, GENESIS_HASH } from "../../src/domain/audit-chain.js";
import { governanceOf, stopGovernanceRuntime } from "../../src/services/governance.js";
import { readAnchors } from "../../src/services/governance-runtime.js";
import { startInProcess, type InProcess } from "../sessions/inprocess.js";

let ip: InProcess;
const db = () => ip.ctx.controlplane.db;
const audit = () => governanceOf(ip.ctx).audit;

async function append(n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    await db().transaction().execute((trx) =>
      appendAudit(trx, { time_ns: 1n + BigInt(i), actor_kind: "admin", actor_id: "ops", action: "test.step", subject: `t:${tag}${i}`, request_id: `r-${tag}${i}`, reason: `step ${i}`, after: { i } }),
    );
  }
}

beforeAll(async () => {
  // The governance tick never fires during the test: anchors are written by the test's calls.
  ip = await startInProcess({ GOVERNANCE_TICK_MS: "3600000" });
  // The first rule's entry is 1; entries 2..6 follow; anchors at 4 and at 6.
  await append(3, "a");
  expect(await audit().anchor()).toBe(4n);
  await append(2, "b");
  expect(await audit().anchor()).toBe(6n);
  expect(await audit().anchor()).toBeNull(); // nothing new: no second anchor for the same head
  await sql`create table audit_entry_backup as select * from audit_entry`.execute(db());
  await sql`create table audit_head_backup as select * from audit_head`.execute(db());
}, 120_000);
afterAll(async () => {
  await stopGovernanceRuntime(ip.ctx);
  await ip?.close();
});
beforeEach(async () => {
  expect(await audit().verify()).toMatchObject({ ok: true, entries: 6, anchors: 2, first_bad_seq: null });
});
afterEach(async () => {
  // Restore the log as written.
  await sql`delete from audit_entry`.execute(db());
  await sql`insert into audit_entry select * from audit_entry_backup`.execute(db());
  await sql`delete from audit_head`.execute(db());
  await sql`insert into audit_head select * from audit_head_backup`.execute(db());
});

describe("audit log tampering is detected with the position of the first bad entry", () => {
  it("the anchors are zero-amount transfers in the ledger carrying the head", async () => {
    const anchors = await readAnchors(ip.ctx.ledger);
    expect(anchors.map((t) => [t.user_data_64, t.amount])).toEqual([[4n, 0n], [6n, 0n]]);
    const chain = await readChain(db());
    expect(anchors[1]!.user_data_128.toString(16).padStart(32, "0")).toBe(chain[5]!.hash.slice(0, 32));
  });

  it("an edited entry", async () => {
    await sql`update audit_entry set reason = 'nothing to see' where seq = 3`.execute(db());
    expect(await audit().verify()).toMatchObject({ ok: false, first_bad_seq: 3n, detail: expect.stringMatching(/entry 3: content does not match its hash \(edited\)/) });
  });

  it("an edited actor with its own hash recomputed breaks the next link", async () => {
    const [e] = (await readChain(db())).filter((x) => x.seq === 2n);
    const forged = { ...e!, actor_id: "mallory" };
    await sql`update audit_entry set actor_id = 'mallory', hash = ${entryHash(forged)} where seq = 2`.execute(db());
    expect(await audit().verify()).toMatchObject({ ok: false, first_bad_seq: 3n, detail: expect.stringMatching(/prev_hash does not match/) });
  });

  it("a deleted entry", async () => {
    await sql`delete from audit_entry where seq = 4`.execute(db());
    expect(await audit().verify()).toMatchObject({ ok: false, first_bad_seq: 4n, detail: expect.stringMatching(/position 4 has seq 5: an entry was deleted or reordered/) });
  });

  it("two entries reordered", async () => {
    // Swap the positions of entries 2 and 3 (rows keep their content, trade their seq).
    await sql`update audit_entry set seq = 1000000 where seq = 2`.execute(db());
    await sql`update audit_entry set seq = 2 where seq = 3`.execute(db());
    await sql`update audit_entry set seq = 3 where seq = 1000000`.execute(db());
    expect(await audit().verify()).toMatchObject({ ok: false, first_bad_seq: 2n });
  });

  it("a truncated tail (rows and head deleted consistently)", async () => {
    const chain = await readChain(db());
    await sql`delete from audit_entry where seq > 5`.execute(db());
    await sql`update audit_head set seq = 5, hash = ${chain[4]!.hash}`.execute(db());
    expect(await audit().verify()).toMatchObject({ ok: false, first_bad_seq: 6n, detail: expect.stringMatching(/anchored entry 6 but the log ends at 5: entries were removed \(truncated\)/) });
  });

  it("a wholesale rewrite with a consistent chain", async () => {
    const chain = await readChain(db());
    let prev = GENESIS_HASH;
    for (const e of chain) {
      const fields = { ...e, reason: e.seq === 3n ? "rewritten" : e.reason, prev_hash: prev };
      const hash = entryHash(fields);
      await sql`update audit_entry set reason = ${fields.reason}, prev_hash = ${prev}, hash = ${hash} where seq = ${e.seq.toString()}`.execute(db());
      prev = hash;
    }
    const v = await audit().verify();
    expect(v).toMatchObject({ ok: false, first_bad_seq: 4n, detail: expect.stringMatching(/entry 4 differs from the hash anchored in the ledger: the log was rewritten/) });
  });
});
