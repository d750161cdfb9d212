/**
 * Shared plumbing of the client subcommands (don, usage, heartbeat, doff, cancel, balance,
 * sessions, earnings, deposit): flag parsing with `--help` everywhere, one way to build the SDK
 * client, human output by default and `--json` for scripts, and the exit-code contract of
 * src/cli/command.ts — 0 ok, 1 user error, 2 usage error, 3 outage.
 */
import { parseArgs } from "node:util";
import { enumToJson, type DescEnum } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { ExitCode, type CliCommand } from "./command.js";
import { MasquesClient } from "../../clients/sdk/src/client.js";
import { ConfigError } from "../../clients/sdk/src/config.js";
import { MasquesError } from "../../clients/sdk/src/errors.js";
import { formatMicroAsUsd, formatUsd, MoneyParseError, parseUsdInput } from "../../clients/sdk/src/money.js";
import { resolveSessionFilePath, SessionFileError } from "../../clients/sdk/src/session-file.js";
import { AccountKindSchema, TransferKindSchema, type Account, type Transfer } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import {
  BillingMode,
  BillingModeSchema,
  CloseReasonSchema,
  SessionStatus,
  SessionStatusSchema,
  type Session,
} from "../../clients/gen/masques/ledger/v1/session_service_pb.js";

/** Bad flags or arguments: exit 2. */
export class UsageError extends Error {}

/** A user-facing failure raised by the CLI itself (not the daemon): exit 1. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly hint: string,
    readonly code = "user_error",
  ) {
    super(message);
  }
}

type OptionSpec = { type: "string" | "boolean"; short?: string; multiple?: boolean };
export type OptionSpecs = Record<string, OptionSpec>;

/** Flags every client command accepts. */
export const COMMON_OPTIONS = {
  endpoint: { type: "string" },
  transport: { type: "string" },
  token: { type: "string" },
  "timeout-ms": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies OptionSpecs;

export const SESSION_FILE_OPTION = { "session-file": { type: "string" } } as const satisfies OptionSpecs;

export const COMMON_HELP = `Connection (flags override the environment):
  --endpoint URL          daemon URL                      [MASQUES_ENDPOINT, default http://127.0.0.1:50051,
                                                           or http://127.0.0.1:8080 with --transport connect]
  --transport grpc|connect  gRPC (the daemon's gRPC port) or Connect over HTTP/1.1 (its HTTP port)
                                                          [MASQUES_TRANSPORT, default grpc]
  --token JWT             bearer token                    [MASQUES_TOKEN]
  --timeout-ms N          total deadline of each call, retries included
                                                          [MASQUES_TIMEOUT_MS, default 15000]
Output:
  --json                  one JSON object on stdout (errors too: {"ok":false,"error":{...}})
  -h, --help              show this help
Exit codes: 0 ok · 1 user error (bad input, denied, insufficient funds, unknown masque)
            2 usage error (bad flags) · 3 outage (daemon unreachable or failing: retry the same
            command later — retries reuse their idempotency key and never charge twice)`;

export const SESSION_FILE_HELP = `Session file:
  --session-file PATH     the plugin's session file      [MASQUES_SESSION_FILE, else
                          $CLAUDE_PROJECT_DIR/.claude/masque.session.yaml, else ./.claude/masque.session.yaml]`;

/** What a command prints on success. */
export interface CommandOutput {
  /** Lines for people (stdout). */
  human: string[];
  /** The object printed with --json (bigints become decimal strings). */
  json: Record<string, unknown>;
  /** Exit code (default 0). */
  exit?: number;
}

export interface ClientContext {
  positionals: string[];
  /** A string flag, trimmed; undefined when absent. */
  str(name: string): string | undefined;
  bool(name: string): boolean;
  /** A USD amount flag ("5", "$5.25") as micro-USD; usage error (exit 2) if malformed. */
  usd(name: string): bigint | undefined;
  /** A non-negative integer flag; usage error if malformed. */
  uint(name: string): bigint | undefined;
  json: boolean;
  env: Record<string, string | undefined>;
  /** The SDK client configured from flags and environment (created on first use). */
  client(): MasquesClient;
  /** The plugin session file path (for commands that accept --session-file). */
  sessionFilePath(): string;
  /** Print a progress/warning line on stderr (suppressed with --json). */
  note(line: string): void;
}

export interface ClientCommandSpec {
  name: string;
  summary: string;
  /** e.g. "don <masque> [intent...] [options]" */
  usage: string;
  /** Paragraphs after the usage line. */
  description: string;
  /** Command-specific flags. */
  options: OptionSpecs;
  /** Help lines for the command-specific flags. */
  optionHelp: string;
  /** Accepts --session-file. */
  sessionFile?: boolean;
  positionals: { min: number; max: number; names: string };
  examples?: string[];
  run(ctx: ClientContext): Promise<CommandOutput>;
}

/** JSON.stringify that writes bigint as a decimal string. */
export function toJsonText(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));
}

function helpText(spec: ClientCommandSpec): string {
  return [
    `Usage: masques-ledger ${spec.usage}`,
    spec.description.trim(),
    spec.optionHelp.trim() ? `Options:\n${spec.optionHelp.replace(/\s+$/, "")}` : "",
    spec.sessionFile ? SESSION_FILE_HELP : "",
    COMMON_HELP,
    spec.examples?.length ? `Examples:\n${spec.examples.map((e) => `  ${e}`).join("\n")}` : "",
  ]
    .filter((s) => s !== "")
    .join("\n\n")
    .concat("\n");
}

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: Record<string, string | undefined>;
}

const processIo: CliIo = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  env: process.env,
};

let ioOverride: CliIo | undefined;

/**
 * Run client commands against another stdout/stderr/environment (tests drive commands in-process
 * with it; the binary always uses the real process). Returns a function that restores the default.
 */
export function setCliIo(io: CliIo): () => void {
  ioOverride = io;
  return () => {
    ioOverride = undefined;
  };
}

/** Build a CliCommand from a spec. */
export function defineClientCommand(spec: ClientCommandSpec, io?: CliIo): CliCommand {
  const help = helpText(spec);
  return {
    name: spec.name,
    summary: spec.summary,
    help,
    run: (argv) => runClientCommand(spec, help, argv, io ?? ioOverride ?? processIo),
  };
}

async function runClientCommand(spec: ClientCommandSpec, help: string, argv: string[], io: CliIo): Promise<number> {
  const wantsJson = argv.includes("--json");
  const fail = (code: number, err: { error: string; code: string; message: string; hint: string; [k: string]: unknown }) => {
    if (wantsJson) io.stdout(toJsonText({ ok: false, error: err }) + "\n");
    else io.stderr(`✗ ${err.message}\n  ${err.hint}\n`);
    return code;
  };
  const usage = (message: string) =>
    fail(ExitCode.usage, {
      error: "UsageError",
      code: "usage",
      kind: "usage",
      message: `masques-ledger ${spec.name}: ${message}`,
      hint: `Run \`masques-ledger ${spec.name} --help\` for usage.`,
    });

  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...COMMON_OPTIONS, ...(spec.sessionFile ? SESSION_FILE_OPTION : {}), ...spec.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    return usage((e as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | (string | boolean)[] | undefined>;
  if (values["help"]) {
    io.stdout(help);
    return ExitCode.ok;
  }
  const positionals = parsed.positionals;
  if (positionals.length < spec.positionals.min) {
    return usage(`missing ${spec.positionals.names.split(" ").slice(positionals.length, spec.positionals.min).join(" ")}`);
  }
  if (positionals.length > spec.positionals.max) {
    return usage(`unexpected argument ${JSON.stringify(positionals[spec.positionals.max])}`);
  }

  let client: MasquesClient | undefined;
  const str = (name: string): string | undefined => {
    const v = values[name];
    if (typeof v !== "string") return undefined;
    const t = v.trim();
    return t === "" ? undefined : t;
  };
  const ctx: ClientContext = {
    positionals,
    json: wantsJson,
    env: io.env,
    str,
    bool: (name) => values[name] === true,
    usd: (name) => {
      const v = str(name);
      if (v === undefined) return undefined;
      try {
        return parseUsdInput(v);
      } catch (e) {
        throw new UsageError(`--${name}: ${(e as MoneyParseError).message}`);
      }
    },
    uint: (name) => {
      const v = str(name);
      if (v === undefined) return undefined;
      if (!/^\d{1,19}$/.test(v)) throw new UsageError(`--${name}: expected a non-negative whole number, got ${JSON.stringify(v)}`);
      return BigInt(v);
    },
    client: () => {
      if (!client) {
        const timeout = str("timeout-ms");
        if (timeout !== undefined && !/^\d+$/.test(timeout)) throw new UsageError(`--timeout-ms: expected milliseconds, got ${JSON.stringify(timeout)}`);
        const transport = str("transport");
        if (transport !== undefined && transport !== "grpc" && transport !== "connect") throw new UsageError(`--transport: expected grpc or connect, got ${JSON.stringify(transport)}`);
        const endpoint = str("endpoint");
        const token = str("token");
        client = new MasquesClient({
          env: io.env,
          ...(endpoint ? { endpoint } : {}),
          ...(token ? { token } : {}),
          ...(transport ? { transport } : {}),
          ...(timeout ? { timeout_ms: Number(timeout) } : {}),
        });
      }
      return client;
    },
    sessionFilePath: () => resolveSessionFilePath(str("session-file"), io.env),
    note: (line) => {
      if (!wantsJson) io.stderr(`${line}\n`);
    },
  };

  try {
    const out = await spec.run(ctx);
    if (wantsJson) io.stdout(toJsonText({ ok: true, ...out.json }) + "\n");
    else if (out.human.length > 0) io.stdout(out.human.join("\n") + "\n");
    return out.exit ?? ExitCode.ok;
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message);
    if (e instanceof ConfigError) {
      return fail(ExitCode.usage, { error: "ConfigError", code: "config", kind: "usage", message: `Bad configuration: ${e.message}`, hint: "Fix the flag or environment variable named above." });
    }
    if (e instanceof MasquesError) {
      return fail(e.kind === "outage" ? ExitCode.outage : ExitCode.user_error, e.toJSON() as { error: string; code: string; message: string; hint: string });
    }
    if (e instanceof UserError) {
      return fail(ExitCode.user_error, { error: "UserError", code: e.code, kind: "user", message: e.message, hint: e.hint });
    }
    if (e instanceof SessionFileError) {
      return fail(ExitCode.user_error, { error: "SessionFileError", code: "session_file", kind: "user", message: e.message, hint: "The session file only records the active masque; fixing or deleting it is safe." });
    }
    const err = e as Error;
    return fail(ExitCode.outage, {
      error: "InternalError",
      code: "internal",
      kind: "outage",
      message: `Unexpected failure in masques-ledger ${spec.name}: ${err?.message ?? String(e)}`,
      hint: "Retry; if it persists, report it with the command you ran.",
    });
  }
}

// ---- shared renderers ------------------------------------------------------------------------

export function enumName(desc: DescEnum, v: number): string {
  try {
    return String(enumToJson(desc, v));
  } catch {
    return String(v);
  }
}

/** `ACCOUNT_KIND_AGENT_WALLET_PREPAID` -> `agent_wallet_prepaid` */
export function shortEnum(desc: DescEnum, v: number, prefix: string): string {
  return enumName(desc, v).replace(prefix, "").toLowerCase();
}

export function isoTime(t: Timestamp | undefined): string | null {
  return t ? timestampDate(t).toISOString() : null;
}

/** Amount pair for JSON: exact micro string + decimal USD string. */
export function money(micro: bigint): { micro: string; usd: string } {
  return { micro: micro.toString(), usd: formatMicroAsUsd(micro) };
}

export function accountJson(a: Account): Record<string, unknown> {
  const b = a.balance;
  return {
    account_id: a.accountId,
    kind: shortEnum(AccountKindSchema, a.kind, "ACCOUNT_KIND_"),
    available: money(b?.availableMicro ?? 0n),
    posted: money(b?.postedMicro ?? 0n),
    pending_debits: money(b?.debitsPendingMicro ?? 0n),
    pending_credits: money(b?.creditsPendingMicro ?? 0n),
    credits_posted: money(b?.creditsPostedMicro ?? 0n),
    debits_posted: money(b?.debitsPostedMicro ?? 0n),
    credit_limit: money(a.creditLimitMicro),
    closed: a.closed,
    create_time: isoTime(a.createTime),
  };
}

export function transferJson(t: Transfer): Record<string, unknown> {
  return {
    transfer_id: t.transferId,
    kind: shortEnum(TransferKindSchema, t.kind, "TRANSFER_KIND_"),
    amount: money(t.amountMicro),
    debit_account_id: t.debitAccountId,
    credit_account_id: t.creditAccountId,
    reference_id: t.referenceId || null,
    create_time: isoTime(t.createTime),
  };
}

export { formatUsd };

// ---- sessions --------------------------------------------------------------------------------

export function sessionStatusName(s: Session): string {
  return shortEnum(SessionStatusSchema, s.status, "SESSION_STATUS_");
}

export function sessionJson(s: Session): Record<string, unknown> {
  return {
    session_id: s.sessionId,
    masque: s.masqueName,
    masque_index: s.masqueIndex.toString(),
    author: s.author,
    status: sessionStatusName(s),
    close_reason: s.closeReason ? shortEnum(CloseReasonSchema, s.closeReason, "CLOSE_REASON_") : null,
    billing_mode: shortEnum(BillingModeSchema, s.billingMode, "BILLING_MODE_"),
    price_version: s.priceVersion,
    hold: money(s.holdMicro),
    price: money(s.priceMicro),
    charged: money(s.chargedMicro),
    refund: money(s.refundMicro),
    debt: money(s.debtMicro),
    unbilled: money(s.unbilledMicro),
    author_share: money(s.authorShareMicro),
    platform_fee: money(s.platformFeeMicro),
    platform_fee_bps: s.platformFeeBps,
    usage: {
      input_tokens: (s.usage?.inputTokens ?? 0n).toString(),
      output_tokens: (s.usage?.outputTokens ?? 0n).toString(),
      tool_calls: (s.usage?.toolCalls ?? 0n).toString(),
      events: s.usageEvents.toString(),
    },
    billed_duration_ms: s.billedDurationMs.toString(),
    don_time: isoTime(s.donTime),
    deadline_time: isoTime(s.deadlineTime),
    end_time: isoTime(s.endTime),
    last_activity_time: isoTime(s.lastActivityTime),
  };
}

export function usageLine(s: Session): string {
  const u = s.usage;
  const tools = u?.toolCalls ?? 0n;
  return `${u?.inputTokens ?? 0n} input + ${u?.outputTokens ?? 0n} output tokens, ${tools} tool call${tools === 1n ? "" : "s"}, ${formatDuration(s.billedDurationMs)}`;
}

export function formatDuration(ms: bigint): string {
  const total_s = Number(ms / 1000n);
  const h = Math.floor(total_s / 3600);
  const m = Math.floor((total_s % 3600) / 60);
  const sec = total_s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

/** The lines `doff`/`cancel`/`sessions <id>` print about a settled session. */
export function settledLines(s: Session): string[] {
  const status = sessionStatusName(s);
  if (s.status === SessionStatus.CANCELLED) {
    return [`✓ Cancelled ${s.masqueName}: nothing charged, the ${formatUsd(s.holdMicro)} hold is back in your wallet.`, `  session ${s.sessionId}`];
  }
  if (s.status === SessionStatus.EXPIRED) {
    return [`! ${s.masqueName}: the hold expired on the ledger (the daemon was down past the session's maximum length); nothing charged.`, `  session ${s.sessionId}`];
  }
  const lines = [
    `✓ ${status === "reaped" ? "Session was already finalized by the daemon (idle) for" : "Doffed"} ${s.masqueName}. Charged ${formatUsd(s.chargedMicro)}` +
      (s.chargedMicro > 0n ? ` (author ${formatUsd(s.authorShareMicro)}, platform ${formatUsd(s.platformFeeMicro)})` : "") +
      `; ${formatUsd(s.refundMicro)} of the ${formatUsd(s.holdMicro)} hold returned.`,
    `  usage: ${usageLine(s)}`,
  ];
  if (s.debtMicro > 0n) lines.push(`  ${formatUsd(s.debtMicro)} above the hold was recorded as debt (soft billing).`);
  if (s.unbilledMicro > 0n) lines.push(`  ${formatUsd(s.unbilledMicro)} priced but not charged (${s.billingMode === BillingMode.SHADOW ? "shadow billing" : "capped at the hold"}).`);
  lines.push(`  session ${s.sessionId}`);
  return lines;
}
