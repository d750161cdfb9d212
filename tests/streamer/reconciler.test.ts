/**
 * Reconciliation inside a running daemon (ADR 0042): the Reconciler runs while the streamer copies
 * and the ledger keeps taking transfers, and must report no drift when there is none (no false
 * alarm from a copy or a balance moving under the comparison), report drift when the copy is
 * wrong, keep the last result, and run on its schedule.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import { ChdbSink, migrate, Reconciler, Streamer } from "../../src/streamer/index.js";
import { createFixtureAccounts, tempDir, writeTransfers } from "./support.js";

describe("Reconciler against a live ledger and a running streamer", () => {
  const tmp = tempDir("reconciler");
  let client: EmbeddedClient;
  let sink: ChdbSink;
  let streamer: Streamer;
  let nextId = 1n;
  const clock = () => BigInt(Date.now()) * 1_000_000n;

  beforeAll(async () => {
    client = createEmbeddedClient({ dataDir: path.join(tmp.dir, "ledger") });
    sink = await ChdbSink.open({ path: path.join(tmp.dir, "chdb"), database: "masques" });
    await migrate(sink);
    await createFixtureAccounts(client, 16);
    nextId = await writeTransfers(client, 5_000, 16, nextId);
    streamer = await Streamer.create({ client, sink, poll_ms: 10, batch: 500 });
    streamer.start();
  }, 120_000);
  afterAll(async () => {
    await streamer?.stop();
    await sink?.close();
    await client?.close();
    tmp.cleanup();
  });

  it("finds no drift while transfers keep arriving and the streamer keeps copying", async () => {
    const r = new Reconciler({ client, sink, streamer, interval_s: 0, clock });
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        nextId = await writeTransfers(client, 50, 16, nextId);
        written += 50;
        await new Promise((res) => setImmediate(res));
      }
    })();
    try {
      for (let i = 0; i < 5; i++) {
        const run = await r.run("request");
        expect(run.error).toBeUndefined();
        expect(run.report!.drift, `run ${i}`).toEqual([]);
        expect(run.report!.ok).toBe(true);
        expect(run.trigger).toBe("request");
        expect(run.finished_at_ns).toBeGreaterThanOrEqual(run.started_at_ns);
      }
    } finally {
      writing = false;
      await writer;
    }
    expect(written).toBeGreaterThan(0);
    // caught up and quiet: every check is compared, none skipped
    const still = await r.run("request");
    expect(still.report!.ok).toBe(true);
    expect(still.report!.checks.find((c) => c.name === "balances")!.detail).toMatch(/accounts compared/);
    expect(r.last()).toBe(still);
  }, 240_000);

  it("a request during a run gets the next run, shared by every request arriving meanwhile", async () => {
    const r = new Reconciler({ client, sink, streamer, interval_s: 0, clock });
    const [a, b, c] = await Promise.all([r.run("request"), r.run("request"), r.run("request")]);
    expect(b).toBe(c); // one queued run, not one per caller
    expect(a).not.toBe(b);
    // the queued run started after the one in progress ended, so it covers the callers' writes
    expect(b.started_at_ns).toBeGreaterThanOrEqual(a.finished_at_ns);
    expect(r.last()).toBe(b);
  }, 120_000);

  it("runs on its schedule and exposes when the next run is due", async () => {
    const r = new Reconciler({ client, sink, streamer, interval_s: 1, clock });
    r.start();
    try {
      expect(r.nextRunAtNs()).toBeGreaterThan(clock());
      await expect.poll(() => r.last()?.trigger, { timeout: 60_000, interval: 50 }).toBe("schedule");
      expect(r.last()!.report!.ok).toBe(true);
    } finally {
      await r.stop();
    }
    expect(r.nextRunAtNs()).toBeUndefined();
  }, 120_000);

  it("reports drift when the copy lost a transfer", async () => {
    const r = new Reconciler({ client, sink, streamer, interval_s: 0, clock });
    const [victim] = await sink.query("SELECT toString(id) AS id FROM masques.transfers FINAL ORDER BY timestamp LIMIT 1");
    await streamer.exclusive(() => sink.exec(`ALTER TABLE masques.transfers DELETE WHERE id = toUInt128('${String(victim!.id)}') SETTINGS mutations_sync = 2`));
    const run = await r.run("request");
    expect(run.report!.ok).toBe(false);
    expect(run.report!.checks.find((c) => c.name === "transfers copied")!.ok).toBe(false);
    expect(run.report!.drift.map((d) => d.check)).toContain("transfers");
  }, 120_000);
});
