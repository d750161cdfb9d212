/**
 * Numbered control-plane migrations, applied by Kysely's Migrator (its own record table
 * `controlplane_migration`, a PostgreSQL advisory lock, every pending migration in one
 * transaction), plus a checksum per applied migration, checked at every start (ADR 0070).
 *
 * Start-up refuses, with the migration named, when the database has an applied migration this
 * build does not know (a newer build migrated it) or one whose text changed since it was applied.
 * Rules: a migration takes the next free number when committed and is never renumbered, edited
 * or removed; fix a mistake with a new migration.
 */
import { createHash } from "node:crypto";
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from "kysely";
import type { Database } from "./schema.js";

/** What a migration's data step may read (never money; never the network). */
export interface MigrationEnv {
  /** The daemon's MASQUES_DATA_DIR, resolved (legacy files live under it). */
  readonly dataDir: string;
}

/** One numbered migration: SQL statements, optionally followed by a data step. */
export interface ControlPlaneMigration {
  /** `NNNN_snake_case` (4-digit number first); the order is the number's. */
  readonly name: string;
  /** Statements run in order, in the migration transaction; their text is checksummed. */
  readonly statements: readonly string[];
  /**
   * Optional data step run after the statements in the same transaction. `id` names its
   * behaviour and is checksummed: change the behaviour, and you must add a new migration.
   */
  readonly data?: {
    readonly id: string;
    run(trx: Kysely<Database>, env: MigrationEnv): Promise<void>;
  };
}

export const MIGRATION_TABLE = "controlplane_migration";
export const MIGRATION_LOCK_TABLE = "controlplane_migration_lock";
const NAME_RE = /^(\d{4})_[a-z0-9_]+$/;
/** Advisory lock key of the checksum-table bootstrap (any fixed 64-bit number). */
const BOOTSTRAP_LOCK_KEY = 7_030_070_001n;

/** The start-up check failed: the database does not match this build's migrations. */
export class MigrationRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MigrationRefusedError";
  }
}

/** SHA-256 (hex) over the migration's name, statements and data-step id. */
export function migrationChecksum(m: ControlPlaneMigration): string {
  return createHash("sha256")
    .update(JSON.stringify([m.name, m.statements, m.data?.id ?? null]))
    .digest("hex");
}

/** Names well formed, numbers strictly increasing (a programming error otherwise). */
export function assertMigrationList(list: readonly ControlPlaneMigration[]): void {
  let last = 0;
  for (const m of list) {
    const match = NAME_RE.exec(m.name);
    if (!match) throw new Error(`migration name ${JSON.stringify(m.name)} must be NNNN_snake_case`);
    const n = Number(match[1]);
    if (n <= last) throw new Error(`migration ${m.name}: numbers must strictly increase (after ${last})`);
    if (m.statements.length === 0 && !m.data) throw new Error(`migration ${m.name} does nothing`);
    last = n;
  }
}

/** The checksum table must exist before the first migration records into it. */
async function bootstrap(db: Kysely<Database>): Promise<void> {
  await db.connection().execute((conn) =>
    conn.transaction().execute(async (trx) => {
      // Concurrent CREATE TABLE IF NOT EXISTS can still collide in pg_type: serialise starters.
      await sql`select pg_advisory_xact_lock(${sql.lit(BOOTSTRAP_LOCK_KEY)})`.execute(trx);
      await sql`create table if not exists controlplane_migration_checksum (
        name text primary key,
        sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$')
      )`.execute(trx);
    }),
  );
}

/** Applied migrations (name -> checksum, null if unrecorded) in name order. */
async function appliedMigrations(db: Kysely<Database>): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  const exists = await sql<{ t: string | null }>`select to_regclass(${MIGRATION_TABLE})::text as t`.execute(db);
  if (!exists.rows[0]?.t) return out;
  const rows = await db
    .selectFrom("controlplane_migration as m")
    .leftJoin("controlplane_migration_checksum as c", "c.name", "m.name")
    .select(["m.name as name", "c.sha256 as sha256"])
    .orderBy("m.name")
    .execute();
  for (const r of rows) out.set(r.name, r.sha256);
  return out;
}

/**
 * Refuse a database that does not match `list`: an applied migration unknown to this build, one
 * whose checksum differs, or one applied without a checksum. Returns the applied names.
 */
export async function checkAppliedMigrations(db: Kysely<Database>, list: readonly ControlPlaneMigration[]): Promise<string[]> {
  const known = new Map(list.map((m) => [m.name, migrationChecksum(m)]));
  const applied = await appliedMigrations(db);
  for (const [name, sha] of applied) {
    const want = known.get(name);
    if (want === undefined) {
      throw new MigrationRefusedError(
        `control-plane database has migration ${name} applied, which this build does not know (newest known: ${list.at(-1)?.name ?? "none"}); ` +
          "a newer masques-ledger migrated it: run that version, or restore the database from before it. Refusing to start.",
      );
    }
    if (sha === null) {
      throw new MigrationRefusedError(`control-plane database has migration ${name} applied without a recorded checksum; refusing to start.`);
    }
    if (sha !== want) {
      throw new MigrationRefusedError(
        `control-plane migration ${name} changed after it was applied (checksum ${sha.slice(0, 12)}… in the database, ${want.slice(0, 12)}… in this build); ` +
          "applied migrations are never edited: restore the original text and add a new migration. Refusing to start.",
      );
    }
  }
  return [...applied.keys()];
}

class ListProvider implements MigrationProvider {
  constructor(
    private readonly list: readonly ControlPlaneMigration[],
    private readonly env: MigrationEnv,
  ) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const out: Record<string, Migration> = {};
    for (const m of this.list) {
      const checksum = migrationChecksum(m);
      out[m.name] = {
        up: async (trx) => {
          for (const statement of m.statements) await sql.raw(statement).execute(trx);
          if (m.data) await m.data.run(trx, this.env);
          await trx.insertInto("controlplane_migration_checksum").values({ name: m.name, sha256: checksum }).execute();
        },
      };
    }
    return out;
  }
}

export interface MigrateResult {
  /** Migrations applied by this call, in order (empty when the database was current). */
  readonly applied: string[];
  /** Every applied migration after this call. */
  readonly current: string[];
}

/**
 * Check the applied migrations, then apply the pending ones (all in one transaction, under
 * Kysely's advisory lock, so concurrent starters apply each migration once). Throws
 * MigrationRefusedError when the database does not match `list`.
 */
export async function migrate(db: Kysely<Database>, list: readonly ControlPlaneMigration[], env: MigrationEnv): Promise<MigrateResult> {
  assertMigrationList(list);
  await bootstrap(db);
  await checkAppliedMigrations(db, list);
  const migrator = new Migrator({
    db,
    provider: new ListProvider(list, env),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    const message = error instanceof Error ? error.message : String(error);
    if (/corrupted migrations/.test(message)) throw new MigrationRefusedError(`control-plane database: ${message}; refusing to start.`);
    throw new Error(`control-plane migration ${failed ?? "(before any migration)"} failed: ${message}`, { cause: error });
  }
  const applied = (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
  const current = await checkAppliedMigrations(db, list);
  return { applied, current };
}
