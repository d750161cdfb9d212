/**
 * Test support only: a pre-initialised, EMPTY PGlite cluster (initdb done, no migrations) that
 * tests copy into a fresh data directory before a daemon or control plane opens it, so each start
 * skips PGlite's initdb (seconds on a loaded machine) yet still applies every migration itself
 * (ADR 0076). Production is unchanged: a daemon with no cluster in its data directory runs initdb.
 *
 * The vitest globalSetup tests/support/pglite-template.global.ts makes it (kept between runs, keyed
 * by the PGlite version) and names it in MASQUES_TEST_PGLITE_TEMPLATE; a process without that
 * variable makes its own once.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";

/** Environment variable naming the run's template `pgdata` directory ("off": every start runs initdb, to measure). */
export const TEMPLATE_ENV = "MASQUES_TEST_PGLITE_TEMPLATE";

/** initdb into `<dir>/pgdata` and close; returns that path. */
export async function createPgliteTemplate(dir: string): Promise<string> {
  const pgdata = path.join(dir, "pgdata");
  const db = new PGlite(pgdata);
  await db.waitReady;
  await db.close();
  return pgdata;
}

let own: Promise<string> | undefined;

/** The run's template (or this process's own, made once and removed at exit). */
export function pgliteTemplate(): Promise<string> {
  const shared = process.env[TEMPLATE_ENV];
  if (shared && fs.existsSync(path.join(shared, "PG_VERSION"))) return Promise.resolve(shared);
  own ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pglite-template-"));
    process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    return createPgliteTemplate(dir);
  })();
  return own;
}

/**
 * Copy the template to where a daemon with `env` over `dataDir` opens its control plane
 * (`CONTROLPLANE_DATA_DIR`, default `<dataDir>/controlplane`), unless it uses PostgreSQL
 * (`DATABASE_URL` in `env`, the daemon's whole configuration) or a cluster is already there (a
 * restart keeps its database).
 */
export async function seedControlPlane(dataDir: string, env: Record<string, string | undefined> = {}): Promise<void> {
  if (env.DATABASE_URL || process.env[TEMPLATE_ENV] === "off") return;
  const dir = env.CONTROLPLANE_DATA_DIR ?? path.join(dataDir, "controlplane");
  const pgdata = path.join(dir, "pgdata");
  if (fs.existsSync(pgdata)) return;
  // Directories the daemon would create are created owner-only, as the daemon makes its data
  // directory (tests check the data directory's mode).
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.cpSync(await pgliteTemplate(), pgdata, { recursive: true });
}
