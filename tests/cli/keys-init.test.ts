/**
 * `masques-ledger keys init` (docker-compose's `keys` one-shot; `token` never creates keys since
 * issue 12): creates the daemon's key pair once with private permissions, a second run changes
 * nothing, a half pair is never completed or replaced, and a token minted afterwards with
 * `masques-ledger token` is accepted by a daemon trusting the printed public JWKS (as in compose).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { runCli, startDaemon, type Daemon } from "../support/daemon.js";
import { runInProcess } from "./helpers.js";

let root: string;
let d: Daemon | undefined;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "masques-keys-init-"));
});

afterAll(async () => {
  await d?.stop();
  await rm(root, { recursive: true, force: true });
});

interface Snapshot {
  files: string[];
  contents: Record<string, string>;
  mtimes: Record<string, number>;
}

async function snapshot(dir: string): Promise<Snapshot> {
  const files = (await readdir(dir)).sort();
  const contents: Record<string, string> = {};
  const mtimes: Record<string, number> = {};
  for (const f of files) {
    contents[f] = await readFile(path.join(dir, f), "utf8");
    mtimes[f] = (await stat(path.join(dir, f))).mtimeMs;
  }
  return { files, contents, mtimes };
}

describe("masques-ledger keys init", () => {
  it("creates the key pair once (0700 / 0600), a second run changes nothing, and the daemon accepts a token minted afterwards", async () => {
    const dataDir = path.join(root, "data");
    const keyDir = path.join(dataDir, "keys");
    const publicJwks = path.join(keyDir, "dev-public.jwks.json");

    const first = await runCli(["keys", "init"], { MASQUES_DATA_DIR: dataDir });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`created a key pair in ${keyDir}`);
    expect(first.stdout).toContain(`public JWKS: ${publicJwks}`);
    expect((await stat(keyDir)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(keyDir, "dev-private.jwk.json"))).mode & 0o777).toBe(0o600);
    const jwks = JSON.parse(await readFile(publicJwks, "utf8")) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).not.toHaveProperty("d");
    const before = await snapshot(keyDir);
    expect(before.files).toEqual(["dev-private.jwk.json", "dev-public.jwks.json"]);

    const second = await runCli(["keys", "init", "--data-dir", dataDir], {});
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain("already present");
    expect(second.stdout).toContain(`public JWKS: ${publicJwks}`);
    expect(await snapshot(keyDir)).toEqual(before);

    // As in docker-compose.yml: the daemon trusts the public JWKS file; tokens come from `token`.
    const minted = await runCli(["token", "--kind", "admin", "--id", "ops", "--data-dir", dataDir], { MASQUES_JWT_PUBLIC_KEYS_FILE: publicJwks });
    expect(minted.code, minted.stderr).toBe(0);
    d = await startDaemon({ dataDir, env: { MASQUES_JWT_PUBLIC_KEYS_FILE: publicJwks } });
    const endpoint = `http://${d.grpcAddr}`;
    const dep = await runInProcess(["deposit", "keys-agent", "3", "--key", "keys-dep-1", "--json"], { MASQUES_ENDPOINT: endpoint, MASQUES_TOKEN: minted.stdout.trim() });
    expect(dep.code, dep.stderr).toBe(0);
    const bal = await runInProcess(["balance", "--agent", "keys-agent", "--json"], { MASQUES_ENDPOINT: endpoint, MASQUES_TOKEN: minted.stdout.trim() });
    expect(bal.code, bal.stderr).toBe(0);
    expect(bal.json).toMatchObject({ owner: "keys-agent", account: { available: { micro: "3000000" } } });
    // The daemon used the existing pair: nothing in the key directory changed.
    expect(await snapshot(keyDir)).toEqual(before);
  });

  it("refuses to complete or replace half a key pair, and changes nothing", async () => {
    const dataDir = path.join(root, "half");
    const keyDir = path.join(dataDir, "keys");
    await mkdir(keyDir, { recursive: true });
    await writeFile(path.join(keyDir, "dev-private.jwk.json"), '{"kty":"OKP"}\n', { mode: 0o600 });
    const before = await snapshot(keyDir);
    const r = await runCli(["keys", "init", "--data-dir", dataDir], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("only part of a key pair");
    expect(r.stderr).toContain("dev-private.jwk.json");
    expect(await snapshot(keyDir)).toEqual(before);
  });

  it("names the subcommand it expects", async () => {
    const r = await runCli(["keys"], { MASQUES_DATA_DIR: path.join(root, "none") });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("`init`");
    expect(await readdir(root)).not.toContain("none");
  });
});
