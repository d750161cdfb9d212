/**
 * In-memory benchmark of the engine core (no durability): full 8189-event create_transfers
 * batches, then lookups and a snapshot/restore. Prints transfers/s and RSS.
 *
 *   npx tsx bench/core.ts --transfers 10000000 [--accounts 10000] [--no-history] [--json]
 */
import type { Account, Transfer } from "tigerbeetle-node";
import { AccountFlags, CreateTransferStatus } from "tigerbeetle-node";
import { createStateMachine, restoreStateMachine } from "../src/ledger/embedded/state-machine.js";
import { newAccount, newTransfer } from "../src/domain/records.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const total = arg("transfers", 1_000_000);
const accountCount = arg("accounts", 10_000);
const json = process.argv.includes("--json");
// Like the daemon: user accounts keep history, platform accounts do not (half of the accounts).
const historyAccounts = !process.argv.includes("--no-history");
const BATCH = 8189;
const mib = (b: number) => Math.round(b / 1024 / 1024);

const sm = createStateMachine();
let now = 1_700_000_000_000_000_000n;
const accounts: Account[] = [];
for (let i = 0; i < accountCount; i++) {
  accounts.push(
    newAccount({ id: BigInt(i + 1), ledger: 1, code: 1, flags: historyAccounts && i % 2 === 1 ? AccountFlags.history : 0 }),
  );
}
for (let i = 0; i < accounts.length; i += BATCH) sm.createAccounts(accounts.slice(i, i + BATCH), now);

// Deterministic pseudo-random account pairs (xorshift).
let seed = 0x12345678;
function rnd(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % accountCount;
}

let applyNs = 0n;
// CPU time of the apply calls: less sensitive than wall time to other processes on a shared machine.
let applyCpuUs = 0;
let built = 0;
let failures = 0;
const wallStart = process.hrtime.bigint();
while (built < total) {
  const n = Math.min(BATCH, total - built);
  const batch: Transfer[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const dr = rnd();
    let cr = rnd();
    if (cr === dr) cr = (dr + 1) % accountCount;
    batch[i] = newTransfer({
      // Random-looking 128-bit ids, like tigerbeetle-node's id() would produce.
      id: (BigInt(built + i + 1) << 64n) | BigInt((Math.imul(built + i, 0x9e3779b1) >>> 0) + 1),
      debit_account_id: BigInt(dr + 1),
      credit_account_id: BigInt(cr + 1),
      amount: BigInt((i % 1000) + 1),
      user_data_64: BigInt(i),
      ledger: 1,
      code: 1,
    });
  }
  now += 1_000_000n;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const results = sm.createTransfers(batch, now);
  applyNs += process.hrtime.bigint() - t0;
  const c1 = process.cpuUsage(c0);
  applyCpuUs += c1.user + c1.system;
  for (const r of results) if (r.status !== CreateTransferStatus.created) failures++;
  built += n;
  if (!json && built % (BATCH * 200) < BATCH) {
    process.stdout.write(`  ${built} transfers, rss ${mib(process.memoryUsage().rss)} MiB\n`);
  }
}
const wallNs = process.hrtime.bigint() - wallStart;
global.gc?.();
const rssAfterLoad = process.memoryUsage().rss;

// Lookups of random existing transfers.
const lookups = 100_000;
const ids: bigint[] = [];
for (let k = 0; k < lookups; k++) {
  const i = Math.floor((k * 2654435761) % total);
  ids.push((BigInt(i + 1) << 64n) | BigInt((Math.imul(i, 0x9e3779b1) >>> 0) + 1));
}
const l0 = process.hrtime.bigint();
let found = 0;
for (let k = 0; k < lookups; k += 100) found += sm.lookupTransfers(ids.slice(k, k + 100)).length;
const lookupNs = process.hrtime.bigint() - l0;

const g0 = process.hrtime.bigint();
const history = sm.getAccountTransfers({
  account_id: 1n,
  user_data_128: 0n,
  user_data_64: 0n,
  user_data_32: 0,
  code: 0,
  timestamp_min: 0n,
  timestamp_max: 0n,
  limit: 8189,
  flags: 3,
});
const getAccountTransfersNs = process.hrtime.bigint() - g0;

const q0 = process.hrtime.bigint();
const scanned = sm.queryTransfers({
  user_data_128: 12345n, // matches nothing: a full scan of the transfers
  user_data_64: 0n,
  user_data_32: 0,
  ledger: 0,
  code: 0,
  timestamp_min: 0n,
  timestamp_max: 0n,
  limit: 10,
  flags: 0,
});
const queryScanNs = process.hrtime.bigint() - q0;

let snapshotBytes = 0;
const s0 = process.hrtime.bigint();
const chunks: Uint8Array[] = [];
for (const c of sm.snapshotChunks()) {
  snapshotBytes += c.length;
  chunks.push(c);
}
const r0 = process.hrtime.bigint();
const restored = restoreStateMachine(chunks);
const restoreNs = process.hrtime.bigint() - r0;
const snapshotNs = r0 - s0;
const restoredOk = restored.stats().transfers === sm.stats().transfers;

const figures = {
  transfers: total,
  accounts: accountCount,
  history_accounts: historyAccounts ? "half" : "none",
  failures,
  apply_transfers_per_s: Math.round((total / Number(applyNs)) * 1e9),
  apply_transfers_per_cpu_s: Math.round((total / applyCpuUs) * 1e6),
  wall_transfers_per_s_incl_object_building: Math.round((total / Number(wallNs)) * 1e9),
  rss_mib_after_load: mib(rssAfterLoad),
  heap_used_mib: mib(process.memoryUsage().heapUsed),
  array_buffers_mib: mib(process.memoryUsage().arrayBuffers),
  lookup_transfers_us_per_id: Number(lookupNs) / 1000 / lookups,
  lookup_found: found,
  get_account_transfers_ms: Number(getAccountTransfersNs) / 1e6,
  get_account_transfers_results: history.length,
  query_transfers_full_scan_ms: Number(queryScanNs) / 1e6,
  query_transfers_full_scan_results: scanned.length,
  snapshot_mib: mib(snapshotBytes),
  restore_ms: Number(restoreNs) / 1e6,
  snapshot_iterate_ms: Number(snapshotNs) / 1e6,
  restored_ok: restoredOk,
  rss_mib_with_restored_copy: mib(process.memoryUsage().rss),
};
if (json) console.log(JSON.stringify(figures));
else console.log(figures);
