import type { CliCommand } from "../command.js";

/**
 * The client binary's subcommands, loaded on demand: a hook that runs `heartbeat --quiet` on every
 * prompt loads only that command's modules (start-up time is the plugin's hot path, issue 12).
 * Add one line per command.
 */
export const commandLoaders: ReadonlyArray<{ name: string; load: () => Promise<CliCommand> }> = [
  { name: "don", load: async () => (await import("./don.js")).donCommand },
  { name: "usage", load: async () => (await import("./usage.js")).usageCommand },
  { name: "heartbeat", load: async () => (await import("./heartbeat.js")).heartbeatCommand },
  { name: "doff", load: async () => (await import("./doff.js")).doffCommand },
  { name: "cancel", load: async () => (await import("./cancel.js")).cancelCommand },
  { name: "balance", load: async () => (await import("./balance.js")).balanceCommand },
  { name: "sessions", load: async () => (await import("./sessions.js")).sessionsCommand },
  { name: "earnings", load: async () => (await import("./earnings.js")).earningsCommand },
  { name: "deposit", load: async () => (await import("./deposit.js")).depositCommand },
];

/** Every client command, loaded (for `--help` listings and in-process tests). */
export async function loadCommands(): Promise<CliCommand[]> {
  return Promise.all(commandLoaders.map((c) => c.load()));
}
