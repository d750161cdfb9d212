/**
 * `masques-ledger <command> [flags]`: dispatches to the subcommands listed in
 * src/cli/commands/index.ts. Returns the exit code (see src/cli/command.ts).
 */
import { ExitCode } from "./command.js";
import { commands } from "./commands/index.js";

function usage(): string {
  const width = Math.max(8, ...commands.map((c) => c.name.length));
  return [
    "Usage: masques-ledger <command> [flags]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Run `masques-ledger <command> --help` for details.",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    const target = name === "help" ? commands.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write((target ? target.help : usage()) + "\n");
    return name ? ExitCode.ok : ExitCode.usage;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`masques-ledger: unknown command "${name}"\n\n${usage()}\n`);
    return ExitCode.usage;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(cmd.help + "\n");
    return ExitCode.ok;
  }
  return cmd.run(rest);
}
