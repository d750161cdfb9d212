/**
 * The standalone streamer (`masques-ledger stream`, a real child process) is SIGKILLed at random
 * points while it copies, then restarted: after every crash the copy has no gap and no duplicate
 * up to the durable cursor, the cursor never moves back, and the final copy equals the ledger.
 * Each kill lands after a seeded number of committed chunks (the child logs each commit), so it
 * falls mid-copy however loaded the machine is; the seed is printed first, and CRASH_SEED=<seed>
 * replays the same kill points.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { QueryFilterFlags } from "tigerbeetle-node";
import { createEmbeddedClient } from "../../src/ledger/embedded/index.js";
import { ChdbSink, readCursors, reconcile } from "../../src/streamer/index.js";
import { clickhouseAggregates, createFixtureAccounts, ledgerAggregates, scalar, tempDir, writeTransfers } from "./support.js";

const REPO = path.resolve(import.meta.dirname, "../..");
const ROUNDS = 5;
const PER_ROUND = 15_000;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function startStreamer(dataDir: string, args: string[]) {
  const child = spawn(process.execPath, ["tests/streamer/stream-child.mjs", ...args], {
    cwd: REPO,
    env: { ...process.env, MASQUES_DATA_DIR: dataDir, STREAM_BATCH: "200", STREAM_POLL_MS: "20", MASQUES_LOG_LEVEL: "debug" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const running = (): Promise<void> => new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (out.includes("streamer running")) {
        clearInterval(t);
        resolve();
      }
    }, 5);
    void exited.then(() => {
      clearInterval(t);
      reject(new Error(`stream exited before running: ${err}${out}`));
    });
  });
  /** Resolves once the child has logged `n` committed chunks (its cursor moved n times). */
  const committed = (n: number): Promise<void> => new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if ((out.match(/streamer: chunk committed/g) ?? []).length >= n) {
        clearInterval(t);
        resolve();
      }
    }, 2);
    void exited.then(() => {
      clearInterval(t);
      reject(new Error(`stream exited before committing ${n} chunks: ${err}${out}`));
    });
  });
  return { child, running, committed, exited, output: () => out + err };
}

describe("streamer crash safety (SIGKILL at random points)", () => {
  it("restarts leave no gap and no duplicate, and the cursor never moves back", async () => {
    const seed = process.env.CRASH_SEED !== undefined ? Number(process.env.CRASH_SEED) : Date.now() % 1_000_000;
    expect(Number.isInteger(seed), "CRASH_SEED must be an integer").toBe(true);
    console.log(`crash test seed ${seed} (replay with CRASH_SEED=${seed})`);
    const random = rng(seed);
    const tmp = tempDir("crash");
    const ledgerDir = path.join(tmp.dir, "ledger");
    const chdbDir = path.join(tmp.dir, "chdb");
    let nextId = 1n;
    let lastCursor = 0n;
    let killedWhileCopying = 0;
    const timings: number[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        // the ledger grows between crashes (the embedded ledger is single-process: the child is dead)
        const client = createEmbeddedClient({ dataDir: ledgerDir });
        if (round === 0) await createFixtureAccounts(client, 16);
        nextId = await writeTransfers(client, PER_ROUND, 16, nextId);
        await client.close();

        const roundStart = lastCursor;
        const s = startStreamer(tmp.dir, []);
        const t0 = Date.now();
        await s.running();
        timings.push(Date.now() - t0);
        // A round is ~9 chunks (15,000 transfers, 8 pages of 200 per chunk): kill after 1..4 of them.
        await s.committed(1 + Math.floor(random() * 4));
        s.child.kill("SIGKILL");
        const { signal } = await s.exited;
        expect(signal, `seed ${seed} round ${round}: ${s.output()}`).toBe("SIGKILL");

        // what survived the crash: consistent up to the durable cursor
        const ledger = createEmbeddedClient({ dataDir: ledgerDir });
        const sink = await ChdbSink.open({ path: chdbDir, database: "masques" });
        try {
          const cursor = (await readCursors(sink)).transfers;
          expect(cursor, `seed ${seed} round ${round}: cursor moved back`).toBeGreaterThanOrEqual(lastCursor);
          lastCursor = cursor;
          const report = await reconcile({ client: ledger, sink });
          expect(report.drift, `seed ${seed} round ${round}`).toEqual([]);
          if (report.ledger_events_after_cursor > 0 && cursor > roundStart) killedWhileCopying++;
          // nothing beyond the cursor is visible twice either
          expect(await scalar(sink, "SELECT count() - uniqExact(id) FROM {{db}}.transfers FINAL")).toBe("0");
        } finally {
          await sink.close();
          await ledger.close();
        }
      }

      // what the last crash left uncopied: exactly what the final catch-up must copy
      const before = createEmbeddedClient({ dataDir: ledgerDir });
      let remaining = 0;
      try {
        for (let min = lastCursor + 1n; ; ) {
          const page = await before.queryTransfers({
            user_data_128: 0n, user_data_64: 0n, user_data_32: 0, ledger: 0, code: 0,
            timestamp_min: min, timestamp_max: 0n, limit: 8189, flags: QueryFilterFlags.none,
          });
          remaining += page.length;
          if (page.length < 8189) break;
          min = page[page.length - 1]!.timestamp + 1n;
        }
      } finally {
        await before.close();
      }
      const last = startStreamer(tmp.dir, ["--once", "--json"]);
      const { code } = await last.exited;
      expect(code, last.output()).toBe(0);
      const summary = JSON.parse(last.output().trim().split("\n").at(-1)!) as { transfers: number; cursor_ts: string };
      expect(summary.transfers, `seed ${seed}: copied after the last crash`).toBe(remaining);

      const ledger = createEmbeddedClient({ dataDir: ledgerDir });
      const sink = await ChdbSink.open({ path: chdbDir, database: "masques" });
      try {
        const total = ROUNDS * PER_ROUND;
        expect(await scalar(sink, "SELECT count() FROM {{db}}.transfers FINAL")).toBe(String(total));
        expect(await scalar(sink, "SELECT uniqExact(id) FROM {{db}}.transfers")).toBe(String(total));
        expect(await clickhouseAggregates(sink)).toEqual(await ledgerAggregates(ledger));
        const report = await reconcile({ client: ledger, sink });
        expect(report).toMatchObject({ ok: true, ledger_events_after_cursor: 0, ledger_transfers: total, clickhouse_transfers: total });
      } finally {
        await sink.close();
        await ledger.close();
      }
      console.log(`crash test seed ${seed}: child start-up ms ${timings.join(", ")}; ${killedWhileCopying} kills mid-copy`);
      // at least some kills must have landed mid-copy for this test to mean anything
      expect(killedWhileCopying, `seed ${seed}`).toBeGreaterThan(0);
    } finally {
      tmp.cleanup();
    }
  });
});
