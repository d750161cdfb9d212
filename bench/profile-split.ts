/**
 * Split a daemon CPU profile into where the hot path spends its time (issue 20, ADR 0126):
 * transport, authentication, service, ledger, control plane, GC — by the innermost frame of each
 * sample that belongs to one of the categories below (idle samples are left out).
 *
 *   BENCH_DAEMON_CPU_PROF=/tmp/prof npm run bench -- --json
 *   npx tsx bench/profile-split.ts /tmp/prof/<the daemon's>.cpuprofile [--json]
 *
 * Costs nothing when not benchmarking: the daemon only profiles when the bench starts it with
 * --cpu-prof (BENCH_DAEMON_CPU_PROF). Shares are of busy samples over the whole run (all phases);
 * multiply by the bench's daemon CPU µs/op of a phase to get µs per call of that phase.
 */
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

type Category = "authentication" | "rate_limit" | "control_plane" | "ledger" | "service" | "transport" | "gc" | "other";

/** The category a frame belongs to, or null when it says nothing (keep walking outwards). */
function categoryOf(f: CallFrame): Category | null {
  const u = f.url;
  if (f.functionName === "(garbage collector)") return "gc";
  if (u.includes("/node_modules/jose/") || u.endsWith("/src/server/auth.ts")) return "authentication";
  if (u.includes("/node_modules/limiter/") || u.endsWith("/src/server/rate-limit.ts")) return "rate_limit";
  if (u.includes("@electric-sql/pglite") || u.includes("/node_modules/kysely") || u.includes("/node_modules/pg/") || u.includes("/src/controlplane/")) return "control_plane";
  if (u.includes("/src/ledger/") || u.includes("tigerbeetle-node")) return "ledger";
  if (u.includes("/src/services/") || u.includes("/src/domain/")) return "service";
  if (u.includes("@grpc/") || u.includes("@connectrpc/") || u.includes("@bufbuild/") || u.includes("/src/server/") || u.startsWith("node:")) return "transport";
  return null;
}

const file = process.argv[2];
if (!file) {
  console.error("usage: tsx bench/profile-split.ts <file.cpuprofile> [--json]");
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const n of p.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}
const memo = new Map<number, Category | "idle">();
function classify(id: number): Category | "idle" {
  const hit = memo.get(id);
  if (hit) return hit;
  let x: number | undefined = id;
  let out: Category | "idle" = "other";
  const first = byId.get(id)?.callFrame.functionName;
  if (first === "(idle)") out = "idle";
  else {
    while (x !== undefined) {
      const n = byId.get(x);
      if (!n) break;
      const c = categoryOf(n.callFrame);
      if (c) {
        out = c;
        break;
      }
      x = parent.get(x);
    }
  }
  memo.set(id, out);
  return out;
}
const counts = new Map<string, number>();
let busy = 0;
for (const s of p.samples) {
  const c = classify(s);
  if (c === "idle") continue;
  busy++;
  counts.set(c, (counts.get(c) ?? 0) + 1);
}
const shares = Object.fromEntries([...counts.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round((1000 * v) / Math.max(busy, 1)) / 10]));
if (process.argv.includes("--json")) console.log(JSON.stringify({ busy_samples: busy, share_pct: shares }));
else {
  console.log(`busy samples: ${busy}`);
  for (const [k, v] of Object.entries(shares)) console.log(`${k.padEnd(16)}${String(v).padStart(6)} %`);
}
