/**
 * The V8 young generation the daemon runs with (issue 20, ADR 0129). V8 sizes its heap when the
 * process starts, so `--max-semi-space-size` only takes effect on node's command line or in
 * NODE_OPTIONS (v8.setFlagsFromString after start changes nothing: measured in ADR 0129). The
 * project's launch paths (`npm start`, the Dockerfile) put
 * {@link DEFAULT_MAX_SEMI_SPACE_MB} in NODE_OPTIONS ahead of the operator's own NODE_OPTIONS, so
 * an operator's flag wins. The daemon logs what it got at start-up.
 */
import v8 from "node:v8";

/** The semi-space size the project's launch paths give V8, MiB (V8 11's default on 64-bit is 16). */
export const DEFAULT_MAX_SEMI_SPACE_MB = 64;

/** What V8 was told and what its heap reports, for the start-up log line. */
export interface YoungGenerationInfo {
  /** `--max-semi-space-size` as node received it (command line, then NODE_OPTIONS; the last wins), MiB; null = V8's default. */
  max_semi_space_mb: number | null;
  /** `--min-semi-space-size` likewise, MiB; null = V8's default. */
  min_semi_space_mb: number | null;
  /** V8's heap limit, bytes: the old generation's limit plus 3 × the semi-space size (so it moves with the flag). */
  heap_size_limit_bytes: number;
  /** The young generation's current capacity, bytes (it grows towards the maximum under load). */
  new_space_bytes: number;
}

/** The last value of `--<name>=N` / `--<name> N` (dashes or underscores) in the given argument lists; null if absent. */
export function v8SizeFlag(name: string, ...argLists: readonly string[][]): number | null {
  const spelled = new Set([name, name.replaceAll("-", "_")]);
  let found: number | null = null;
  for (const args of argLists) {
    for (let i = 0; i < args.length; i++) {
      const m = /^--([a-z_-]+)(?:=(\d+))?$/.exec(args[i] ?? "");
      if (!m || !spelled.has(m[1] ?? "")) continue;
      const value = m[2] ?? args[i + 1];
      if (value !== undefined && /^\d+$/.test(value)) found = Number(value);
    }
  }
  return found;
}

/** Reads the flags node started with (NODE_OPTIONS first, then the command line: node applies them in that order) and V8's heap figures. */
export function youngGenerationInfo(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ""): YoungGenerationInfo {
  const fromEnv = nodeOptions.split(/\s+/).filter(Boolean);
  const cli = [...execArgv];
  const newSpace = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
  return {
    max_semi_space_mb: v8SizeFlag("max-semi-space-size", fromEnv, cli),
    min_semi_space_mb: v8SizeFlag("min-semi-space-size", fromEnv, cli),
    heap_size_limit_bytes: v8.getHeapStatistics().heap_size_limit,
    new_space_bytes: newSpace?.space_size ?? 0,
  };
}
