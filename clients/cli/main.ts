/**
 * `masques-ledger-client <command> [flags]`: the client binary the masques plugin calls. Loads only
 * the command it runs (see commands/index.ts). Returns the exit code (see command.ts).
 */
import { CLIENT_BIN, ExitCode } from "./command.js";
import { commandLoaders, loadCommands } from "./commands/index.js";
import { packageVersion } from "./version.js";

async function usage(): Promise<string> {
  const commands = await loadCommands();
  const width = Math.max(8, ...commands.map((c) => c.name.length));
  return [
    `Usage: ${CLIENT_BIN} <command> [flags]`,
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    `Run \`${CLIENT_BIN} <command> --help\` for details, \`${CLIENT_BIN} --version\` for the version.`,
    "The daemon itself (serve, stream, reconcile, token, keys) is the `masques-ledger` binary of the daemon package.",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-v" || name === "version") {
    process.stdout.write(`${CLIENT_BIN} ${packageVersion()}\n`);
    return ExitCode.ok;
  }
  if (!name || name === "--help" || name === "-h" || name === "help") {
    const target = name === "help" ? commandLoaders.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write((target ? (await target.load()).help : await usage()) + "\n");
    return name ? ExitCode.ok : ExitCode.usage;
  }
  const entry = commandLoaders.find((c) => c.name === name);
  if (!entry) {
    const daemonOnly = ["serve", "stream", "reconcile", "token"].includes(name);
    process.stderr.write(
      `${CLIENT_BIN}: unknown command "${name}"${daemonOnly ? ` (\`${name}\` belongs to the daemon: run \`masques-ledger ${name}\` from the daemon package)` : ""}\n\n${await usage()}\n`,
    );
    return ExitCode.usage;
  }
  const cmd = await entry.load();
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(cmd.help + "\n");
    return ExitCode.ok;
  }
  return cmd.run(rest);
}
