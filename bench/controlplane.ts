/**
 * Control-plane benchmark (issue 10): open/migrate time and price-book throughput on the engine
 * chosen like the daemon does (DATABASE_URL set = PostgreSQL server, else PGlite in a temp dir).
 *
 *   npm run bench:controlplane                # PGlite
 *   DATABASE_URL=postgres://… npm run bench:controlplane -- 2000   # server (uses that database:
 *                                              # writes price books of author "bench-author")
 *
 * Reports: first open (creates + migrates), reopen, puts per second (batches of 1 and of 100),
 * get per second from the cache and on a miss (a fresh store reading the database). The machine
 * is shared: compare ratios from one run.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openControlPlane, type ControlPlane } from "../src/controlplane/index.js";
import { createPriceBookStore } from "../src/controlplane/pricebooks.js";
import { priceBookVersion, type PriceBookEntry } from "../src/domain/catalog.js";
import { priceBookFromText } from "../src/domain/pricing.js";

const n = Number(process.argv[2] ?? 1000);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-controlplane-"));
const opts = { databaseUrl: process.env.DATABASE_URL, poolMax: 10, pgliteDir: path.join(dataDir, "controlplane"), dataDir };

function entry(i: number): PriceBookEntry {
  const pricing = priceBookFromText({ per_minute: "0.01", per_tool_call: `0.${String(i).padStart(9, "0")}`, reserve: "1" });
  const masque_index = 1_000_000 + i;
  return { version: priceBookVersion(masque_index, "bench-author", pricing), masque_index, masque_name: `bench-${i}`, author: "bench-author", pricing };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

const [first, open_ms] = await timed(() => openControlPlane(opts));
await first.close();
const [cp, reopen_ms]: [ControlPlane, number] = await timed(() => openControlPlane(opts));
try {
  const singles = Array.from({ length: n }, (_, i) => entry(i));
  const [, put1_ms] = await timed(async () => {
    for (const e of singles) await cp.priceBooks.put(e);
  });
  const batched = Array.from({ length: n }, (_, i) => entry(n + i));
  const [, put100_ms] = await timed(async () => {
    for (let i = 0; i < batched.length; i += 100) await cp.priceBooks.putMany(batched.slice(i, i + 100));
  });
  const [, hit_ms] = await timed(async () => {
    for (const e of singles) await cp.priceBooks.get(e.version);
  });
  const cold = createPriceBookStore({ db: cp.db });
  const [, miss_ms] = await timed(async () => {
    for (const e of singles) await cold.get(e.version);
  });
  const rate = (ms: number) => Math.round((n / ms) * 1000);
  console.log(
    JSON.stringify(
      {
        engine: cp.engine,
        n,
        first_open_ms: Math.round(open_ms),
        reopen_ms: Math.round(reopen_ms),
        put_single_per_s: rate(put1_ms),
        put_batch100_per_s: rate(put100_ms),
        get_cached_per_s: rate(hit_ms),
        get_miss_per_s: rate(miss_ms),
      },
      null,
      2,
    ),
  );
} finally {
  await cp.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
