/**
 * Base rail adapter configuration: parsed from the environment with zod, every error names the
 * variable, addresses come out EIP-55, the hot-wallet key is read from a file and never echoed.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { getAddress } from "viem";
import { BaseRailConfigError, baseRailConfigDocs, loadBaseRailConfig, loadHotWalletKey } from "../../src/rails/base/config.js";

const TOKEN = "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"; // all lower case: no checksum to check
const DEPOSIT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "base-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const env = (over: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => ({
  BASE_RPC_URL: "http://127.0.0.1:8545",
  BASE_CHAIN_ID: "8453",
  BASE_USDC_ADDRESS: TOKEN,
  BASE_HOT_WALLET_KEY_FILE: "/run/secrets/base-hot-wallet",
  BASE_DEPOSIT_ADDRESS: DEPOSIT,
  ...over,
});

function issuesOf(fn: () => unknown): { variable: string; message: string }[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof BaseRailConfigError) return e.issues;
    throw e;
  }
  throw new Error("expected BaseRailConfigError");
}

describe("Base rail configuration", () => {
  test("defaults, EIP-55 checksummed addresses", () => {
    const c = loadBaseRailConfig(env());
    expect(c).toEqual({
      rpc_url: "http://127.0.0.1:8545",
      chain_id: 8453,
      token_address: getAddress(TOKEN),
      hot_wallet_key_file: "/run/secrets/base-hot-wallet",
      deposit_address: DEPOSIT,
      finality_depth: 12,
      poll_interval_ms: 2000,
      log_range_max_blocks: 2000,
      scan_from_block: null,
    });
    expect(loadBaseRailConfig(env({ BASE_SCAN_FROM_BLOCK: "123456" })).scan_from_block).toBe(123_456n);
    expect(() => loadBaseRailConfig(env({ BASE_SCAN_FROM_BLOCK: "-1" }))).toThrow(/BASE_SCAN_FROM_BLOCK: expected a block number/);
    expect(c.token_address).toBe("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913");
  });

  test("every missing required variable is named; empty counts as unset", () => {
    const issues = issuesOf(() => loadBaseRailConfig({ BASE_RPC_URL: "  " }));
    expect(issues).toEqual(
      ["BASE_RPC_URL", "BASE_CHAIN_ID", "BASE_USDC_ADDRESS", "BASE_HOT_WALLET_KEY_FILE", "BASE_DEPOSIT_ADDRESS"].map((variable) => ({ variable, message: "required" })),
    );
  });

  test("a mixed-case address with a broken checksum, a bad URL and out-of-range numbers are refused by name", () => {
    const badChecksum = DEPOSIT.replace("C51812dc", "c51812dc");
    const issues = issuesOf(() =>
      loadBaseRailConfig(env({ BASE_DEPOSIT_ADDRESS: badChecksum, BASE_RPC_URL: "ws://node", BASE_FINALITY_DEPTH: "0", BASE_CHAIN_ID: "-1", BASE_POLL_INTERVAL_MS: "1.5" })),
    );
    const byVar = Object.fromEntries(issues.map((i) => [i.variable, i.message]));
    expect(byVar.BASE_DEPOSIT_ADDRESS).toMatch(/EIP-55 checksum/);
    expect(byVar.BASE_RPC_URL).toMatch(/http\(s\) URL/);
    expect(byVar.BASE_FINALITY_DEPTH).toMatch(/must be >= 1/);
    expect(byVar.BASE_CHAIN_ID).toMatch(/positive integer/);
    expect(byVar.BASE_POLL_INTERVAL_MS).toMatch(/positive integer/);
  });

  test("the hot-wallet key is read from its file; a bad file is refused without echoing its content", async () => {
    const good = path.join(dir, "good.key");
    await writeFile(good, `  0x${"AB".repeat(32)}\n`);
    expect(loadHotWalletKey(good)).toBe(`0x${"ab".repeat(32)}`);
    const bad = path.join(dir, "bad.key");
    await writeFile(bad, "secret-words do not belong here");
    const e1 = issuesOf(() => loadHotWalletKey(bad));
    expect(e1[0]?.variable).toBe("BASE_HOT_WALLET_KEY_FILE");
    expect(e1[0]?.message).toMatch(/0x followed by 64 hex digits/);
    expect(e1[0]?.message).not.toContain("secret-words");
    expect(issuesOf(() => loadHotWalletKey(path.join(dir, "missing.key")))[0]?.message).toMatch(/cannot read .*ENOENT/);
  });

  test("every variable is documented in .env.example", async () => {
    const example = await readFile(path.resolve(".env.example"), "utf8");
    for (const name of Object.keys(baseRailConfigDocs)) {
      expect(example, name).toMatch(new RegExp(`^#?\\s*${name}=`, "m"));
    }
  });
});
