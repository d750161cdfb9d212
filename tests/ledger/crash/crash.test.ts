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

let seed = 0x2545f491;
function rand(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}

/** Run the child once; SIGKILL it `killAfterMs` after it is ready (or after spawn when `early`). */
function runChild(run: number, batches: Map<string, Submitted>, killAfterMs: number, early: boolean): Promise<{ ready: boolean; acks: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CHILD, dataDir, String(BigInt(run + 1) * 1_000_000_000n), "262144", run % 2 === 0 ? "268435456" : "0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let ready = false;
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
      reject(new Error(`run ${run}: child not ready after 30 s; stderr: ${stderr}`));
    }, 30_000);
    if (early) setTimeout(kill, killAfterMs);
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
          clearTimeout(guard);
          if (!early) setTimeout(kill, killAfterMs);
        } else if (word === "sub") {
          const parts = list!.split(",").map((p) => p.split(":"));
          batches.set(first!, { ids: parts.map((p) => BigInt(p[0]!)), tags: parts.map((p) => p[1]!), statuses: null });
        } else if (word === "ack") {
          batches.get(first!)!.statuses = list!.split(",").map(Number);
          acks++;
        }
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(guard);
      if (signal === "SIGKILL" && killed) resolve({ ready, acks });
      else reject(new Error(`run ${run}: child exited by itself (code ${code}, signal ${signal}); stderr: ${stderr}`));
    });
  });
}

describe("crash safety under SIGKILL", () => {
  it(`keeps every acknowledged batch and never half-applies one, across ${KILLS} kills`, async () => {
    const batches = new Map<string, Submitted>();
    let readies = 0;
    let acks = 0;
    for (let run = 0; run < KILLS; run++) {
      // Every 5th run is killed early: while starting up, recovering, or just after.
      const early = run % 5 === 4;
      const r = await runChild(run, batches, early ? 200 + rand(600) : 100 + rand(700), early);
      if (r.ready) readies++;
      acks += r.acks;
    }
    expect(readies).toBeGreaterThanOrEqual(KILLS - KILLS / 5);
    expect(acks).toBeGreaterThan(KILLS * 5);

    const client = createEmbeddedClient({ dataDir });
    try {
      const allIds = [...batches.values()].flatMap((b) => b.ids);
      const present = new Map<bigint, Transfer>();
      for (let i = 0; i < allIds.length; i += 8000) {
        for (const t of await client.lookupTransfers(allIds.slice(i, i + 8000))) present.set(t.id, t);
      }
      let appliedUnacked = 0;
      for (const [first, b] of batches) {
        const where = `batch ${first}`;
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
