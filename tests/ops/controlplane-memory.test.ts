/**
 * ADR 0133: the embedded control plane (PGlite) opens with a 16MB shared buffer pool instead of
 * PostgreSQL's 128MB, on a fresh directory and on reopen, and keeps PGlite's own start parameters
 * (fsync/search_path/parallel workers) while doing so; committed rows survive the reopen.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase, PGLITE_SHARED_BUFFERS } from "../../src/controlplane/engine.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function setting(db: Awaited<ReturnType<typeof openDatabase>>["db"], name: string): Promise<string> {
  const { rows } = await sql<{ setting: string }>`select current_setting(${name}) as setting`.execute(db);
  return rows[0]!.setting;
}

describe("embedded control plane memory (ADR 0133)", () => {
  it("runs PGlite with the small shared buffer pool, fresh and reopened, without losing committed rows", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "cp-memory-"));
    dirs.push(dir);
    const opts = { poolMax: 1, pgliteDir: path.join(dir, "controlplane") };
    const first = await openDatabase(opts);
    try {
      expect(first.engine).toBe("pglite");
      expect(await setting(first.db, "shared_buffers")).toBe(PGLITE_SHARED_BUFFERS);
      expect(await setting(first.db, "search_path")).toBe("public");
      expect(await setting(first.db, "max_parallel_workers")).toBe("0");
      await sql`create table memory_probe (id int primary key, note text not null)`.execute(first.db);
      await sql`insert into memory_probe values (1, 'kept')`.execute(first.db);
    } finally {
      await first.close();
    }
    const second = await openDatabase(opts);
    try {
      expect(await setting(second.db, "shared_buffers")).toBe(PGLITE_SHARED_BUFFERS);
      const { rows } = await sql<{ note: string }>`select note from memory_probe where id = 1`.execute(second.db);
      expect(rows).toEqual([{ note: "kept" }]);
    } finally {
      await second.close();
    }
  }, 120_000);
});
