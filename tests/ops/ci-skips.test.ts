/**
 * Issue 12: `.ci/run` used to ignore skipped and todo tests. Its summary step (.ci/summary.mjs)
 * now lists them by name and fails on any not on the allowlist. Driven with a real vitest JSON
 * report of a fixture file holding one passing, one skipped and one todo test.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURE = "tests/ops/fixtures/skips.fixture.ts";

describe(".ci/run summary: skipped and todo tests", () => {
  let dir: string;
  let report: string;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "ci-skips-"));
    report = path.join(dir, "report.json");
    const r = spawnSync(
      process.execPath,
      [path.join(ROOT, "node_modules/vitest/vitest.mjs"), "run", "--config", "tests/ops/fixtures/vitest.fixture.config.ts", "--reporter=json", `--outputFile.json=${report}`],
      { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 120_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const parsed = JSON.parse(readFileSync(report, "utf8")) as { numPassedTests: number };
    expect(parsed.numPassedTests).toBe(1);
  }, 150_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const summary = (allowlist: string) => {
    const allow = path.join(dir, "allowed-skips");
    writeFileSync(allow, allowlist);
    return spawnSync(process.execPath, [path.join(ROOT, ".ci/summary.mjs"), report, "0", "0"], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, ALLOWED_SKIPS_FILE: allow },
    });
  };

  it("names every skipped and todo test and fails on those not allowed", () => {
    const r = summary("# nothing allowed\n");
    expect(r.stdout).toContain(`NOT ALLOWED [skipped] ${FIXTURE} > fixture is skipped`);
    expect(r.stdout).toMatch(new RegExp(`NOT ALLOWED \\[(todo|pending)\\] ${FIXTURE.replace(/\./g, "\\.")} > fixture is todo`));
    expect(r.stdout.trim().split("\n").at(-1)).toBe("1 passed, 2 failed");
    expect(r.status).toBe(1);
  });

  it("passes when every skip is on the allowlist, and still lists them", () => {
    const r = summary(`# why: fixture\n${FIXTURE} > fixture is skipped\n\n# why: fixture\n${FIXTURE} > fixture is todo\n`);
    expect(r.stdout).toContain(`allowed     [skipped] ${FIXTURE} > fixture is skipped`);
    expect(r.stdout.trim().split("\n").at(-1)).toBe("1 passed, 0 failed");
    expect(r.status).toBe(0);
  });

  it("one unlisted skip among allowed ones still fails", () => {
    const r = summary(`${FIXTURE} > fixture is skipped\n`);
    expect(r.stdout.trim().split("\n").at(-1)).toBe("1 passed, 1 failed");
    expect(r.status).toBe(1);
  });

  it("the committed allowlist is short and every entry is documented", () => {
    const lines = readFileSync(path.join(ROOT, ".ci/allowed-skips"), "utf8").split("\n");
    const entries = lines.map((l, i) => ({ l: l.trim(), i })).filter(({ l }) => l !== "" && !l.startsWith("#"));
    expect(entries.length).toBeLessThanOrEqual(5);
    for (const { l, i } of entries) {
      expect(l, "format: <file> > <full test name>").toMatch(/^tests\/\S+\.test\.ts > .+/);
      expect(lines[i - 1]?.trim().startsWith("#"), `entry "${l}" needs a comment above it`).toBe(true);
    }
  });
});
