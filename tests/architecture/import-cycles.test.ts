/**
 * No import cycles outside generated code (issue 9), type-only imports included: the modules of
 * the repository (daemon, client packages, tests, benchmarks) form a DAG. Checked with
 * dependency-cruiser's `circular` rule over the TypeScript sources (resolved with tsconfig.json,
 * pre-compilation dependencies, so `import type` edges count).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cruise, type ICruiseResult } from "dependency-cruiser";
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Cycles among the modules under `dirs` (only those: a dependency elsewhere is its own test's). */
async function cycles(dirs: string[]): Promise<string[]> {
  const cwd = process.cwd();
  process.chdir(ROOT);
  try {
    const tsConfig = extractTSConfig(path.join(ROOT, "tsconfig.json"));
    const r = await cruise(
      dirs,
      {
        validate: true,
        includeOnly: `^(${dirs.join("|")})/`,
        exclude: { path: "(^|/)node_modules/|^clients/gen/|(^|/)dist/" },
        doNotFollow: { path: "node_modules" },
        tsPreCompilationDeps: true,
        tsConfig: { fileName: "tsconfig.json" },
        ruleSet: { forbidden: [{ name: "no-circular", severity: "error", from: {}, to: { circular: true } }] },
      },
      {},
      { tsConfig },
    );
    const out = r.output as ICruiseResult;
    expect(out.modules.length).toBeGreaterThan(dirs.length); // it saw the sources
    return out.summary.violations.map((v) => [v.from, ...(v.cycle ?? []).map((c) => (typeof c === "string" ? c : c.name))].join(" -> "));
  } finally {
    process.chdir(cwd);
  }
}

describe("import graph", () => {
  it("the daemon (src/), tests and benchmarks have no import cycle", { timeout: 120_000 }, async () => {
    expect(await cycles(["src", "tests", "bench"])).toEqual([]);
  });

  it("the client packages (clients/, generated code excepted) have no import cycle", { timeout: 120_000 }, async () => {
    expect(await cycles(["clients"])).toEqual([]);
  });
});
