// The last step of .ci/run: read vitest's JSON report and print "N passed, N failed" as the last
// line. Also lists every skipped / todo test by name, and counts as failed each one not on the
// allowlist (.ci/allowed-skips, or $ALLOWED_SKIPS_FILE).
//   node .ci/summary.mjs <report.json> <failures before the tests> <vitest exit status>
// Exit status 0 only when nothing failed and at least one test passed.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

const [report, preText, statusText] = process.argv.slice(2);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const allowFile = process.env.ALLOWED_SKIPS_FILE ?? path.join(root, ".ci/allowed-skips");

/** "<file relative to the repo> > <full name>" of every allowed skip. */
function readAllowlist(file) {
  if (!existsSync(file)) return new Set();
  return new Set(
    readFileSync(file, "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#")),
  );
}

const pre = Number(preText);
const status = Number(statusText);
let passed = 0;
let failed = pre;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, "utf8"));
  passed = r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  const allowed = readAllowlist(allowFile);
  const skipped = [];
  for (const file of r.testResults ?? []) {
    const results = file.assertionResults ?? [];
    // A test file that fails to load or errors outside a test has no failed test: count it.
    const failedTests = results.filter((a) => a.status === "failed").length;
    if (file.status === "failed" && failedTests === 0) {
      failed += 1;
      console.log(`failed outside a test: ${file.name}: ${(file.message ?? "").split("\n")[0]}`);
    }
    const rel = path.relative(root, file.name);
    for (const a of results) {
      if (a.status === "passed" || a.status === "failed") continue;
      // vitest: "skipped" / "pending" (skip, skipIf, runIf) and "todo"
      const fullName = a.fullName ?? [...(a.ancestorTitles ?? []), a.title].join(" ");
      const key = `${rel} > ${fullName}`;
      skipped.push({ key, status: a.status, allowed: allowed.has(key) });
    }
  }
  if (skipped.length > 0) {
    console.log(`${skipped.length} skipped or todo tests (allowlist: ${path.relative(root, allowFile)}):`);
    for (const s of skipped) console.log(`  ${s.allowed ? "allowed    " : "NOT ALLOWED"} [${s.status}] ${s.key}`);
    const bad = skipped.filter((s) => !s.allowed).length;
    if (bad > 0) console.log(`${bad} skipped or todo tests are not on the allowlist: each counts as a failure`);
    failed += bad;
  }
  if ((r.numTotalTests ?? 0) === 0) console.log("no test ran");
  if (status !== 0 && failed === 0) {
    console.log(`vitest exited with status ${status} without failed tests (unhandled error?)`);
    failed += 1;
  }
} else {
  console.log(`no test report (${report}): typecheck or vitest failed before reporting`);
  failed += 1;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
