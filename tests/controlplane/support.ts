/**
 * Test support for the control-plane suites: ONE set of test files, two engines.
 *
 *   - default: embedded PGlite in a fresh temp directory;
 *   - with DATABASE_URL set (`.ci/run` starts a throw-away PostgreSQL server and sets it): a
 *     fresh database `masques_test_<random>` is created on that server per test and dropped after.
 *
 * Each test also gets a fresh MASQUES_DATA_DIR (legacy files such as pricebooks.jsonl live there).
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { afterAll } from "vitest";
import { createPriceBookStore, type PriceBookStore } from "../../src/controlplane/pricebooks.js";
import { openControlPlane, type ControlPlane, type ControlPlaneOptions } from "../../src/controlplane/index.js";

/** The engine these suites run on, chosen by DATABASE_URL. */
export const ENGINE: "postgres" | "pglite" = process.env.DATABASE_URL ? "postgres" : "pglite";

export interface TestDb {
  /** Fresh MASQUES_DATA_DIR of this test. */
  readonly dataDir: string;
  /** Options reaching this test's database (same database on every call). */
  options(extra?: Partial<ControlPlaneOptions>): ControlPlaneOptions;
  /** Environment for a child process reaching the same database. */
  env(): Record<string, string>;
  open(extra?: Partial<ControlPlaneOptions>): Promise<ControlPlane>;
  /**
   * A second writer over the same database: on PostgreSQL a second connection pool (another
   * daemon); on PGlite (one process per directory) a second store over the same handle.
   */
  peer(cp: ControlPlane): Promise<{ priceBooks: PriceBookStore; close(): Promise<void> }>;
  /** Drop the database / remove the directories. */
  dispose(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * PGlite's first start runs initdb (seconds on a loaded machine). Each test file initialises one
 * empty cluster (no migrations) and every test starts from a copy of it: still a fresh database.
 */
let pristine: Promise<string> | undefined;
function pristinePglite(): Promise<string> {
  pristine ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "controlplane-pristine-"));
    const db = new PGlite(path.join(dir, "pgdata"));
    await db.waitReady;
    await db.close();
    return path.join(dir, "pgdata");
  })();
  return pristine;
}
// Every test file that imports this module removes its pristine copy when it ends.
afterAll(async () => {
  if (pristine) fs.rmSync(path.dirname(await pristine), { recursive: true, force: true });
});

export async function createTestDb(): Promise<TestDb> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "controlplane-test-"));
  if (!process.env.DATABASE_URL) {
    fs.cpSync(await pristinePglite(), path.join(dataDir, "controlplane", "pgdata"), { recursive: true });
  }
  let databaseUrl: string | undefined;
  let database: string | undefined;
  const serverUrl = process.env.DATABASE_URL;
  if (serverUrl) {
    database = `masques_test_${randomBytes(6).toString("hex")}`;
    const name = database;
    await admin((c) => c.query(`create database ${name}`));
    databaseUrl = withDatabase(serverUrl, database);
  }
  const options = (extra: Partial<ControlPlaneOptions> = {}): ControlPlaneOptions => ({
    databaseUrl,
    poolMax: 4,
    pgliteDir: path.join(dataDir, "controlplane"),
    dataDir,
    ...extra,
  });
  return {
    dataDir,
    options,
    env: () => ({
      MASQUES_DATA_DIR: dataDir,
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    }),
    open: (extra) => openControlPlane(options(extra)),
    async peer(cp) {
      if (!databaseUrl) return { priceBooks: createPriceBookStore({ db: cp.db }), close: async () => {} };
      const other = await openControlPlane(options());
      return { priceBooks: other.priceBooks, close: () => other.close() };
    },
    async dispose() {
      if (database) {
        const name = database;
        await admin((c) => c.query(`drop database if exists ${name} with (force)`));
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
