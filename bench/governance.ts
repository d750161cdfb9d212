/**
 * Governance benchmark (issue 16): what revenue rules and the audit log cost, on the engine chosen
 * like the daemon does (DATABASE_URL set = PostgreSQL server, else PGlite in a temp dir).
 *
 *   npm run bench:governance            # PGlite, 1000 operations
 *   npm run bench:governance -- 5000
 *
 * Reports: session pins per second (the one statement a Don adds, ADR 0102), pin reads per second
 * (a Doff's cache miss), audit appends per second (one transaction each, ADR 0101) and chain
 * verification in entries per second (read + hash, no ledger anchors). The machine is shared:
 * compare ratios from one run.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { appendAudit, readChain } from "../src/controlplane/audit.js";
import { createGovernanceStore } from "../src/controlplane/governance.js";
import { openControlPlane } from "../src/controlplane/index.js";
import { verifyChain } from "../src/domain/audit-chain.js";

const n = Number(process.argv[2] ?? 1000);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-governance-"));
const cp = await openControlPlane({ databaseUrl: process.env.DATABASE_URL, poolMax: 10, pgliteDir: path.join(dataDir, "controlplane"), dataDir });
const clock = () => BigInt(Date.now()) * 1_000_000n;
const rules = createGovernanceStore(cp.db, { clock, cooling_s: () => 0 });

async function rate(what: string, count: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await fn(i);
  const ms = performance.now() - t0;
  console.log(`${what.padEnd(40)} ${String(Math.round((count / ms) * 1000)).padStart(8)} /s   (${count} in ${ms.toFixed(0)} ms, ${(ms / count).toFixed(3)} ms each)`);
}

try {
  await rules.bootstrap(1500);
  const run = Date.now().toString(36);
  await rate("pin a session at Don", n, (i) => rules.pinSession(`bench-${run}-${i}`, "researcher", "author-grace"));
  await rate("read a pin (Doff, cache miss)", n, (i) => rules.pinOf(`bench-${run}-${i}`));
  await rate("append an audit entry (own transaction)", n, (i) =>
    cp.db.transaction().execute((trx) => appendAudit(trx, { time_ns: clock(), actor_kind: "admin", actor_id: "bench", action: "bench.append", subject: `x:${i}`, request_id: `r${i}`, after: { i } })),
  );
  const t0 = performance.now();
  const chain = await readChain(cp.db);
  const v = verifyChain(chain, []);
  const ms = performance.now() - t0;
  console.log(`${"verify the chain (read + hash)".padEnd(40)} ${String(Math.round((chain.length / ms) * 1000)).padStart(8)} entries/s   (${chain.length} entries in ${ms.toFixed(0)} ms, ok=${v.ok})`);
} finally {
  await cp.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
