/**
 * Coalescer benchmark: many concurrent callers, each creating ONE transfer per request (the
 * shape of concurrent RPCs), against the embedded engine directly vs. through the coalescer.
 *
 *   npm run bench:coalescer                 # defaults: 64 callers, 3 s per mode, 3 rounds
 *   npm run bench:coalescer -- 128 5 3      # callers, seconds per mode, rounds
 *
 * Modes alternate round by round on fresh engines; CPU time of this process per transfer is
 * reported next to throughput (the machine is shared: compare ratios from one run).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Account, Client, Transfer } from "tigerbeetle-node";
import { createEmbeddedClient } from "../src/ledger/embedded/index.js";
import { createCoalescedClient } from "../src/ledger/coalescer.js";
import { newAccount, newTransfer } from "../src/domain/records.js";

const callers = Number(process.argv[2] ?? 64);
const seconds = Number(process.argv[3] ?? 3);
const rounds = Number(process.argv[4] ?? 3);

const account = (id: bigint): Account => newAccount({ id, ledger: 1, code: 1 });

let nextId = 1_000_000n;
const transfer = (): Transfer =>
  newTransfer({ id: nextId++, debit_account_id: 1n, credit_account_id: 2n, amount: 1n, ledger: 1, code: 1 });

async function run(mode: "direct" | "coalesced"): Promise<{ rate: number; cpu_us: number; batches?: number }> {
  const dir = await mkdtemp(path.join(tmpdir(), "bench-coalescer-"));
  const engine = createEmbeddedClient({ dataDir: dir });
  const coalesced = mode === "coalesced" ? createCoalescedClient(engine) : undefined;
  const client: Client = coalesced ?? engine;
  await client.createAccounts([account(1n), account(2n)]);
  let done = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (performance.now() < end) {
        const [r] = await client.createTransfers([transfer()]);
        if (r && r.status === 0xffffffff) done += 1;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await engine.close();
  await rm(dir, { recursive: true, force: true });
  return { rate: done / elapsed, cpu_us: (cpu.user + cpu.system) / Math.max(1, done), batches: coalesced?.stats.batches };
}

const results: Record<string, { rate: number[]; cpu: number[] }> = { direct: { rate: [], cpu: [] }, coalesced: { rate: [], cpu: [] } };
console.log(`coalescer bench: ${callers} concurrent callers, 1 transfer per request, ${seconds}s per mode, ${rounds} rounds`);
for (let r = 0; r < rounds; r++) {
  const order: ("direct" | "coalesced")[] = r % 2 === 0 ? ["direct", "coalesced"] : ["coalesced", "direct"];
  for (const mode of order) {
    const x = await run(mode);
    results[mode]!.rate.push(x.rate);
    results[mode]!.cpu.push(x.cpu_us);
    console.log(`  round ${r + 1} ${mode.padEnd(9)} ${Math.round(x.rate).toString().padStart(7)} transfers/s  ${x.cpu_us.toFixed(1)} µs CPU/transfer${x.batches ? `  (${x.batches} ledger requests)` : ""}`);
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const d = results.direct!;
const c = results.coalesced!;
console.log(
  `median: direct ${Math.round(med(d.rate))}/s, coalesced ${Math.round(med(c.rate))}/s = ${(med(c.rate) / med(d.rate)).toFixed(2)}x; ` +
    `CPU per transfer ${med(d.cpu).toFixed(1)} vs ${med(c.cpu).toFixed(1)} µs`,
);
