/**
 * ClickHouse migration runner. Migrations are the numbered files in sql/ (NNN_name.sql), applied
 * in order, each recorded in `schema_migrations` with the SHA-256 of its text. Re-running applies
 * only what is missing; a migration whose file changed after it was applied is refused (write a
 * new migration instead). Statements use IF NOT EXISTS, so a migration interrupted half-way is
 * simply re-run.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { bindDatabase, quoteIdent, type Sink } from "./sink.js";

export const SQL_DIR = fileURLToPath(new URL("../../sql/", import.meta.url));

export interface Migration {
  version: number;
  name: string;
  checksum: string;
  statements: string[];
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MigrationError";
  }
}

/** Split a migration file into statements: `;` at the end of a line ends one; `--` comments go. */
export function splitStatements(text: string): string[] {
  const lines = text.split("\n").map(stripComment);
  const out: string[] = [];
  let cur: string[] = [];
  for (const line of lines) {
    cur.push(line);
    if (/;\s*$/.test(line)) {
      const stmt = cur.join("\n").trim().replace(/;\s*$/, "").trim();
      if (stmt) out.push(stmt);
      cur = [];
    }
  }
  const rest = cur.join("\n").trim();
  if (rest) out.push(rest);
  return out;
}

/** Cut a `--` comment (outside single-quoted strings) off a line. */
function stripComment(line: string): string {
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (ch === "\\" && quoted) i++;
    else if (ch === "'") quoted = !quoted;
    else if (!quoted && ch === "-" && line[i + 1] === "-") return line.slice(0, i);
  }
  return line;
}

export function loadMigrations(dir: string = SQL_DIR): Migration[] {
  const files = readdirSync(dir).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
  const seen = new Set<number>();
  return files.map((file) => {
    const version = Number(file.slice(0, 3));
    if (seen.has(version)) throw new MigrationError(`two migrations numbered ${version} in ${dir}`);
    seen.add(version);
    const text = readFileSync(`${dir}/${file}`, "utf8");
    return {
      version,
      name: file.replace(/\.sql$/, ""),
      checksum: createHash("sha256").update(text).digest("hex"),
      statements: splitStatements(text),
    };
  });
}

export interface MigrationReport {
  applied: string[];
  already: string[];
}

/** Bring the sink's database up to date. Safe to call on every start. */
export async function migrate(sink: Sink, dir: string = SQL_DIR): Promise<MigrationReport> {
  const db = quoteIdent(sink.database);
  await sink.exec(`CREATE DATABASE IF NOT EXISTS ${db}`);
  await sink.exec(
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (
       version UInt32, name String, checksum String, applied_ns UInt64
     ) ENGINE = ReplacingMergeTree ORDER BY version
     SETTINGS fsync_after_insert = 1, fsync_part_directory = 1`,
  );
  const rows = await sink.query(`SELECT version, name, checksum FROM ${db}.schema_migrations FINAL ORDER BY version`);
  const applied = new Map<number, { name: string; checksum: string }>();
  for (const r of rows) applied.set(Number(r.version), { name: String(r.name), checksum: String(r.checksum) });

  const report: MigrationReport = { applied: [], already: [] };
  const migrations = loadMigrations(dir);
  for (const m of migrations) {
    const prior = applied.get(m.version);
    if (prior) {
      if (prior.checksum !== m.checksum) {
        throw new MigrationError(
          `migration ${m.name} was applied with checksum ${prior.checksum.slice(0, 12)} but the file now has ` +
            `${m.checksum.slice(0, 12)}: applied migrations are immutable, add a new numbered migration instead`,
        );
      }
      report.already.push(m.name);
      continue;
    }
    for (const stmt of m.statements) await sink.exec(bindDatabase(stmt, sink.database));
    await sink.insert("schema_migrations", ["version", "name", "checksum", "applied_ns"], [
      [m.version, m.name, m.checksum, BigInt(Date.now()) * 1_000_000n],
    ]);
    report.applied.push(m.name);
  }
  const known = new Set(migrations.map((m) => m.version));
  for (const [version, { name }] of applied) {
    if (!known.has(version)) throw new MigrationError(`database has migration ${name} that is not in ${dir}`);
  }
  return report;
}
