/**
 * Solana rail adapter configuration: parsed from the environment with zod, every error names the
 * variable, `processed` is refused as a required commitment, the hot-wallet keypair is read from
 * a file (Solana CLI JSON format) and never echoed.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SolanaRailConfigError, loadHotWalletKeypair, loadSolanaRailConfig, solanaRailConfigDocs } from "../../src/rails/solana/config.js";

const MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"; // mainnet USDC
const OWNER = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM";
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "solana-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const env = (over: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => ({
  SOLANA_RPC_URL: "http://127.0.0.1:8899",
  SOLANA_CHAIN_ID: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
  SOLANA_USDC_MINT: MINT,
  SOLANA_HOT_WALLET_KEYPAIR_FILE: "/run/secrets/solana-hot-wallet.json",
  SOLANA_DEPOSIT_OWNER: OWNER,
  ...over,
});

function issuesOf(fn: () => unknown): { variable: string; message: string }[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof SolanaRailConfigError) return e.issues;
    throw e;
  }
  throw new Error("expected SolanaRailConfigError");
}

describe("Solana rail configuration", () => {
  test("defaults: finalized for payouts and deposits, deposit account = the owner's ATA (null)", () => {
    expect(loadSolanaRailConfig(env())).toEqual({
      rpc_url: "http://127.0.0.1:8899",
      chain_id: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
      usdc_mint: MINT,
      hot_wallet_keypair_file: "/run/secrets/solana-hot-wallet.json",
      deposit_owner: OWNER,
      deposit_token_account: null,
      payout_commitment: "finalized",
      deposit_commitment: "finalized",
      poll_interval_ms: 2000,
    });
  });

  test("every missing required variable is named; the optional deposit account is not", () => {
    const issues = issuesOf(() => loadSolanaRailConfig({ SOLANA_RPC_URL: " " }));
    expect(issues.map((i) => i.variable).sort()).toEqual(["SOLANA_DEPOSIT_OWNER", "SOLANA_HOT_WALLET_KEYPAIR_FILE", "SOLANA_RPC_URL", "SOLANA_USDC_MINT"]);
    expect(issues.every((i) => i.message === "required")).toBe(true);
  });

  test("bad values name the variable and the rule", () => {
    expect(issuesOf(() => loadSolanaRailConfig(env({ SOLANA_USDC_MINT: "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913" })))).toEqual([
      { variable: "SOLANA_USDC_MINT", message: 'expected a base58 32-byte Solana address, got "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"' },
    ]);
    expect(issuesOf(() => loadSolanaRailConfig(env({ SOLANA_DEPOSIT_COMMITMENT: "processed" })))[0]).toMatchObject({
      variable: "SOLANA_DEPOSIT_COMMITMENT",
      message: expect.stringContaining('"processed" can be rolled back'),
    });
    expect(issuesOf(() => loadSolanaRailConfig(env({ SOLANA_POLL_INTERVAL_MS: "0" })))[0]?.variable).toBe("SOLANA_POLL_INTERVAL_MS");
    expect(issuesOf(() => loadSolanaRailConfig(env({ SOLANA_RPC_URL: "ws://x" })))[0]?.variable).toBe("SOLANA_RPC_URL");
    expect(loadSolanaRailConfig(env({ SOLANA_PAYOUT_COMMITMENT: "confirmed", SOLANA_DEPOSIT_TOKEN_ACCOUNT: OWNER }))).toMatchObject({
      payout_commitment: "confirmed",
      deposit_token_account: OWNER,
    });
  });

  test("the keypair file: 64 bytes in JSON; malformed or missing files are refused without echoing content", async () => {
    const good = path.join(dir, "good.json");
    const bytes = Array.from({ length: 64 }, (_, i) => i);
    await writeFile(good, JSON.stringify(bytes));
    expect([...loadHotWalletKeypair(good)]).toEqual(bytes);
    const bad = path.join(dir, "bad.json");
    await writeFile(bad, JSON.stringify([...bytes.slice(0, 63), 256]));
    const e = issuesOf(() => loadHotWalletKeypair(bad));
    expect(e[0]?.variable).toBe("SOLANA_HOT_WALLET_KEYPAIR_FILE");
    expect(e[0]?.message).not.toContain("256");
    expect(issuesOf(() => loadHotWalletKeypair(path.join(dir, "absent.json")))[0]?.message).toContain("ENOENT");
  });

  test("every variable is documented", () => {
    for (const [k, d] of Object.entries(solanaRailConfigDocs)) {
      expect(k).toMatch(/^SOLANA_/);
      expect(d.doc.length).toBeGreaterThan(20);
    }
  });
});
