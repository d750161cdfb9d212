import { appendFileSync, cpSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChdbSink, loadMigrations, migrate, MigrationError } from "../../src/streamer/index.js";
import { SQL_DIR, splitStatements } from "../../src/streamer/migrations.js";
import { scalar, tempDir } from "./support.js";

describe("ClickHouse migrations (sql/)", () => {
  const tmp = tempDir("migrations");
  let sink: ChdbSink;

  beforeAll(async () => {
    sink = await ChdbSink.open({ path: path.join(tmp.dir, "chdb"), database: "masques" });
  });
  afterAll(async () => {
    await sink.close();
    tmp.cleanup();
  });

  it("applies every numbered migration once, then nothing on every later run", async () => {
    const files = loadMigrations();
    expect(files.map((m) => m.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const first = await migrate(sink);
    expect(first.applied).toEqual(files.map((m) => m.name));
    const tables = await sink.query("SELECT name, create_table_query FROM system.tables WHERE database = 'masques' ORDER BY name");
    for (let i = 0; i < 2; i++) {
      const again = await migrate(sink);
      expect(again.applied).toEqual([]);
      expect(again.already).toEqual(files.map((m) => m.name));
    }
    expect(await sink.query("SELECT name, create_table_query FROM system.tables WHERE database = 'masques' ORDER BY name")).toEqual(tables);
    expect(await scalar(sink, "SELECT count() FROM {{db}}.schema_migrations FINAL")).toBe("12");
    const names = tables.map((t) => String(t.name));
    for (const t of ["identities", "accounts", "account_balances", "transfers", "sessions", "usage", "settlements", "api_requests", "reputation_masques", "reputation_authors", "stream_cursor", "audit_log"]) {
      expect(names).toContain(t);
    }
  });

  it("keeps ids and amounts exact as UInt128", async () => {
    await migrate(sink);
    const max = (1n << 128n) - 2n;
    await sink.insert("transfers", ["id", "amount", "timestamp", "kind", "phase"], [[max, max, 1n, "deposit", "single"]]);
    const rows = await sink.query("SELECT id, amount FROM masques.transfers FINAL WHERE timestamp = 1");
    expect(rows).toEqual([{ id: max.toString(), amount: max.toString() }]);
  });

  it("012 copies the attributes of api_requests rows stored before it into attributes_json", async () => {
    const dir = path.join(tmp.dir, "sql-before-012");
    cpSync(SQL_DIR, dir, { recursive: true, filter: (src) => !/012_[a-z0-9_]+\.sql$/.test(src) });
    const other = await ChdbSink.open({ path: path.join(tmp.dir, "chdb"), database: "masques_012" });
    try {
      await migrate(other, dir);
      await other.insert("api_requests", ["timestamp", "request_id", "attributes"], [
        ["2026-11-30 08:00:00.000000001", "0123456789abcdef0123456789abcdef", "{'session.id':'claude-old','q':'say \"hi\"'}"],
      ]);
      const report = await migrate(other);
      expect(report.applied).toEqual(["012_api_requests_attributes_json"]);
      const rows = await other.query(
        "SELECT JSONExtractString(attributes_json, 'session.id') AS claude, JSONExtractString(attributes_json, 'q') AS q FROM masques_012.api_requests",
      );
      expect(rows).toEqual([{ claude: "claude-old", q: 'say "hi"' }]);
    } finally {
      await other.close();
    }
  });

  it("refuses to run when an applied migration's file has changed", async () => {
    const dir = path.join(tmp.dir, "sql-copy");
    cpSync(SQL_DIR, dir, { recursive: true });
    const other = await ChdbSink.open({ path: path.join(tmp.dir, "chdb"), database: "masques_copy" });
    try {
      await migrate(other, dir);
      appendFileSync(path.join(dir, "004_settlements.sql"), "\n-- edited after it was applied\n");
      const err = await migrate(other, dir).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(MigrationError);
      expect((err as Error).message).toMatch(/004_settlements was applied with checksum .* add a new numbered migration/);
    } finally {
      await other.close();
    }
  });

  it("refuses a database that has a migration this build does not know", async () => {
    const dir = path.join(tmp.dir, "sql-newer");
    cpSync(SQL_DIR, dir, { recursive: true });
    const other = await ChdbSink.open({ path: path.join(tmp.dir, "chdb"), database: "masques_newer" });
    try {
      writeFileSync(path.join(dir, "099_future.sql"), "CREATE TABLE IF NOT EXISTS {{db}}.future (x UInt8) ENGINE = MergeTree ORDER BY x;\n");
      expect((await migrate(other, dir)).applied).toContain("099_future");
      const older = path.join(tmp.dir, "sql-older");
      cpSync(SQL_DIR, older, { recursive: true });
      await expect(migrate(other, older)).rejects.toThrow(/has migration 099_future that is not in/);
    } finally {
      await other.close();
    }
  });

  it("splits statements on line-ending semicolons and drops comments", () => {
    expect(
      splitStatements("-- header; not a statement\nCREATE TABLE a (s String DEFAULT '--x;') -- trailing\nENGINE = Memory;\n\nSELECT 1;\n"),
    ).toEqual(["CREATE TABLE a (s String DEFAULT '--x;') \nENGINE = Memory", "SELECT 1"]);
  });
});
