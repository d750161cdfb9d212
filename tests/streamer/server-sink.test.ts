/**
 * The ClickHouse-server sink (@clickhouse/client) runs the very same migrations, streamer SQL and
 * reconciliation. No ClickHouse server runs here, so the client is given chDB's
 * @clickhouse/client connection (chdb/connection): everything above the transport — the client
 * calls, the TabSeparated inserts, settings, JSON parsing of 128-bit values — is exercised for real.
 */
import path from "node:path";
import { createChdbConnection } from "chdb/connection";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import { ClickHouseSink, loadMigrations, migrate, readCursors, reconcile, Streamer } from "../../src/streamer/index.js";
import type { ClickHouseConnection } from "../../src/streamer/clickhouse-sink.js";
import { createSessionAccounts, runSession } from "./sessions-fixture.js";
import { clickhouseAggregates, createFixtureAccounts, ledgerAggregates, scalar, tempDir, writeTransfers } from "./support.js";

describe("ClickHouse server sink (@clickhouse/client)", () => {
  const tmp = tempDir("server-sink");
  let client: EmbeddedClient;
  let sink: ClickHouseSink;

  beforeAll(() => {
    client = createEmbeddedClient({ dataDir: path.join(tmp.dir, "ledger") });
    sink = new ClickHouseSink({
      url: "http://localhost:8123",
      database: "masques_server",
      // chdb types its connection against its own copy of @clickhouse/client-common's declarations,
      // structurally the same interface but a nominally different settings type: bridge the two.
      connection: createChdbConnection({ path: path.join(tmp.dir, "clickhouse") }) as unknown as ClickHouseConnection,
    });
  });
  afterAll(async () => {
    await sink?.close();
    await client?.close();
    tmp.cleanup();
  });

  it("migrates idempotently through the client", async () => {
    expect((await migrate(sink)).applied).toEqual(loadMigrations().map((m) => m.name));
    expect((await migrate(sink)).applied).toEqual([]);
  });

  it("streams transfers and sessions with the same results as the embedded sink, and reconciles", async () => {
    await createFixtureAccounts(client, 16);
    await writeTransfers(client, 20_000, 16, 1n);
    await createSessionAccounts(client, "agent-s", "author-s");
    await runSession(client, {
      name: "server-doff", agent: "agent-s", author: "author-s", masque_index: 3, mode: "live", hold_micro: 2_000_000n, timeout_s: 600,
      usage: [{ input_tokens: 1_000n, output_tokens: 2_000n, tool_calls: 3n }], end: "doff",
    });
    const s = await Streamer.create({ client, sink, batch: 4096 });
    const r = await s.syncOnce();
    expect(r.transfers).toBeGreaterThan(20_000);
    expect(await scalar(sink, "SELECT count() FROM {{db}}.transfers FINAL")).toBe(String(r.transfers));
    expect(await clickhouseAggregates(sink)).toEqual(await ledgerAggregates(client));
    expect((await readCursors(sink)).transfers).toBe(s.cursor.transfers);
    const [session] = await sink.query("SELECT status, hold_micro, price_micro + 0 = author_micro + platform_micro AS split_ok FROM masques_server.sessions FINAL");
    expect(session).toEqual({ status: "closed", hold_micro: "2000000", split_ok: 1 });
    const report = await reconcile({ client, sink });
    expect(report.drift).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
