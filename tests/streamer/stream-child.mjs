// Runs `masques-ledger stream` (the real command) without loading every other CLI command, so the
// crash test's child processes start faster. Same code path as bin/masques-ledger.js stream.
import { register } from "tsx/esm/api";

register();
const { streamCommand } = await import("../../src/cli/commands/stream.ts");
process.exitCode = await streamCommand.run(process.argv.slice(2));
