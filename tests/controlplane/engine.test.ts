/**
 * Engine selection and configuration (src/controlplane/engine.ts, src/config.ts): DATABASE_URL is
 * validated at start-up, never logged with its password, and the embedded PGlite directory admits
 * one process (the lock of the embedded ledger). The PGlite cases use PGlite in every run.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { openDatabase, redactDatabaseUrl } from "../../src/controlplane/engine.js";
import { openControlPlane } from "../../src/controlplane/index.js";

describe("control-plane configuration", () => {
  it("defaults to PGlite under the data directory; DATABASE_URL selects a server", () => {
    const c = loadConfig({ MASQUES_DATA_DIR: "/srv/masques" });
    expect(c.DATABASE_URL).toBeUndefined();
    expect(c.controlplaneDataDir).toBe("/srv/masques/controlplane");
    expect(c.DATABASE_POOL_MAX).toBe(10);
    const s = loadConfig({ DATABASE_URL: "postgres://masques@db:5432/masques", DATABASE_POOL_MAX: "3", CONTROLPLANE_DATA_DIR: "/x/cp" });
    expect(s.DATABASE_URL).toBe("postgres://masques@db:5432/masques");
    expect(s.DATABASE_POOL_MAX).toBe(3);
    expect(s.controlplaneDataDir).toBe("/x/cp");
  });

  it("a bad DATABASE_URL or pool size is refused naming the variable", () => {
    expect(() => loadConfig({ DATABASE_URL: "mysql://db/x" })).toThrow(ConfigError);
    expect(() => loadConfig({ DATABASE_URL: "mysql://db/x" })).toThrow(/DATABASE_URL: expected a PostgreSQL connection URL/);
    expect(() => loadConfig({ DATABASE_POOL_MAX: "0" })).toThrow(/DATABASE_POOL_MAX: /);
    expect(() => loadConfig({ DATABASE_POOL_MAX: "500" })).toThrow(/DATABASE_POOL_MAX: must be <= 100 connections/);
  });

  it("the password never appears in what is logged or thrown", async () => {
    expect(redactDatabaseUrl("postgres://masques:s3cret-pw@127.0.0.1:1/masques")).toBe("postgres://masques:***@127.0.0.1:1/masques");
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const err = await openDatabase({ databaseUrl: "postgres://masques:s3cret-pw@127.0.0.1:1/masques", poolMax: 1, pgliteDir: "/nonexistent" }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/^control-plane database postgres:\/\/masques:\*\*\*@127\.0\.0\.1:1\/masques is not reachable/);
    expect(err?.message).not.toContain("s3cret-pw");
  });
});

describe("embedded PGlite", () => {
  it("admits one process per directory and is free again after close", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "controlplane-lock-"));
    const opts = { poolMax: 1, pgliteDir: path.join(dataDir, "controlplane"), dataDir };
    try {
      const cp = await openControlPlane(opts);
      expect(cp.engine).toBe("pglite");
      await expect(openControlPlane(opts)).rejects.toThrow(/data directory .*controlplane is in use by pid \d+ \(this process\)/);
      await cp.close();
      const again = await openControlPlane(opts);
      expect(again.migrations.applied).toEqual([]);
      await again.close();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
