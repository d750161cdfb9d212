/**
 * Configuration of the Base (USDC, ERC-20) rail adapter: ONE zod schema over the environment,
 * read by `masques-ledger rail base` (not by `serve`). Same conventions as src/config.ts: empty
 * strings count as unset, every error names the variable, each variable has a one-line doc that
 * also appears in .env.example. Addresses come out EIP-55 checksummed; a mixed-case address
 * whose checksum is wrong is refused (it is likely a typo). The hot-wallet private key is read
 * from a FILE (a mounted secret), never from the environment itself, and is never logged.
 */
import { readFileSync } from "node:fs";
import { getAddress, isAddress, type Address, type Hex } from "viem";
import { z } from "zod";

/** Documentation of one variable (for `rail base --help` and .env.example). */
export interface BaseRailVarDoc {
  doc: string;
  /** Default shown in help ("" = required or unset). */
  default: string;
}

const address = z.string().transform((text, ctx): Address => {
  // isAddress is strict by default: all-lower / all-upper hex, or mixed case with a valid EIP-55 checksum.
  if (!isAddress(text)) {
    ctx.addIssue({
      code: "custom",
      message: `expected a 0x-prefixed 20-byte address (mixed case must be a valid EIP-55 checksum), got "${text}"`,
    });
    return z.NEVER;
  }
  return getAddress(text);
});

const positiveInt = (what: string, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `expected a positive integer (${what})`)
    .transform(Number)
    .pipe(z.number().int().min(1, `must be >= 1 (${what})`).max(max, `must be <= ${max} (${what})`));

function v<T extends z.ZodType>(schema: T, doc: string, def = ""): { schema: T; doc: BaseRailVarDoc } {
  return { schema, doc: { doc, default: def } };
}

const vars = {
  BASE_RPC_URL: v(
    z.string().url("expected an http(s) URL").refine((u) => /^https?:\/\//.test(u), "expected an http(s) URL"),
    "JSON-RPC endpoint of a Base node (http/https). Required for `masques-ledger rail base`.",
  ),
  BASE_CHAIN_ID: v(
    positiveInt("EIP-155 chain id", Number.MAX_SAFE_INTEGER),
    "EIP-155 chain id the adapter expects (Base mainnet 8453, Base Sepolia 84532); start-up refuses an RPC on another chain. Required.",
  ),
  BASE_USDC_ADDRESS: v(
    address,
    "USDC token contract (ERC-20, 6 decimals; start-up checks decimals() = 6). Only Transfer logs of this contract are deposits. Required.",
  ),
  BASE_HOT_WALLET_KEY_FILE: v(
    z.string().min(1),
    "Path of a file holding the payout hot wallet's secp256k1 private key (0x + 64 hex). Keep it out of git and readable only by the adapter. Required.",
  ),
  BASE_DEPOSIT_ADDRESS: v(
    address,
    "Address agents send USDC to; Transfer logs to this address are the deposits the adapter verifies and reports. Required.",
  ),
  BASE_FINALITY_DEPTH: v(
    positiveInt("blocks", 10_000).default(12),
    "Confirmations (the including block counts as 1) before a deposit is credited or a payout is posted.",
    "12",
  ),
  BASE_POLL_INTERVAL_MS: v(
    positiveInt("milliseconds", 3_600_000).default(2_000),
    "How often the adapter polls the chain for new blocks, deposits and payout fates (ms).",
    "2000",
  ),
  BASE_LOG_RANGE_MAX_BLOCKS: v(
    positiveInt("blocks", 100_000).default(2_000),
    "Upper bound on the block range of one eth_getLogs call of the deposit scan (providers cap it).",
    "2000",
  ),
  BASE_SCAN_FROM_BLOCK: v(
    z.string().regex(/^\d+$/, "expected a block number").transform(BigInt).optional(),
    "First block the adapter's deposit scan reads when it has no saved cursor yet (the deposit address's first use). Unset: the head at first start.",
  ),
} as const;

type Vars = typeof vars;

const schema = z.object(
  Object.fromEntries(Object.entries(vars).map(([k, e]) => [k, e.schema])) as {
    [K in keyof Vars]: Vars[K]["schema"];
  },
);

/** Per-variable documentation, in declaration order. */
export const baseRailConfigDocs: Readonly<Record<string, BaseRailVarDoc>> = Object.fromEntries(
  Object.entries(vars).map(([k, e]) => [k, e.doc]),
);

/** Parsed rail configuration. Money-free; the key is loaded separately (loadHotWalletKey). */
export interface BaseRailConfig {
  readonly rpc_url: string;
  readonly chain_id: number;
  /** EIP-55. */
  readonly token_address: Address;
  readonly hot_wallet_key_file: string;
  /** EIP-55. */
  readonly deposit_address: Address;
  /** Confirmations required; the including block is confirmation 1. */
  readonly finality_depth: number;
  readonly poll_interval_ms: number;
  readonly log_range_max_blocks: number;
  /** First block of a fresh deposit scan; null = the head at first start. */
  readonly scan_from_block: bigint | null;
}

export class BaseRailConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super("invalid Base rail configuration:\n" + issues.map((i) => `  ${i.variable}: ${i.message}`).join("\n"));
    this.name = "BaseRailConfigError";
  }
}

/** Parse the environment. Throws BaseRailConfigError naming every bad or missing variable. */
export function loadBaseRailConfig(env: NodeJS.ProcessEnv = process.env): BaseRailConfig {
  const input: Record<string, string> = {};
  for (const k of Object.keys(vars)) {
    const value = env[k];
    if (value !== undefined && value.trim() !== "") input[k] = value.trim();
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new BaseRailConfigError(
      parsed.error.issues.map((i) => ({
        variable: String(i.path[0] ?? "(environment)"),
        message: i.path.length > 0 && input[String(i.path[0])] === undefined ? "required" : i.message,
      })),
    );
  }
  const c = parsed.data;
  return {
    rpc_url: c.BASE_RPC_URL,
    chain_id: c.BASE_CHAIN_ID,
    token_address: c.BASE_USDC_ADDRESS,
    hot_wallet_key_file: c.BASE_HOT_WALLET_KEY_FILE,
    deposit_address: c.BASE_DEPOSIT_ADDRESS,
    finality_depth: c.BASE_FINALITY_DEPTH,
    poll_interval_ms: c.BASE_POLL_INTERVAL_MS,
    log_range_max_blocks: c.BASE_LOG_RANGE_MAX_BLOCKS,
    scan_from_block: c.BASE_SCAN_FROM_BLOCK ?? null,
  };
}

/**
 * Read the hot wallet's private key from `file` (surrounding whitespace ignored). Throws
 * BaseRailConfigError naming BASE_HOT_WALLET_KEY_FILE if the file is unreadable or does not
 * hold exactly 0x + 64 hex digits; the message never contains the file's content.
 */
export function loadHotWalletKey(file: string): Hex {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
    throw new BaseRailConfigError([{ variable: "BASE_HOT_WALLET_KEY_FILE", message: `cannot read ${file} (${code})` }]);
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(text)) {
    throw new BaseRailConfigError([
      { variable: "BASE_HOT_WALLET_KEY_FILE", message: `${file} must hold one private key: 0x followed by 64 hex digits` },
    ]);
  }
  return text.toLowerCase() as Hex;
}
