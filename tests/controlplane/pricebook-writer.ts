/**
 * Child process of crash.test.ts: opens the control plane named by its environment (support.ts
 * `env()`), then writes price books in batches forever (bounded), printing `ok <versions>` after
 * each batch is committed. The test SIGKILLs it mid-stream.
 */
import path from "node:path";
import { openControlPlane } from "../../src/controlplane/index.js";
import { priceBookVersion } from "../../src/domain/catalog.js";
import { priceBookFromText } from "../../src/domain/pricing.js";

const dataDir = process.env.MASQUES_DATA_DIR!;
const first = Number(process.env.WRITER_FIRST_INDEX);
const BATCH = 8;
const MAX_BATCHES = 100_000;

const cp = await openControlPlane({ databaseUrl: process.env.DATABASE_URL, poolMax: 4, pgliteDir: path.join(dataDir, "controlplane"), dataDir });
process.stdout.write(`open ${cp.engine}\n`);
for (let b = 0; b < MAX_BATCHES; b++) {
  const batch = Array.from({ length: BATCH }, (_, j) => {
    const index = first + b * BATCH + j;
    const pricing = priceBookFromText({ per_minute: "0.01", per_tool_call: `0.${String(index).padStart(6, "0")}`, reserve: "1" });
    return { version: priceBookVersion(index, "crash-author", pricing), masque_index: index, masque_name: `crash-${index}`, author: "crash-author", pricing };
  });
  const stored = await cp.priceBooks.putMany(batch);
  process.stdout.write(`ok ${stored.map((e) => e.version).join(",")}\n`);
}
await cp.close();
