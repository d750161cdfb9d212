/**
 * Ledger files are readable by the daemon's user only, whatever the umask (issue 12: under umask
 * 022 the log was created 0644, so any local user could read every balance).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AccountFlags } from "tigerbeetle-node";
import { createEmbeddedClient } from "../../../src/ledger/embedded/index.js";
import { newAccount } from "../../../src/domain/records.js";

let root: string;
let umask: number;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "perm-test-"));
  umask = process.umask(0o022);
});
afterEach(() => {
  process.umask(umask);
  fs.rmSync(root, { recursive: true, force: true });
});

const mode = (p: string): string => (fs.statSync(p).mode & 0o777).toString(8);

describe("ledger file permissions", () => {
  it("creates directories 0700 and the log, snapshots and lock 0600 under umask 022", async () => {
    const dir = path.join(root, "data", "ledger");
    const c = createEmbeddedClient({ dataDir: dir, log: { warn: () => {}, error: () => {} } });
    await c.createAccounts([newAccount({ id: 1n, ledger: 1, code: 1, flags: AccountFlags.history })]);
    await c.snapshot();
    expect(mode(dir)).toBe("700");
    expect(mode(path.join(root, "data"))).toBe("700");
    const files = fs.readdirSync(dir);
    expect(files.some((f) => f.endsWith(".wal"))).toBe(true);
    expect(files.some((f) => f.endsWith(".snap"))).toBe(true);
    expect(files).toContain("LOCK");
    for (const f of files) expect(`${f} ${mode(path.join(dir, f))}`).toBe(`${f} 600`);
    await c.close();
  });

  it("tightens a world-readable ledger directory and log left by an older version, and says so", async () => {
    const dir = path.join(root, "ledger");
    const c = createEmbeddedClient({ dataDir: dir, log: { warn: () => {}, error: () => {} } });
    await c.createAccounts([newAccount({ id: 1n, ledger: 1, code: 1, flags: AccountFlags.history })]);
    await c.close();
    const seg = path.join(dir, fs.readdirSync(dir).find((f) => f.endsWith(".wal"))!);
    fs.chmodSync(dir, 0o755);
    fs.chmodSync(seg, 0o644);
    const warned: Record<string, unknown>[] = [];
    const r = createEmbeddedClient({ dataDir: dir, log: { warn: (fields) => warned.push(fields), error: () => {} } });
    expect(mode(dir)).toBe("700");
    expect(mode(seg)).toBe("600");
    expect(warned).toEqual([
      expect.objectContaining({ path: dir, mode_was: "755" }),
      expect.objectContaining({ path: seg, mode_was: "644" }),
    ]);
    await r.close();
  });
});
