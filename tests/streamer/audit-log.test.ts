/**
 * Issue 16: the governance audit log is streamed to ClickHouse (`audit_log`, sql/009) from the
 * control plane, in chain order, every field exact, and a repeated copy (at-least-once delivery)
 * adds nothing. Real chDB and PGlite.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appendAudit } from "../../src/controlplane/audit.js";
import { openControlPlane, type ControlPlane } from "../../src/controlplane/index.js";
import { copyAuditLog } from "../../src/streamer/audit.js";
import { ChdbSink, migrate } from "../../src/streamer/index.js";
import { seedControlPlane } from "../support/pglite-template.js";
import { scalar, tempDir } from "./support.js";

describe("audit log → ClickHouse", () => {
  const tmp = tempDir("audit-log");
  let sink: ChdbSink;
  let cp: ControlPlane;

  beforeAll(async () => {
    sink = await ChdbSink.open({ path: path.join(tmp.dir, "chdb"), database: "masques" });
    await migrate(sink);
    await seedControlPlane(tmp.dir);
    cp = await openControlPlane({ pgliteDir: path.join(tmp.dir, "controlplane"), poolMax: 1, dataDir: tmp.dir });
  });
  afterAll(async () => {
    await cp?.close();
    await sink?.close();
    tmp.cleanup();
  });

  it("copies every entry once, exactly, in chain order; a repeated copy adds nothing", async () => {
    for (let i = 0; i < 3; i++) {
      await cp.db.transaction().execute((trx) =>
        appendAudit(trx, {
          time_ns: 1_800_000_000_123_456_789n + BigInt(i),
          actor_kind: "admin",
          actor_id: "alice",
          action: i === 2 ? "revenue_rule.emergency_activate" : "revenue_rule.create",
          subject: `revenue_rule:r${i}`,
          rule_id: `r${i}`,
          request_id: `req-${i}`,
          reason: "tab\there, newline\nthere",
          before: i === 0 ? null : { state: "draft" },
          after: { state: "active", fee_bps: 1500n },
          emergency: i === 2,
        }),
      );
    }
    expect(await copyAuditLog(cp.db, sink)).toBe(3);
    expect(await copyAuditLog(cp.db, sink)).toBe(0);
    const rows = await sink.query(
      "SELECT seq, toString(time) AS t, actor_id, action, rule_id, request_id, reason, before_json, after_json, emergency, prev_hash, hash FROM masques.audit_log FINAL ORDER BY seq",
    );
    expect(rows.map((r) => r.seq)).toEqual(["1", "2", "3"]);
    expect(rows[0]).toMatchObject({ t: "2027-01-15 08:00:00.123456789", actor_id: "alice", action: "revenue_rule.create", rule_id: "r0", reason: "tab\there, newline\nthere", before_json: "", after_json: '{"state":"active","fee_bps":"1500"}', emergency: false });
    expect(rows[2]).toMatchObject({ action: "revenue_rule.emergency_activate", emergency: true, prev_hash: rows[1]!.hash });
    // At-least-once: inserting the same rows again (a crash before the cursor moved) changes nothing.
    await sink.exec("INSERT INTO masques.audit_log (seq, time_ns, actor_kind, actor_id, action, subject, rule_id, request_id, reason, before_json, after_json, emergency, prev_hash, hash) SELECT * EXCEPT (time) FROM masques.audit_log FINAL WHERE seq = 1");
    expect(await scalar(sink, "SELECT count() FROM masques.audit_log FINAL")).toBe("3");
  });
});
