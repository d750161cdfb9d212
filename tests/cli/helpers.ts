/** Run the real `masques-ledger-client` binary (the client package's compiled CLI) as a child process, as the plugin does. */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadCommands } from "../../clients/cli/commands/index.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = path.join(ROOT, "clients/bin/masques-ledger-client.js");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Parsed stdout when the command ran with --json. */
  json: Record<string, unknown> | undefined;
}

/** Only what the CLI needs from the environment (nothing of the developer's own setup leaks in). */
export function cliEnv(extra: Record<string, string | undefined>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "TMPDIR", "LANG"]) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  // A generous budget: the test machine is shared and loaded; outage tests set their own.
  env["MASQUES_TIMEOUT_MS"] = "60000";
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export function runCli(args: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: cliEnv(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      let json: Record<string, unknown> | undefined;
      if (args.includes("--json")) {
        try {
          json = JSON.parse(stdout) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
      }
      resolve({ code, stdout, stderr, json });
    });
  });
}

/**
 * Run a client command in this process (same parsing, SDK, output and exit code as the binary,
 * minus process start-up): for the many error cases that do not need a separate process.
 * Calls are serialised because the captured stdout/stderr are process-wide.
 */
let inProcessQueue: Promise<unknown> = Promise.resolve();
export function runInProcess(args: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  const go = async (): Promise<CliResult> => {
    const commands = await loadCommands();
    const { setCliIo } = await import("../../clients/cli/common.js");
    const [name, ...rest] = args;
    const cmd = commands.find((c) => c.name === name);
    if (!cmd) throw new Error(`no command ${name}`);
    let stdout = "";
    let stderr = "";
    const restore = setCliIo({ stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), env: { MASQUES_TIMEOUT_MS: "60000", ...env } });
    try {
      const code = await cmd.run(rest);
      let json: Record<string, unknown> | undefined;
      if (args.includes("--json")) {
        try {
          json = JSON.parse(stdout) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
      }
      return { code, stdout, stderr, json };
    } finally {
      restore();
    }
  };
  const p = inProcessQueue.then(go, go);
  inProcessQueue = p.catch(() => undefined);
  return p;
}

/** Dig into parsed JSON output: at(j, "session", "charged", "micro"). */
export function at(v: unknown, ...keys: string[]): unknown {
  let cur = v;
  for (const k of keys) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

export function micro(v: unknown, ...keys: string[]): bigint {
  const x = at(v, ...keys);
  if (typeof x !== "string") throw new Error(`expected a micro string at ${keys.join(".")}, got ${JSON.stringify(x)}`);
  return BigInt(x);
}
