/**
 * `masques-ledger rail base` start-up (issue 13): `--help` prints every variable's documentation;
 * a missing or bad configuration exits 2 naming each variable and the rule, and the hot-wallet key
 * never appears in any output; an unknown rail is a usage error.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/daemon.js";
import { baseRailConfigDocs } from "../../src/rails/base/config.js";
import { adapterConfigDocs } from "../../src/rails/adapter/config.js";

let dir: string;
const KEY = `0x${"5a".repeat(32)}`;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "rail-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("masques-ledger rail", () => {
  it("--help documents every adapter and Base variable", async () => {
    const r = await runCli(["rail", "base", "--help"]);
    expect(r.code).toBe(0);
    for (const name of [...Object.keys(adapterConfigDocs), ...Object.keys(baseRailConfigDocs)]) expect(r.stdout).toContain(name);
    expect(r.stdout).toContain("RAIL_FAULT_KILL_AT");
    const example = await readFile(path.resolve(".env.example"), "utf8");
    for (const name of [...Object.keys(adapterConfigDocs), "RAIL_FAULT_KILL_AT"]) expect(example, name).toMatch(new RegExp(`^# ${name}=`, "m"));
  }, 60_000);

  it("a missing or bad configuration exits 2 naming each variable, never echoing the key", async () => {
    const keyFile = path.join(dir, "hot.key");
    await writeFile(keyFile, KEY);
    const missing = await runCli(["rail", "base"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/RAIL_TOKEN_FILE: required/);
    expect(missing.stderr).toMatch(/RAIL_DATA_DIR: required/);
    const bad = await runCli(["rail", "base"], {
      RAIL_TOKEN_FILE: path.join(dir, "absent.jwt"),
      RAIL_DATA_DIR: dir,
      BASE_RPC_URL: "http://127.0.0.1:1",
      BASE_CHAIN_ID: "31337",
      BASE_USDC_ADDRESS: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
      BASE_DEPOSIT_ADDRESS: "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
      BASE_HOT_WALLET_KEY_FILE: keyFile,
      RAIL_FAULT_KILL_AT: "",
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/RAIL_TOKEN_FILE: cannot read .*absent\.jwt \(ENOENT\)/);
    expect(bad.stdout + bad.stderr).not.toContain(KEY.slice(2));
  }, 60_000);

  it("an unknown rail is a usage error", async () => {
    const r = await runCli(["rail", "dogecoin"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/expected exactly one rail name: base/);
  }, 60_000);
});
