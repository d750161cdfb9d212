/**
 * Engine selection: one Kysely handle over either a PostgreSQL server (`DATABASE_URL`, npm `pg`)
 * or embedded PGlite (Postgres compiled to WebAssembly, on disk), with the same SQL (ADR 0070).
 *
 * PGlite is single-process and single-connection: its directory is locked with the embedded
 * ledger's data-directory lock (a second process fails with DataDirInUseError), and the dialect
 * serialises Kysely's connections onto the one PGlite session (a transaction holds it).
 */
import fs from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect, sql } from "kysely";
import { PGliteDialect } from "kysely-pglite-dialect";
import pg from "pg";
import { lockDataDir } from "../ledger/embedded/lock.js";
import type { Database } from "./schema.js";

export type EngineKind = "postgres" | "pglite";

/** Where the control plane lives. */
export interface EngineOptions {
  /** PostgreSQL connection URL; unset = PGlite in `pgliteDir`. */
  databaseUrl?: string | undefined;
  /** Most pooled connections to the server (1..100). */
  poolMax: number;
  /** PGlite directory (holds LOCK and pgdata/). */
  pgliteDir: string;
}

export interface OpenedDatabase {
  readonly db: Kysely<Database>;
  readonly engine: EngineKind;
  /** For logs: the engine and where, never a password. */
  readonly describe: string;
  /** Close the pool / PGlite and release the directory lock. Idempotent. */
  close(): Promise<void>;
}

/** Seconds a new server connection may take before open() fails. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Upper bound of one statement on the server (the control plane has no long queries). */
const STATEMENT_TIMEOUT_MS = 30_000;

/** `postgres://user:***@host:port/db`: the URL without its password (for logs and errors). */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}

/** Open the engine chosen by `opts` and check it answers. Throws with the engine named. */
export async function openDatabase(opts: EngineOptions): Promise<OpenedDatabase> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts.poolMax) : openPglite(opts.pgliteDir);
}

async function openPostgres(url: string, poolMax: number): Promise<OpenedDatabase> {
  if (!(Number.isInteger(poolMax) && poolMax >= 1 && poolMax <= 100)) throw new Error(`poolMax ${poolMax} must be 1..100`);
  const where = redactDatabaseUrl(url);
  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    application_name: "masques-ledger",
  });
  // An idle client losing its server must not crash the daemon; the next query reconnects.
  pool.on("error", () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await sql`select 1`.execute(db);
  } catch (err) {
    await db.destroy();
    throw new Error(`control-plane database ${where} is not reachable: ${(err as Error).message}`);
  }
  let closed: Promise<void> | undefined;
  return {
    db,
    engine: "postgres",
    describe: `postgresql ${where}`,
    close: () => (closed ??= db.destroy()),
  };
}

/**
 * PostgreSQL's shared buffer pool inside PGlite's WebAssembly memory. PGlite's default (128MB,
 * PostgreSQL's stock value) touches up to 128 MB of the WASM heap that is never given back; the
 * control plane's working set (price books, rules, leases, OTLP ids) is a few MB, and every
 * commit is written through to disk, so 16MB (PostgreSQL's old default) costs no durability and
 * saves ~130 MB RSS (ADR 0133).
 */
export const PGLITE_SHARED_BUFFERS = "16MB";

async function openPglite(dir: string): Promise<OpenedDatabase> {
  fs.mkdirSync(dir, { recursive: true });
  const lock = lockDataDir(dir);
  const dataDir = path.join(dir, "pgdata");
  let db: Kysely<Database>;
  try {
    const pglite = new PGlite(dataDir, {
      startParams: [...PGlite.defaultStartParams, "-c", `shared_buffers=${PGLITE_SHARED_BUFFERS}`],
    });
    await pglite.waitReady;
    db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
    await sql`select 1`.execute(db);
  } catch (err) {
    lock.release();
    throw new Error(`control-plane database (PGlite at ${dataDir}) failed to open: ${(err as Error).message}`);
  }
  let closed: Promise<void> | undefined;
  return {
    db,
    engine: "pglite",
    describe: `pglite ${dataDir}`,
    close: () =>
      (closed ??= (async () => {
        try {
          await db.destroy();
        } finally {
          lock.release();
        }
      })()),
  };
}
