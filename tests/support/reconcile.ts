/**
 * Issue 5: `reconcile` runs after every end-to-end scenario. Each e2e file ends with this check:
 * stop the daemon gracefully (its streamer flushes), then compare the daemon's own ClickHouse copy
 * (embedded chDB in its data dir) with its ledger: counts and sums per account, balances,
 * conservation per ledger and every session's split. Any drift fails the file.
 */
import { expect } from "vitest";
import { loadConfig } from "../../src/config.js";
import { formatReconcileReport, reconcileFromConfig } from "../../src/streamer/index.js";
import type { Daemon } from "./daemon.js";

export async function expectAnalyticsReconcile(daemon: Daemon): Promise<void> {
  expect(await daemon.shutdown()).toBe(0);
  const { report } = await reconcileFromConfig(loadConfig({ MASQUES_DATA_DIR: daemon.dataDir }), { sync: false });
  expect(report.drift, formatReconcileReport(report)).toEqual([]);
  expect(report).toMatchObject({ ok: true, ledger_events_after_cursor: 0 });
}
