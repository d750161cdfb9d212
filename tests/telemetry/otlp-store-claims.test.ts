/**
 * Issue 18 / ADR 0118 "Bill first": the store skips the stored-ids check for rows their export
 * just billed APPLIED, so a retry of the same events racing in this daemon must not check before
 * the first attempt's insert has landed. Claims order them: the retry owns none of the events,
 * waits until the first attempt has stored and released them, then its (checked) rows add
 * nothing. Real chDB; rows counted physically (no FINAL).
 */
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ChdbSink, migrate } from "../../src/streamer/index.js";
import { encodeTsv, TsvLine } from "../../src/streamer/sink.js";
import { groupedStore, type ApiRow } from "../../src/telemetry/ingest.js";
import { tempDir } from "../streamer/support.js";

const tmp = tempDir("otlp-claims");
let sink: ChdbSink;

beforeAll(async () => {
  sink = await ChdbSink.open({ path: path.join(tmp.dir, "chdb"), database: "masques" });
  await migrate(sink);
}, 120_000);
afterAll(async () => {
  await sink?.close();
  tmp.cleanup();
});

const eventId = (n: number) => n.toString(16).padStart(32, "0");
/** An api_requests row (API_REQUEST_COLUMNS order) for event `id`. */
const row = (id: string): ApiRow => {
  const cells = [
    "2026-11-30 08:00:00.000000001", id, 7n, "agent-a", "claude-code", "claude-sonnet-4", "api_request", 200, 500,
    1000n, 10n, 0n, 0n, 10_000n, "", "", "{}",
  ];
  return { request_id: id, day: "2026-11-30", line: new TsvLine(encodeTsv([cells]).slice(0, -1)) };
};

async function physicalRows(ids: readonly string[]): Promise<Record<string, string>> {
  const found = await sink.query(
    `SELECT request_id, count() AS n FROM masques.api_requests WHERE request_id IN (${ids.map((i) => `'${i}'`).join(",")}) GROUP BY request_id`,
  );
  return Object.fromEntries(found.map((r) => [String(r.request_id), String(r.n)]));
}

test("a retry racing its first attempt owns none of its events and waits for the first attempt's store; then its checked rows add nothing", async () => {
  const store = groupedStore(() => sink);
  const ids = [eventId(1), eventId(2)];
  const first = store.claim(ids);
  expect([...first.owned]).toEqual(ids);
  const retry = store.claim(ids);
  expect(retry.owned.size).toBe(0);
  let retryReleased = false;
  const retryWaits = retry.others.then(() => {
    retryReleased = true;
  });

  // The first attempt's billing APPLIED both events: inserted without the check.
  expect(await first.store(ids.map(row), new Set(ids))).toBe(2);
  await new Promise((res) => setImmediate(res));
  expect(retryReleased).toBe(false);
  first.release();
  await retryWaits;

  // The retry (billing DUPLICATE) stores with the check: nothing new.
  expect(await retry.store(ids.map(row), new Set())).toBe(0);
  retry.release();
  expect(await physicalRows(ids)).toEqual({ [ids[0]!]: "1", [ids[1]!]: "1" });

  // Once released, a later export owns the events again (claims do not leak).
  const later = store.claim(ids);
  expect(later.owned.size).toBe(2);
  later.release();
}, 120_000);
