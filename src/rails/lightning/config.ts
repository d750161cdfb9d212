/**
 * Configuration of the Lightning rail adapter (`masques-ledger rail lightning`, not `serve`): ONE
 * zod schema over the environment, same conventions as src/rails/base/config.ts (empty strings
 * count as unset, every error names the variable, each variable's one-line doc is also in
 * .env.example). The node is LND, reached through its REST API; the macaroon and the TLS
 * certificate are read from FILES (mounted secrets), never from the environment, and never logged.
 * ADR 0093.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";

/** Bitcoin networks LND runs on, by the name LND's GetInfo reports in `chains[].network`. */
export const LIGHTNING_NETWORKS = ["mainnet", "testnet", "testnet4", "signet", "regtest", "simnet"] as const;
export type LightningNetwork = (typeof LIGHTNING_NETWORKS)[number];

/** Documentation of one variable (for `rail lightning --help` and .env.example). */
export interface LightningRailVarDoc {
  doc: string;
  /** Default shown in help ("" = required or unset). */
  default: string;
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

const restUrl = z.string().transform((text, ctx): string => {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    ctx.addIssue({ code: "custom", message: `expected an https URL, got "${text}"` });
    return z.NEVER;
  }
  // Plain http only on the loopback interface (a local LND or a test stand-in): the macaroon is a bearer secret.
  if (u.protocol !== "https:" && !(u.protocol === "http:" && LOOPBACK_HOSTS.has(u.hostname))) {
    ctx.addIssue({ code: "custom", message: "expected an https URL (plain http is allowed only for 127.0.0.1, localhost or [::1])" });
    return z.NEVER;
  }
  return u.origin;
});

const positiveInt = (what: string, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `expected a positive integer (${what})`)
    .transform(Number)
    .pipe(z.number().int().min(1, `must be >= 1 (${what})`).max(max, `must be <= ${max} (${what})`));

const nonNegativeBigint = (what: string, max: bigint) =>
  z
    .string()
    .regex(/^\d+$/, `expected a non-negative integer (${what})`)
    .transform((s) => BigInt(s))
    .refine((n) => n <= max, `must be <= ${max} (${what})`);

function v<T extends z.ZodType>(schema: T, doc: string, def = ""): { schema: T; doc: LightningRailVarDoc } {
  return { schema, doc: { doc, default: def } };
}

const vars = {
  LND_REST_URL: v(restUrl, "Base URL of LND's REST API (https; plain http only on loopback), e.g. https://<host>:8080. Required."),
  LND_MACAROON_FILE: v(
    z.string().min(1),
    "Path of the LND macaroon file (binary, as LND writes it) sent hex-encoded in Grpc-Metadata-macaroon. Needs invoice + offchain read/write. Required.",
  ),
  LND_TLS_CERT_FILE: v(
    z.string().min(1).optional(),
    "Path of LND's tls.cert (PEM), trusted as the CA of the REST endpoint. Required with an https LND_REST_URL.",
  ),
  LND_NETWORK: v(
    z.enum(LIGHTNING_NETWORKS, { message: `expected one of ${LIGHTNING_NETWORKS.join(", ")}` }),
    "Bitcoin network the adapter expects (mainnet, testnet, testnet4, signet, regtest, simnet); start-up refuses a node on another, and invoices of another network are refused. Required.",
  ),
  LND_MAX_ROUTING_FEE_PPM: v(
    positiveInt("parts per million of the amount", 1_000_000).default(5_000),
    "Routing fee cap per payout, in parts per million of the amount; the fee limit sent to LND is the lower of this and LND_MAX_ROUTING_FEE_MSAT.",
    "5000",
  ),
  LND_MAX_ROUTING_FEE_MSAT: v(
    nonNegativeBigint("msat", 21_000_000n * 100_000_000_000n).default(10_000_000n),
    "Absolute routing fee cap per payout (msat).",
    "10000000",
  ),
  LND_INVOICE_EXPIRY_S: v(
    positiveInt("seconds", 31_536_000).default(900),
    "Expiry of the deposit invoices the adapter creates (s); a deposit quote lives as long as its invoice.",
    "900",
  ),
  LND_MIN_INVOICE_REMAINING_S: v(
    positiveInt("seconds", 86_400).default(60),
    "A payout invoice must stay valid at least this long (s, by the adapter's clock) when it is paid, or it is refused as expiring.",
    "60",
  ),
  LND_PAYMENT_TIMEOUT_S: v(
    positiveInt("seconds", 3_600).default(60),
    "timeout_seconds LND spends looking for a route for one payout before it fails it.",
    "60",
  ),
  LND_POLL_INTERVAL_MS: v(
    positiveInt("milliseconds", 3_600_000).default(2_000),
    "How often the adapter polls LND for invoice and payment state (ms).",
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
export const lightningRailConfigDocs: Readonly<Record<string, LightningRailVarDoc>> = Object.fromEntries(
  Object.entries(vars).map(([k, e]) => [k, e.doc]),
);

/** Parsed rail configuration (no secrets: files are read by loadLndCredentials). */
export interface LightningRailConfig {
  /** Origin of the REST API, no trailing slash. */
  readonly rest_url: string;
  readonly macaroon_file: string;
  /** Undefined only with a loopback http URL. */
  readonly tls_cert_file: string | undefined;
  readonly network: LightningNetwork;
  readonly max_routing_fee_ppm: number;
  readonly max_routing_fee_msat: bigint;
  readonly invoice_expiry_s: number;
  readonly min_invoice_remaining_s: number;
  readonly payment_timeout_s: number;
  readonly poll_interval_ms: number;
}

export class LightningRailConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super("invalid Lightning rail configuration:\n" + issues.map((i) => `  ${i.variable}: ${i.message}`).join("\n"));
    this.name = "LightningRailConfigError";
  }
}

/** Parse the environment. Throws LightningRailConfigError naming every bad or missing variable. */
export function loadLightningRailConfig(env: NodeJS.ProcessEnv = process.env): LightningRailConfig {
  const input: Record<string, string> = {};
  for (const k of Object.keys(vars)) {
    const value = env[k];
    if (value !== undefined && value.trim() !== "") input[k] = value.trim();
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new LightningRailConfigError(
      parsed.error.issues.map((i) => ({
        variable: String(i.path[0] ?? "(environment)"),
        message: i.path.length > 0 && input[String(i.path[0])] === undefined ? "required" : i.message,
      })),
    );
  }
  const c = parsed.data;
  if (c.LND_REST_URL.startsWith("https:") && c.LND_TLS_CERT_FILE === undefined) {
    throw new LightningRailConfigError([{ variable: "LND_TLS_CERT_FILE", message: "required with an https LND_REST_URL" }]);
  }
  return {
    rest_url: c.LND_REST_URL,
    macaroon_file: c.LND_MACAROON_FILE,
    tls_cert_file: c.LND_TLS_CERT_FILE,
    network: c.LND_NETWORK,
    max_routing_fee_ppm: c.LND_MAX_ROUTING_FEE_PPM,
    max_routing_fee_msat: c.LND_MAX_ROUTING_FEE_MSAT,
    invoice_expiry_s: c.LND_INVOICE_EXPIRY_S,
    min_invoice_remaining_s: c.LND_MIN_INVOICE_REMAINING_S,
    payment_timeout_s: c.LND_PAYMENT_TIMEOUT_S,
    poll_interval_ms: c.LND_POLL_INTERVAL_MS,
  };
}

/** Secrets read from the files the configuration names. */
export interface LndCredentials {
  /** The macaroon, hex-encoded as LND's Grpc-Metadata-macaroon header wants it. Never log it. */
  readonly macaroon_hex: string;
  /** PEM of LND's certificate, or undefined with a loopback http URL. */
  readonly tls_cert_pem: string | undefined;
}

/**
 * Read the macaroon (binary file, hex-encoded here) and the TLS certificate. Throws
 * LightningRailConfigError naming the variable; messages never contain the files' content.
 */
export function loadLndCredentials(config: LightningRailConfig): LndCredentials {
  const read = (variable: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "unreadable";
      throw new LightningRailConfigError([{ variable, message: `cannot read ${file} (${code})` }]);
    }
  };
  const macaroon = read("LND_MACAROON_FILE", config.macaroon_file);
  if (macaroon.length === 0 || macaroon.length > 64 * 1024) {
    throw new LightningRailConfigError([{ variable: "LND_MACAROON_FILE", message: `${config.macaroon_file} must hold one macaroon (1 B to 64 KiB)` }]);
  }
  let tls_cert_pem: string | undefined;
  if (config.tls_cert_file !== undefined) {
    tls_cert_pem = read("LND_TLS_CERT_FILE", config.tls_cert_file).toString("utf8");
    if (!tls_cert_pem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new LightningRailConfigError([{ variable: "LND_TLS_CERT_FILE", message: `${config.tls_cert_file} is not a PEM certificate` }]);
    }
  }
  return { macaroon_hex: macaroon.toString("hex"), tls_cert_pem };
}
