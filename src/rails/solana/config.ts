/**
 * Configuration of the Solana (USDC, SPL Token) rail adapter: ONE zod schema over the
 * environment, read by `masques-ledger rail solana` (not by `serve`). Same conventions as
 * src/rails/base/config.ts: empty strings count as unset, every error names the variable, each
 * variable has a one-line doc that also appears in .env.example. Addresses are base58 32-byte
 * public keys (checked with @solana/kit's `isAddress`). The hot-wallet keypair is read from a
 * FILE (a mounted secret, the Solana CLI's JSON array of 64 bytes), never from the environment,
 * and is never logged.
 */
import { readFileSync } from "node:fs";
import { isAddress, type Address, type Commitment } from "@solana/kit";
import { z } from "zod";

/** Documentation of one variable (for `rail solana --help` and .env.example). */
export interface SolanaRailVarDoc {
  doc: string;
  /** Default shown in help ("" = required or unset). */
  default: string;
}

const address = z.string().transform((text, ctx): Address => {
  if (!isAddress(text)) {
    ctx.addIssue({ code: "custom", message: `expected a base58 32-byte Solana address, got "${text}"` });
    return z.NEVER;
  }
  return text;
});

const positiveInt = (what: string, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `expected a positive integer (${what})`)
    .transform(Number)
    .pipe(z.number().int().min(1, `must be >= 1 (${what})`).max(max, `must be <= ${max} (${what})`));

/** Commitments a payout or deposit may require: `processed` can be rolled back and is refused. */
const commitment = z.enum(["confirmed", "finalized"], { message: 'expected "confirmed" or "finalized" ("processed" can be rolled back)' });

function v<T extends z.ZodType>(schema: T, doc: string, def = ""): { schema: T; doc: SolanaRailVarDoc } {
  return { schema, doc: { doc, default: def } };
}

const vars = {
  SOLANA_RPC_URL: v(
    z.string().url("expected an http(s) URL").refine((u) => /^https?:\/\//.test(u), "expected an http(s) URL"),
    "JSON-RPC endpoint of a Solana node (http/https). Required for `masques-ledger rail solana`.",
  ),
  SOLANA_CHAIN_ID: v(
    z.string().regex(/^solana:[1-9A-HJ-NP-Za-km-z]{32}$/, 'expected a CAIP-2 Solana chain id "solana:<first 32 base58 characters of the genesis hash>"'),
    "CAIP-2 chain id of the cluster (mainnet solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp); must equal the daemon's SETTLEMENT_SOLANA_CHAIN_ID. Deposits are reported under it. Required by `masques-ledger rail solana` (not by `reconcile --rails`).",
  ),
  SOLANA_USDC_MINT: v(
    address,
    "USDC mint (SPL Token, 6 decimals; start-up checks the mint's decimals = 6). Only transfers of this mint are deposits. Required.",
  ),
  SOLANA_HOT_WALLET_KEYPAIR_FILE: v(
    z.string().min(1),
    "Path of the payout hot wallet's keypair file (Solana CLI format: JSON array of 64 bytes). It also pays fees and ATA rent. Keep it out of git, readable only by the adapter. Required.",
  ),
  SOLANA_DEPOSIT_OWNER: v(
    address,
    "Owner (wallet address) of the deposit token account agents send USDC to. Required.",
  ),
  SOLANA_DEPOSIT_TOKEN_ACCOUNT: v(
    address,
    "The USDC token account deposits must arrive at; default: the deposit owner's associated token account. Start-up checks its mint and owner.",
  ),
  SOLANA_PAYOUT_COMMITMENT: v(
    commitment.default("finalized"),
    "Commitment a payout's transaction must reach before the payout is posted (confirmed | finalized).",
    "finalized",
  ),
  SOLANA_DEPOSIT_COMMITMENT: v(
    commitment.default("finalized"),
    "Commitment a deposit's transaction must reach before it is credited (confirmed | finalized).",
    "finalized",
  ),
  SOLANA_POLL_INTERVAL_MS: v(
    positiveInt("milliseconds", 3_600_000).default(2_000),
    "How often the adapter polls the chain for deposits and payout fates (ms).",
    "2000",
  ),
} as const;

type Vars = typeof vars;

const schema = z.object(
  Object.fromEntries(Object.entries(vars).map(([k, e]) => [k, e.schema])) as {
    [K in keyof Vars]: Vars[K]["schema"];
  },
);

/** Per-variable documentation, in declaration order. */
export const solanaRailConfigDocs: Readonly<Record<string, SolanaRailVarDoc>> = Object.fromEntries(
  Object.entries(vars).map(([k, e]) => [k, e.doc]),
);

/** A commitment a payout or deposit may be required to reach. */
export type RequiredCommitment = Extract<Commitment, "confirmed" | "finalized">;

/** Parsed rail configuration. Money-free; the keypair is loaded separately (loadHotWalletKeypair). */
export interface SolanaRailConfig {
  readonly rpc_url: string;
  /** CAIP-2 `solana:<genesis prefix>`; null when unset (only `rail solana` requires it). */
  readonly chain_id: string | null;
  readonly usdc_mint: Address;
  readonly hot_wallet_keypair_file: string;
  readonly deposit_owner: Address;
  /** null = the deposit owner's associated token account (resolved at connect time). */
  readonly deposit_token_account: Address | null;
  readonly payout_commitment: RequiredCommitment;
  readonly deposit_commitment: RequiredCommitment;
  readonly poll_interval_ms: number;
}

export class SolanaRailConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super("invalid Solana rail configuration:\n" + issues.map((i) => `  ${i.variable}: ${i.message}`).join("\n"));
    this.name = "SolanaRailConfigError";
  }
}

const OPTIONAL = new Set(["SOLANA_DEPOSIT_TOKEN_ACCOUNT", "SOLANA_CHAIN_ID"]);

/** Parse the environment. Throws SolanaRailConfigError naming every bad or missing variable. */
export function loadSolanaRailConfig(env: NodeJS.ProcessEnv = process.env): SolanaRailConfig {
  const input: Record<string, string> = {};
  for (const k of Object.keys(vars)) {
    const value = env[k];
    if (value !== undefined && value.trim() !== "") input[k] = value.trim();
  }
  const parsed = schema.partial({ SOLANA_DEPOSIT_TOKEN_ACCOUNT: true, SOLANA_CHAIN_ID: true }).safeParse(input);
  if (!parsed.success) {
    throw new SolanaRailConfigError(
      parsed.error.issues.map((i) => {
        const variable = String(i.path[0] ?? "(environment)");
        return { variable, message: i.path.length > 0 && input[variable] === undefined && !OPTIONAL.has(variable) ? "required" : i.message };
      }),
    );
  }
  const c = parsed.data;
  return {
    rpc_url: c.SOLANA_RPC_URL,
    chain_id: c.SOLANA_CHAIN_ID ?? null,
    usdc_mint: c.SOLANA_USDC_MINT,
    hot_wallet_keypair_file: c.SOLANA_HOT_WALLET_KEYPAIR_FILE,
    deposit_owner: c.SOLANA_DEPOSIT_OWNER,
    deposit_token_account: c.SOLANA_DEPOSIT_TOKEN_ACCOUNT ?? null,
    payout_commitment: c.SOLANA_PAYOUT_COMMITMENT,
    deposit_commitment: c.SOLANA_DEPOSIT_COMMITMENT,
    poll_interval_ms: c.SOLANA_POLL_INTERVAL_MS,
  };
}

/**
 * Read the hot wallet's keypair from `file`: a JSON array of 64 integers 0..255 (32-byte secret
 * key then 32-byte public key, the Solana CLI's format). Throws SolanaRailConfigError naming
 * SOLANA_HOT_WALLET_KEYPAIR_FILE if the file is unreadable or malformed; the message never
 * contains the file's content. Whether the two halves match is checked when the signer is made.
 */
export function loadHotWalletKeypair(file: string): Uint8Array {
  const fail = (message: string) => new SolanaRailConfigError([{ variable: "SOLANA_HOT_WALLET_KEYPAIR_FILE", message }]);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw fail(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? "unreadable"})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw fail(`${file} must hold a JSON array of 64 byte values (Solana CLI keypair format)`);
  }
  if (!Array.isArray(value) || value.length !== 64 || !value.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    throw fail(`${file} must hold a JSON array of 64 byte values (Solana CLI keypair format)`);
  }
  return Uint8Array.from(value as number[]);
}
