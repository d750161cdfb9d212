import { readFileSync } from "node:fs";

/**
 * The client package's version, read from its package.json (one directory above `cli/` in the
 * sources, two above `dist/cli/` once built). Never throws: "unknown" if it cannot be read.
 */
export function packageVersion(): string {
  for (const rel of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "@masques/ledger-client" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // try the next location
    }
  }
  return "unknown";
}
