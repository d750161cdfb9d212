/**
 * `masques-ledger <command> [flags]`: the daemon binary. Dispatches to the subcommands listed in
 * src/cli/commands/index.ts (serve, stream, reconcile, token, keys). Returns the exit code (see
 * src/cli/command.ts). The plugin-facing commands are the client package's `masques-ledger-client`.
 */
import { readFileSync } from "node:fs";
import { ExitCode } from "./command.js";
import { CLIENT_COMMAND_NAMES, commands } from "./commands/index.js";

function usage(): string {
  const width = Math.max(9, ...commands.map((c) => c.name.length));
  return [
    "Usage: masques-ledger <command> [flags]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Run `masques-ledger <command> --help` for details, `masques-ledger --version` for the version.",
    `Client commands (${CLIENT_COMMAND_NAMES.join(", ")}) are in \`masques-ledger-client\` (clients/, what the plugin calls).`,
  ].join("\n");
}

/** The daemon package's version (package.json at the repository root). */
export function daemonVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-v" || name === "version") {
    process.stdout.write(`masques-ledger ${daemonVersion()}\n`);
    return ExitCode.ok;
  }
  if (!name || name === "--help" || name === "-h" || name === "help") {
    const target = name === "help" ? commands.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write((target ? target.help : usage()) + "\n");
    return name ? ExitCode.ok : ExitCode.usage;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    const client = CLIENT_COMMAND_NAMES.includes(name);
    process.stderr.write(
      client
        ? `masques-ledger: "${name}" is a client command: run \`masques-ledger-client ${name}\` (in this repository: \`npx masques-ledger-client ${name}\`).\n`
        : `masques-ledger: unknown command "${name}"\n\n${usage()}\n`,
    );
    return ExitCode.usage;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(cmd.help + "\n");
    return ExitCode.ok;
  }
  return cmd.run(rest);
}
