/**
 * Split a daemon CPU profile into where its main thread spends its time (issue 20, ADR 0123):
 * transport, authentication, rate limit, service, ledger, control plane, telemetry, GC, native,
 * other — rules in bench/profile-categories.ts (the module `npm run bench` uses per phase).
 *
 *   npx tsx bench/profile-split.ts <file.cpuprofile> [--json] [--us-per-op N]
 *
 * Profiles: `npm run bench` writes one per phase when it starts the daemon itself (kept with
 * `--keep-profiles <dir>`); `BENCH_DAEMON_CPU_PROF=<dir> npm run bench` also writes a whole-run
 * profile (`node --cpu-prof`, start-up included); a daemon started with MASQUES_CPU_PROFILE_DIR
 * writes one per SIGUSR2 start/stop pair. `--us-per-op N` also prints N µs split by the shares
 * (give the daemon's MAIN-THREAD CPU µs per call: the profile samples only that thread).
 */
import { readFileSync } from "node:fs";
import { CATEGORIES, CATEGORY_DOC, microsPerCall, splitProfile, type CpuProfile } from "./profile-categories.js";

const file = process.argv[2];
if (!file || file.startsWith("--")) {
  console.error("usage: tsx bench/profile-split.ts <file.cpuprofile> [--json] [--us-per-op N]");
  process.exit(2);
}
const i = process.argv.indexOf("--us-per-op");
const usPerOp = i >= 0 ? Number(process.argv[i + 1]) : null;
if (usPerOp !== null && !(usPerOp >= 0)) {
  console.error("--us-per-op: expected a non-negative number of µs");
  process.exit(2);
}
const split = splitProfile(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, { otherTop: 10 });
const us = usPerOp === null ? null : microsPerCall(split, usPerOp);
if (process.argv.includes("--json")) console.log(JSON.stringify({ ...split, ...(us ? { us_per_op: us } : {}) }));
else {
  console.log(`busy samples: ${split.busy_samples} (every ~${split.interval_us} µs)`);
  for (const c of CATEGORIES) {
    console.log(`${c.padEnd(16)}${split.share_pct[c].toFixed(1).padStart(6)} %${us ? `${us[c].toFixed(1).padStart(10)} µs` : ""}   ${CATEGORY_DOC[c]}`);
  }
  if (split.other_top.length > 0) console.log(`other, by innermost frame: ${split.other_top.map((o) => `${o.frame} ${o.pct} %`).join("; ")}`);
}
