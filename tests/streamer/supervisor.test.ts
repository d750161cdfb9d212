/**
 * ADR 0119: the daemon's streamer supervisor. Retry delays double from STREAMER_RETRY_MIN_MS and
 * never exceed STREAMER_RETRY_MAX_MS; a real start (embedded ledger, embedded chDB) that fails
 * because chDB's directory cannot be opened is retried until it succeeds (chDB opens a directory
 * in the same process after a failed open), and stop() cancels pending retries.
 */
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import { startStreamer } from "../../src/streamer/index.js";
import { retryDelayMs, superviseStreamer } from "../../src/streamer/supervisor.js";
import { createFixtureAccounts, tempDir, writeTransfers } from "./support.js";

describe("retryDelayMs", () => {
  it("doubles from the minimum, is capped at the maximum, and jitters within [delay/2, delay]", () => {
    const top = () => 0.999999;
    const bottom = () => 0;
    expect([1, 2, 3, 4, 5, 6, 7, 40].map((n) => retryDelayMs(n, 1000, 30_000, top))).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect([1, 2, 6, 1000].map((n) => retryDelayMs(n, 1000, 30_000, bottom))).toEqual([500, 1000, 15_000, 15_000]);
    // A minimum above the maximum is held to the maximum.
    expect(retryDelayMs(1, 5000, 800, top)).toBe(800);
    expect(() => retryDelayMs(0, 1000, 30_000)).toThrow(/failures must be an integer >= 1/);
  });
});

describe("superviseStreamer with a real start (embedded ledger, embedded chDB)", () => {
  const tmp = tempDir("supervisor");
  const chdbPath = path.join(tmp.dir, "chdb");
  let client: EmbeddedClient;
  const config = loadConfig({ MASQUES_DATA_DIR: tmp.dir, CHDB_PATH: chdbPath, STREAM_POLL_MS: "20", RECONCILE_INTERVAL_S: "0" });

  beforeAll(async () => {
    client = createEmbeddedClient({ dataDir: path.join(tmp.dir, "ledger") });
    await createFixtureAccounts(client, 8);
    await writeTransfers(client, 50, 8, 1000n);
  });
  afterAll(async () => {
    await client?.close();
    tmp.cleanup();
  });

  const until = async (what: string, ok: () => boolean): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`${what}: not reached within 60 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it("stop() while retrying cancels the retries: no attempt runs afterwards", async () => {
    await writeFile(chdbPath, "not a directory\n");
    let attempts = 0;
    const sup = superviseStreamer({
      start: () => (attempts++, startStreamer({ ledger: client, config })),
      retry_min_ms: 10,
      retry_max_ms: 40,
    });
    expect(await sup.begin()).toBe(false);
    await until("two failed attempts", () => sup.state().start_failures >= 2);
    expect(sup.state()).toMatchObject({ state: "retrying", last_error: expect.stringMatching(/chDB at .* failed to open/) });
    await sup.stop();
    const after = attempts;
    await rm(chdbPath);
    // Several retry delays (40 ms at most) later: no attempt ran after stop, nothing started.
    const t0 = Date.now();
    while (Date.now() - t0 < 400) await new Promise((r) => setTimeout(r, 20));
    expect(attempts).toBe(after);
    expect(sup.state()).toMatchObject({ state: "stopped" });
    expect(sup.current()).toBeUndefined();
  });

  it("retries until chDB can be opened, then copies the ledger from the cursor (chDB opens in the same process after failing to)", async () => {
    // chDB itself refuses the directory: a plain file where it keeps its `data` directory.
    await mkdir(chdbPath, { recursive: true });
    const blocker = path.join(chdbPath, "data");
    await writeFile(blocker, "not a directory\n");
    let started = 0;
    const sup = superviseStreamer({
      start: () => startStreamer({ ledger: client, config }),
      retry_min_ms: 10,
      retry_max_ms: 40,
      on_started: () => started++,
    });
    try {
      expect(await sup.begin()).toBe(false);
      await until("a retry", () => sup.state().start_failures >= 2);
      expect(sup.state().last_error).toMatch(/chDB at .* failed to open: Failed to create connection/);
      await rm(blocker);
      await until("running", () => sup.current() !== undefined);
      expect(sup.state()).toEqual({ state: "running", start_failures: expect.any(Number) as number });
      expect(started).toBe(1);
      const running = sup.current()!;
      await until("caught up", () => running.streamer.cursor.transfers > 0n && running.lag().caught_up);
      const [row] = await running.sink.query("SELECT count() AS n FROM masques.transfers FINAL");
      expect(row!.n).toBe("50");
    } finally {
      await sup.stop();
    }
    expect(sup.current()).toBeUndefined();
  });
});
