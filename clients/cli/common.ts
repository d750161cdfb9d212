/**
 * Shared plumbing of the client subcommands (don, usage, heartbeat, doff, cancel, balance,
 * sessions, earnings, deposit): flag parsing with `--help` everywhere, one way to build the SDK
 * client, human output by default and `--json` for scripts, and the exit-code contract of
 * command.ts — 0 ok, 1 user error, 2 usage error, 3 outage.
 *
 * Start-up time is the plugin's hot path (a hook runs `heartbeat --quiet` on every prompt), so
 * this module imports nothing heavy: the SDK client (Connect, protobuf) and the session-file
 * reader (yaml, zod) are loaded when a command first needs them.
 */
import { parseArgs } from "node:util";
import { CLIENT_BIN, ExitCode, type CliCommand } from "./command.js";
import type { MasquesClient } from "../sdk/client.js";
import { formatUsd, MoneyParseError, parseUsdInput } from "../sdk/money.js";
import { resolveSessionFilePath } from "../sdk/session-path.js";

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
  /** The SDK client configured from flags and environment (loaded and created on first use). */
  client(): Promise<MasquesClient>;
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
    `Usage: ${CLIENT_BIN} ${spec.usage}`,
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
      message: `${CLIENT_BIN} ${spec.name}: ${message}`,
      hint: `Run \`${CLIENT_BIN} ${spec.name} --help\` for usage.`,
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
    client: async () => {
      if (!client) {
        const { MasquesClient } = await import("../sdk/client.js");
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
    if (e instanceof UserError) {
      return fail(ExitCode.user_error, { error: "UserError", code: e.code, kind: "user", message: e.message, hint: e.hint });
    }
    // The SDK's error classes are loaded only on this path (see the module comment).
    const [{ ConfigError }, { MasquesError }, { SessionFileError }] = await Promise.all([
      import("../sdk/config.js"),
      import("../sdk/errors.js"),
      import("../sdk/session-file.js"),
    ]);
    if (e instanceof ConfigError) {
      return fail(ExitCode.usage, { error: "ConfigError", code: "config", kind: "usage", message: `Bad configuration: ${e.message}`, hint: "Fix the flag or environment variable named above." });
    }
    if (e instanceof MasquesError) {
      return fail(e.kind === "outage" ? ExitCode.outage : ExitCode.user_error, e.toJSON() as { error: string; code: string; message: string; hint: string });
    }
    if (e instanceof SessionFileError) {
      return fail(ExitCode.user_error, { error: "SessionFileError", code: "session_file", kind: "user", message: e.message, hint: "The session file only records the active masque; fixing or deleting it is safe." });
    }
    const err = e as Error;
    return fail(ExitCode.outage, {
      error: "InternalError",
      code: "internal",
      kind: "outage",
      message: `Unexpected failure in ${CLIENT_BIN} ${spec.name}: ${err?.message ?? String(e)}`,
      hint: "Retry; if it persists, report it with the command you ran.",
    });
  }
}

/** The `--view` flag of don, doff and cancel (ADR 0128): what the daemon's reply carries. */
export const VIEW_OPTION = { view: { type: "string" } } as const satisfies OptionSpecs;

/**
 * `--view basic|full` as given, undefined when absent (the command picks its default from what it
 * prints); a usage error (exit 2) for anything else.
 */
export function viewFlag(ctx: ClientContext): "basic" | "full" | undefined {
  const v = ctx.str("view")?.toLowerCase();
  if (v === undefined || v === "basic" || v === "full") return v;
  throw new UsageError(`--view: expected basic or full, got ${JSON.stringify(v)}`);
}

export { formatUsd };

