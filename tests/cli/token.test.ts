/**
 * Issue 12: `masques-ledger token` finds the daemon's keys the way the daemon does (or is told
 * where), never creates a key pair of its own, refuses to mint with keys the daemon does not use,
 * and a token signed by another key is rejected with a message that says how to fix it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { exportSPKI, generateKeyPair } from "jose";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { DEFAULT_SCOPES, PRINCIPAL_KINDS, loadOrCreateDevKeys, mintToken } from "../../src/server/auth.js";
import { runInProcess } from "./helpers.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DAEMON_BIN = path.join(ROOT, "bin/masques-ledger.js");

let d: Daemon;
let elsewhere: string;

/** `masques-ledger token ...` from another directory, with only the given environment. */
function token(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DAEMON_BIN, "token", ...args], { cwd, env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  d = await startDaemon();
  elsewhere = await mkdtemp(path.join(tmpdir(), "masques-token-cwd-"));
});

afterAll(async () => {
  await d?.stop();
  if (elsewhere) await rm(elsewhere, { recursive: true, force: true });
});

describe("masques-ledger token", () => {
  it("--help lists the default scopes of every principal kind, the collector's included (issue 18)", async () => {
    const r = await token(["--help"], {}, elsewhere);
    expect(r.code).toBe(0);
    for (const kind of PRINCIPAL_KINDS) {
      const scopes = DEFAULT_SCOPES[kind];
      const line = r.stdout.split("\n").find((l) => l.trim().startsWith(`${kind} `));
      expect(line, `a default-scopes line for ${kind}`).toBeDefined();
      expect(line!.trim().slice(kind.length).trim()).toMatch(scopes.length > 0 ? new RegExp(`^${scopes.join(",")}$`) : /^\(none/);
    }
    expect(r.stdout).toMatch(/collector\s+\(none: exports OTLP .*never billed\)/);
  });

  it("run in another directory, refuses instead of creating a key pair the daemon does not use", async () => {
    const r = await token(["--kind", "agent", "--id", "alice"], {}, elsewhere);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`no dev key pair in ${path.join(elsewhere, "data")}/keys`);
    expect(r.stderr).toContain("--data-dir");
    expect(r.stderr).toContain("MASQUES_DATA_DIR");
    // Nothing was created in the directory it ran in.
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it("finds the daemon's keys through --data-dir or MASQUES_DATA_DIR, and the daemon accepts the token", async () => {
    const viaFlag = await token(["--kind", "admin", "--id", "ops", "--data-dir", d.dataDir], {}, elsewhere);
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    const viaEnv = await token(["--kind", "agent", "--id", "agent-tok"], { MASQUES_DATA_DIR: d.dataDir }, elsewhere);
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    const endpoint = `http://${d.grpcAddr}`;
    const dep = await runInProcess(["deposit", "agent-tok", "2", "--key", "tok-1"], { MASQUES_ENDPOINT: endpoint, MASQUES_TOKEN: viaFlag.stdout.trim() });
    expect(dep.code, dep.stderr).toBe(0);
    const bal = await runInProcess(["balance", "--json"], { MASQUES_ENDPOINT: endpoint, MASQUES_TOKEN: viaEnv.stdout.trim() });
    expect(bal.code, bal.stderr).toBe(0);
    expect(bal.json).toMatchObject({ owner: "agent-tok", account: { available: { micro: "2000000" } } });
  });

  it("refuses when the daemon's configuration trusts other keys (MASQUES_JWT_PUBLIC_KEYS)", async () => {
    const { publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const pem = await exportSPKI(publicKey);
    const r = await token(["--kind", "agent", "--id", "alice", "--data-dir", d.dataDir], { MASQUES_JWT_PUBLIC_KEYS: pem }, elsewhere);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("the daemon would reject this token");
    expect(r.stderr).toContain("MASQUES_JWT_PUBLIC_KEYS");
  });

  it("a token signed by another key pair is rejected with how to fix it", async () => {
    const otherDir = await mkdtemp(path.join(tmpdir(), "masques-token-other-"));
    try {
      const other = await loadOrCreateDevKeys(otherDir);
      const foreign = await mintToken(other.privateJwk, { kind: "agent", id: "alice", scopes: ["ledger:read"], ttlS: 600, issuer: "masques-ledger", audience: "masques-ledger" });
      const r = await runInProcess(["balance"], { MASQUES_ENDPOINT: `http://${d.grpcAddr}`, MASQUES_TOKEN: foreign });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("signed by an unknown key");
      expect(r.stderr).toContain("masques-ledger token");
      expect(r.stderr).toContain("--data-dir");
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  });
});
