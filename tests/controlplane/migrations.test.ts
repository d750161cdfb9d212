/**
 * Control-plane migrations (ADR 0070): applied once, recorded with a checksum, checked at every
 * start. Runs on PGlite, and on PostgreSQL when DATABASE_URL is set (see support.ts).
 */
import { sql, type Kysely } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MIGRATIONS } from "../../src/controlplane/migrations/index.js";
import { migrate, MigrationRefusedError, type ControlPlaneMigration } from "../../src/controlplane/migrations.js";
import type { Database } from "../../src/controlplane/schema.js";
import { priceBookVersion } from "../../src/domain/catalog.js";
import { priceBookFromText } from "../../src/domain/pricing.js";
import { createTestDb, ENGINE, type TestDb } from "./support.js";

let t: TestDb;
beforeEach(async () => {
  t = await createTestDb();
});
afterEach(async () => {
  await t.dispose();
});

/** Everything a migration could change: schema, migration records, rows. */
async function snapshot(db: Kysely<Database>): Promise<unknown> {
  const columns = await sql`
    select table_name, column_name, data_type, is_nullable, column_default
    from information_schema.columns where table_schema = 'public'
    order by table_name, ordinal_position`.execute(db);
  const indexes = await sql`select indexname, indexdef from pg_indexes where schemaname = 'public' order by indexname`.execute(db);
  const applied = await sql`select name, timestamp from controlplane_migration order by name`.execute(db);
  const sums = await sql`select name, sha256 from controlplane_migration_checksum order by name`.execute(db);
  const books = await sql`select version, masque_index::text, masque_name, author, pricing, source, first_seen::text from price_book order by version`.execute(db);
  const imports = await sql`select * from price_book_import order by file`.execute(db);
  return { columns: columns.rows, indexes: indexes.rows, applied: applied.rows, sums: sums.rows, books: books.rows, imports: imports.rows };
}

const pricing = priceBookFromText({ flat_per_session: "0.05", per_minute: "0.01", reserve: "1" });
const entry = { version: priceBookVersion(3, "ada", pricing), masque_index: 3, masque_name: "three", author: "ada", pricing };

const future: ControlPlaneMigration = {
  name: "0099_future_feature",
  statements: ["create table future_feature (id bigint primary key)"],
};

describe(`control-plane migrations (${ENGINE})`, () => {
  it("a fresh database gets every migration, in order, each with its checksum", async () => {
    const cp = await t.open();
    try {
      expect(cp.engine).toBe(ENGINE);
      expect(cp.migrations.applied).toEqual(MIGRATIONS.map((m) => m.name));
      expect(cp.migrations.current).toEqual(MIGRATIONS.map((m) => m.name));
      const sums = await sql<{ n: number }>`select count(*)::int as n from controlplane_migration_checksum`.execute(cp.db);
      expect(sums.rows[0]!.n).toBe(MIGRATIONS.length);
    } finally {
      await cp.close();
    }
  });

  it("applying the migrations again (restart, then migrate once more in place) changes nothing", async () => {
    const first = await t.open();
    await first.priceBooks.put(entry);
    const before = await snapshot(first.db);
    await first.close();

    const second = await t.open();
    try {
      expect(second.migrations.applied).toEqual([]);
      expect(await snapshot(second.db)).toEqual(before);
      const again = await migrate(second.db, MIGRATIONS, { dataDir: t.dataDir });
      expect(again.applied).toEqual([]);
      expect(await snapshot(second.db)).toEqual(before);
      expect(await second.priceBooks.get(entry.version)).toEqual(entry);
    } finally {
      await second.close();
    }
  });

  it("concurrent starters apply each migration exactly once", async () => {
    const cp = await t.open({ migrations: MIGRATIONS.slice(0, 1) });
    try {
      const runs = await Promise.all([1, 2, 3].map(() => migrate(cp.db, MIGRATIONS, { dataDir: t.dataDir })));
      const applied = runs.flatMap((r) => r.applied).sort();
      expect(applied).toEqual(MIGRATIONS.slice(1).map((m) => m.name));
      for (const r of runs) expect(r.current).toEqual(MIGRATIONS.map((m) => m.name));
    } finally {
      await cp.close();
    }
  });

  it("a database with an applied migration this build does not know refuses to start, unchanged", async () => {
    const newer = await t.open({ migrations: [...MIGRATIONS, future] });
    await newer.priceBooks.put(entry);
    await newer.close();
    // What the newer build left, read with its own migration list.
    const check = await t.open({ migrations: [...MIGRATIONS, future] });
    const before = await snapshot(check.db);
    await check.close();

    const err = await t.open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MigrationRefusedError);
    expect((err as Error).message).toMatch(/migration 0099_future_feature applied, which this build does not know.*Refusing to start/);

    const after = await t.open({ migrations: [...MIGRATIONS, future] });
    try {
      expect(await snapshot(after.db)).toEqual(before);
    } finally {
      await after.close();
    }
  });

  it("an applied migration whose text changed refuses to start, naming it", async () => {
    await (await t.open()).close();
    const edited = MIGRATIONS.map((m) =>
      m.name === "0001_price_books" ? { ...m, statements: [...m.statements, "create index price_book_name on price_book (masque_name)"] } : m,
    );
    await expect(t.open({ migrations: edited })).rejects.toThrow(/migration 0001_price_books changed after it was applied.*Refusing to start/);
    const renamedStep = MIGRATIONS.map((m) => (m.data ? { ...m, data: { ...m.data, id: `${m.data.id} (edited)` } } : m));
    await expect(t.open({ migrations: renamedStep })).rejects.toThrow(/migration 0002_import_pricebooks_jsonl changed after it was applied/);
    // The original build still starts.
    const cp = await t.open();
    await cp.close();
  });

  it("a failing migration leaves nothing behind and is retried on the next start", async () => {
    const broken: ControlPlaneMigration = { name: "0098_broken", statements: ["create table half_done (id int)", "select no_such_function()"] };
    await expect(t.open({ migrations: [...MIGRATIONS, broken] })).rejects.toThrow(/migration 0098_broken failed/);
    const cp = await t.open();
    try {
      // All pending migrations run in one transaction: nothing of this attempt was kept.
      expect(cp.migrations.applied).toEqual(MIGRATIONS.map((m) => m.name));
      const half = await sql<{ t: string | null }>`select to_regclass('half_done')::text as t`.execute(cp.db);
      expect(half.rows[0]!.t).toBeNull();
    } finally {
      await cp.close();
    }
  });
});
