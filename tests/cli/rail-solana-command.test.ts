/**
 * `masques-ledger rail solana` start-up (issue 14): `--help` prints every Solana variable's
 * documentation (and .env.example has each); a missing or bad configuration exits 2 naming each
 * variable and the rule, and the keypair's bytes never appear in any output.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../support/daemon.js";
import { solanaRailConfigDocs } from "../../src/rails/solana/config.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "rail-sol-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("masques-ledger rail solana", () => {
  it("--help documents every Solana variable, and .env.example lists each", async () => {
    const r = await runCli(["rail", "solana", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: masques-ledger rail solana");
    const example = await readFile(path.resolve(".env.example"), "utf8");
    for (const name of Object.keys(solanaRailConfigDocs)) {
      expect(r.stdout).toContain(name);
      expect(example, name).toMatch(new RegExp(`^# ${name}=`, "m"));
    }
  }, 60_000);

  it("a missing or bad configuration exits 2 naming each variable, never echoing the keypair", async () => {
    const missing = await runCli(["rail", "solana"], { RAIL_TOKEN_FILE: path.join(dir, "t.jwt"), RAIL_DATA_DIR: dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/SOLANA_RPC_URL: required/);
    const keyFile = path.join(dir, "hot.json");
    const bytes = Array.from({ length: 63 }, (_v, i) => 200 - i);
    await writeFile(keyFile, JSON.stringify(bytes));
    const bad = await runCli(["rail", "solana"], {
      RAIL_TOKEN_FILE: path.join(dir, "t.jwt"),
      RAIL_DATA_DIR: dir,
      SOLANA_RPC_URL: "http://127.0.0.1:1",
      SOLANA_CHAIN_ID: "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
      SOLANA_USDC_MINT: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
      SOLANA_DEPOSIT_OWNER: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
      SOLANA_HOT_WALLET_KEYPAIR_FILE: keyFile,
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/SOLANA_HOT_WALLET_KEYPAIR_FILE: .*64 byte values/);
    expect(bad.stdout + bad.stderr).not.toContain(bytes.slice(0, 8).join(","));
    const noChain = await runCli(["rail", "solana"], {
      RAIL_TOKEN_FILE: path.join(dir, "t.jwt"),
      RAIL_DATA_DIR: dir,
      SOLANA_RPC_URL: "http://127.0.0.1:1",
      SOLANA_USDC_MINT: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
      SOLANA_DEPOSIT_OWNER: "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
      SOLANA_HOT_WALLET_KEYPAIR_FILE: keyFile,
    });
    expect(noChain.code).toBe(2);
    expect(noChain.stderr).toMatch(/SOLANA_CHAIN_ID: required/);
  }, 120_000);
});
