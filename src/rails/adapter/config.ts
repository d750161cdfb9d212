/**
 * Configuration shared by every rail adapter process (`masques-ledger rail <rail>`): how to reach
 * the daemon, the rail principal's token, the adapter's data directory, and the runner's bounds.
 * One zod schema over the environment; empty strings count as unset; errors name the variable.
 * The token is read from a FILE on every call (rotate it by replacing the file), never from the
 * environment, and never logged.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";

export interface AdapterVarDoc {
  doc: string;
  default: string;
}

const positiveInt = (max: number) =>
  z.string().regex(/^\d+$/, "expected a positive integer").transform(Number).pipe(z.number().int().min(1).max(max));

const vars = {
  RAIL_DAEMON_ENDPOINT: {
    schema: z
      .string()
      .refine((s) => /^https?:\/\/[^/]+\/?$/.test(s), "expected http(s)://host:port of the daemon's gRPC listener")
      .default("http://127.0.0.1:50051"),
    doc: { doc: "The daemon's native gRPC listener (MASQUES_GRPC_ADDR of `serve`) as http(s)://host:port.", default: "http://127.0.0.1:50051" },
  },
  RAIL_TOKEN_FILE: {
    schema: z.string().min(1),
    doc: { doc: "File holding the rail principal's bearer JWT (`masques-ledger token --kind rail --id <rail>`); re-read on every call. Required.", default: "" },
  },
  RAIL_DATA_DIR: {
    schema: z.string().min(1),
    doc: { doc: "Directory of the adapter's own durable state (the deposit-scan cursor). Required.", default: "" },
  },
  RAIL_CLAIM_MAX: {
    schema: positiveInt(100).default(20),
    doc: { doc: "Payouts claimed per ClaimPayouts call (the daemon's bound is 100).", default: "20" },
  },
  RAIL_RESIGN_MAX: {
    schema: z.string().regex(/^\d+$/, "expected an integer").transform(Number).pipe(z.number().int().min(0).max(10)).default(3),
    doc: { doc: "How many times a payout whose recorded transaction can never land is signed anew before it is failed.", default: "3" },
  },
} as const;

type Vars = typeof vars;
const schema = z.object(Object.fromEntries(Object.entries(vars).map(([k, e]) => [k, e.schema])) as { [K in keyof Vars]: Vars[K]["schema"] });

/** Per-variable documentation, in declaration order (for `--help` and .env.example). */
export const adapterConfigDocs: Readonly<Record<string, AdapterVarDoc>> = Object.fromEntries(Object.entries(vars).map(([k, e]) => [k, e.doc]));

export interface AdapterConfig {
  readonly daemon_endpoint: string;
  readonly token_file: string;
  readonly data_dir: string;
  readonly claim_max: number;
  readonly resign_max: number;
}

export class AdapterConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super("invalid rail adapter configuration:\n" + issues.map((i) => `  ${i.variable}: ${i.message}`).join("\n"));
    this.name = "AdapterConfigError";
  }
}

/** Parse the environment. Throws AdapterConfigError naming every bad or missing variable. */
export function loadAdapterConfig(env: NodeJS.ProcessEnv = process.env): AdapterConfig {
  const input: Record<string, string> = {};
  for (const k of Object.keys(vars)) {
    const value = env[k];
    if (value !== undefined && value.trim() !== "") input[k] = value.trim();
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new AdapterConfigError(
      parsed.error.issues.map((i) => ({
        variable: String(i.path[0] ?? "(environment)"),
        message: i.path.length > 0 && input[String(i.path[0])] === undefined ? "required" : i.message,
      })),
    );
  }
  const c = parsed.data;
  return {
    daemon_endpoint: c.RAIL_DAEMON_ENDPOINT.replace(/\/$/, ""),
    token_file: c.RAIL_TOKEN_FILE,
    data_dir: c.RAIL_DATA_DIR,
    claim_max: c.RAIL_CLAIM_MAX,
    resign_max: c.RAIL_RESIGN_MAX,
  };
}

/** Read the bearer token (surrounding whitespace ignored). Throws AdapterConfigError naming RAIL_TOKEN_FILE. */
export function readTokenFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (e) {
    throw new AdapterConfigError([{ variable: "RAIL_TOKEN_FILE", message: `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? "unreadable"})` }]);
  }
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(text)) {
    throw new AdapterConfigError([{ variable: "RAIL_TOKEN_FILE", message: `${file} must hold one JWT (three base64url parts)` }]);
  }
  return text;
}
