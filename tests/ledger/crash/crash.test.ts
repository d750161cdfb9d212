/**
 * Crash test: the embedded engine in a child process under load (8 concurrent writers, single
 * transfers, linked chains that succeed, linked chains that must fail, pending transfers with
 * timeouts, posts and voids), SIGKILLed at random moments — sometimes during recovery or a
 * snapshot (copied while writes go on, or written in place while writes wait: alternate runs) —
 * and restarted on the same data directory, many times. Afterwards:
 *   - every batch the child saw acknowledged is present with the acknowledged outcome;
 *   - every batch is all-or-nothing (a batch is one log record), so no linked chain is ever half
 *     applied, and events of failing chains never appear;
 *   - debits and credits of the ledger still balance.
 * Kills are placed by counting acknowledgements (a run is killed right after its n-th
 * acknowledged batch, n drawn from the seed), so how much each run does never depends on how
 * fast a loaded machine is; only the "early" kills (during start-up and recovery) are timed, and
 * nothing is asserted about them. The seed is printed; rerun one with LEDGER_CRASH_SEED=<n>.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CreateTransferStatus, type Transfer } from "tigerbeetle-node";
import { createEmbeddedClient } from "../../../src/ledger/embedded/index.js";

const KILLS = 20;
const CHILD = path.resolve("tests/ledger/crash/engine-child.ts");
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "crash-test-"));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

interface Submitted {
  ids: bigint[];
  tags: string[];
  statuses: number[] | null;
}

/** Printed, and reusable: LEDGER_CRASH_SEED=<n> replays the same kill points. */
const SEED = process.env.LEDGER_CRASH_SEED !== undefined ? Number(process.env.LEDGER_CRASH_SEED) : (Date.now() % 0x7fffffff) | 1;
let seed = SEED;
function rand(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}

/**
 * Run the child once; SIGKILL it right after its `killAfterAcks`-th acknowledged batch, or, when
 * `early`, `killAfterMs` after spawn (while it starts or recovers).
 */
function runChild(run: number, batches: Map<string, Submitted>, kill_at: { killAfterAcks: number; killAfterMs: number }, early: boolean): Promise<{ ready: boolean; acks: number; torn: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, dataDir, String(BigInt(run + 1) * 1_000_000_000n), "262144", run % 2 === 0 ? "268435456" : "0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let ready = false;
    let torn = false;
    let acks = 0;
    let killed = false;
    let stderr = "";
    let pending = "";
    const kill = (): void => {
      if (!killed) {
        killed = true;
        child.kill("SIGKILL");
      }
    };
    const guard = setTimeout(() => {
      kill();
      reject(new Error(`run ${run} (LEDGER_CRASH_SEED=${SEED}): child not ready after 120 s; stderr: ${stderr}`));
    }, 120_000);
    if (early) setTimeout(kill, kill_at.killAfterMs);
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      pending += d.toString();
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const [word, first, list] = line.split(" ");
        if (word === "ready") {
          ready = true;
          torn = line.split(" ")[3] === "true";
          clearTimeout(guard);
        } else if (word === "sub") {
          const parts = list!.split(",").map((p) => p.split(":"));
          batches.set(first!, { ids: parts.map((p) => BigInt(p[0]!)), tags: parts.map((p) => p[1]!), statuses: null });
        } else if (word === "ack") {
          batches.get(first!)!.statuses = list!.split(",").map(Number);
          acks++;
          if (!early && acks >= kill_at.killAfterAcks) kill();
        }
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      if (signal === "SIGKILL" && killed) resolve({ ready, acks, torn });
      else reject(new Error(`run ${run} (LEDGER_CRASH_SEED=${SEED}): child exited by itself (code ${code}, signal ${signal}); stderr: ${stderr}`));
    });
  });
}

describe("crash safety under SIGKILL", () => {
  it(`keeps every acknowledged batch and never half-applies one, across ${KILLS} kills`, async () => {
    console.log(`ledger crash test: LEDGER_CRASH_SEED=${SEED}`);
    const batches = new Map<string, Submitted>();
    let readies = 0;
    let acks = 0;
    let acksAimed = 0;
    let tornCut = 0;
    for (let run = 0; run < KILLS; run++) {
      // Every 5th run is killed early: while starting up, recovering, or just after.
      const early = run % 5 === 4;
      const kill_at = { killAfterAcks: 5 + rand(120), killAfterMs: 200 + rand(600) };
      const r = await runChild(run, batches, kill_at, early);
      if (r.ready) readies++;
      if (r.torn) tornCut++;
      if (!early) {
        expect(r.acks, `run ${run} (LEDGER_CRASH_SEED=${SEED})`).toBeGreaterThanOrEqual(kill_at.killAfterAcks);
        acksAimed += kill_at.killAfterAcks;
      }
      acks += r.acks;
    }
    console.log(`ledger crash test: ${acks} acknowledged batches over ${KILLS} kills; ${tornCut} restarts cut a torn tail`);
    expect(readies).toBeGreaterThanOrEqual(KILLS - KILLS / 5);
    expect(acks).toBeGreaterThanOrEqual(acksAimed);

    const client = createEmbeddedClient({ dataDir });
    try {
      const allIds = [...batches.values()].flatMap((b) => b.ids);
      const present = new Map<bigint, Transfer>();
      for (let i = 0; i < allIds.length; i += 8000) {
        for (const t of await client.lookupTransfers(allIds.slice(i, i + 8000))) present.set(t.id, t);
      }
      let appliedUnacked = 0;
      for (const [first, b] of batches) {
        const where = `batch ${first} (LEDGER_CRASH_SEED=${SEED})`;
        const must = b.ids.filter((_, i) => b.tags[i]!.startsWith("s"));
        const mustFail = b.ids.filter((_, i) => b.tags[i]!.startsWith("f"));
        for (const id of mustFail) expect(present.has(id), `${where}: event ${id} of a failing chain is present`).toBe(false);
        const here = must.filter((id) => present.has(id)).length;
        // All-or-nothing: one batch is one log record.
        expect([0, must.length], `${where}: ${here} of ${must.length} events present`).toContain(here);
        if (b.statuses) {
          b.ids.forEach((id, i) => {
            const created = b.statuses![i] === CreateTransferStatus.created;
            expect(present.has(id), `${where}: acknowledged event ${id} (status ${b.statuses![i]})`).toBe(created);
            if (b.tags[i]!.startsWith("s")) expect(created, `${where}: event ${id} should have been created`).toBe(true);
          });
        } else if (here > 0) {
          appliedUnacked++;
        }
      }
      // The ledger still balances.
      const accounts = await client.lookupAccounts(Array.from({ length: 11 }, (_, i) => BigInt(i + 1)));
      expect(accounts.length).toBe(11);
      const sum = (f: (a: (typeof accounts)[number]) => bigint): bigint => accounts.reduce((s, a) => s + f(a), 0n);
      expect(sum((a) => a.debits_posted)).toBe(sum((a) => a.credits_posted));
      expect(sum((a) => a.debits_pending)).toBe(sum((a) => a.credits_pending));
      expect(sum((a) => a.debits_posted)).toBeGreaterThan(0n);
      // Snapshots and log rotation happened between kills (so recovery used snapshot + log tail).
      expect(client.stats().snapshot_seq).toBeGreaterThan(0n);
      // Unacknowledged batches may or may not have become durable before a kill; both are allowed.
      void appliedUnacked;
    } finally {
      await client.close();
    }
  }, 300_000); // ~25-35 s alone; generous so a fully loaded machine cannot time it out
});
