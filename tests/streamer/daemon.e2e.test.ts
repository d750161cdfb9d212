/**
 * The streamer inside the real daemon (`serve`, STREAMER_ENABLED by default): sessions and
 * 100,000+ usage transfers made through the public API arrive in the daemon's embedded chDB with
 * the ledger's counts, sums and session figures, and reconcile finds no drift.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStatus, type Session } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { idFromHex } from "../../src/domain/ids.js";
import { ChdbSink, reconcileFromConfig } from "../../src/streamer/index.js";
import { newSessionId, startHarness, type Harness } from "../sessions/harness.js";
import { scalar } from "./support.js";

const EVENTS = 34_000; // x 3 kinds = 102,000 usage transfers
const BATCH = 2_000;

describe("streamer in the daemon", () => {
  let h: Harness;
  const sessions: Session[] = [];

  beforeAll(async () => {
    h = await startHarness({ env: { STREAM_POLL_MS: "50" } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it("copies what the daemon writes and reconciles after a graceful shutdown", async () => {
    const c = await h.fundedAgent("cdc-agent", 50_000_000n);
    const bulk = newSessionId();
    await c.sessions.don({ sessionId: bulk, masque: "researcher" });
    for (let seq = 1; seq <= EVENTS; seq += BATCH) {
      const events = Array.from({ length: Math.min(BATCH, EVENTS - seq + 1) }, (_, i) => ({
        sessionId: bulk, seq: BigInt(seq + i), inputTokens: 3n, outputTokens: 2n, toolCalls: 1n,
      }));
      await c.sessions.recordUsage({ events });
    }
    sessions.push((await c.sessions.doff({ sessionId: bulk })).session!);
    const small = newSessionId();
    await c.sessions.don({ sessionId: small, masque: "researcher" });
    await c.sessions.recordUsage({ events: [{ sessionId: small, seq: 1n, inputTokens: 12_345n, outputTokens: 678n, toolCalls: 9n }] });
    sessions.push((await c.sessions.doff({ sessionId: small })).session!);
    const cancelled = newSessionId();
    await c.sessions.don({ sessionId: cancelled, masque: "researcher" });
    sessions.push((await c.sessions.cancel({ sessionId: cancelled })).session!);
    expect(sessions.map((s) => s.status)).toEqual([SessionStatus.DOFFED, SessionStatus.DOFFED, SessionStatus.CANCELLED]);

    expect(await h.daemon.shutdown()).toBe(0);
    const logs = h.daemon.logs();
    expect(logs.some((l) => l.msg === "streamer started")).toBe(true);
    const stopped = logs.find((l) => l.msg === "streamer stopped");
    expect(stopped, JSON.stringify(logs.filter((l) => String(l.msg).startsWith("streamer")))).toBeDefined();

    // the daemon's own copy, compared as it left it (no catch-up by reconcile)
    const config = loadConfig({ MASQUES_DATA_DIR: h.daemon.dataDir });
    const { report } = await reconcileFromConfig(config, { sync: false });
    expect(report.drift).toEqual([]);
    expect(report).toMatchObject({ ok: true, ledger_events_after_cursor: 0 });
    expect(report.clickhouse_transfers).toBeGreaterThan(3 * EVENTS);

    const sink = await ChdbSink.open({ path: `${h.daemon.dataDir}/chdb`, database: "masques" });
    try {
      expect(await scalar(sink, "SELECT sum(quantity) FROM {{db}}.usage WHERE kind = 'input_tokens'")).toBe(String(3 * EVENTS + 12_345));
      // the streamer's lag metric: a 'total' row for the run, covering every event it copied
      const [total] = await sink.query("SELECT events, lag_p99_ms >= lag_p50_ms AS ordered FROM masques.streamer_stats WHERE scope = 'total'");
      expect(total).toMatchObject({ ordered: 1 });
      expect(Number(total!.events)).toBeGreaterThanOrEqual(3 * EVENTS);
      for (const s of sessions) {
        const [row] = await sink.query(
          `SELECT status, hold_micro, price_micro, author_micro, platform_micro, refund_micro, usage_input_tokens, platform_fee_bps
           FROM masques.sessions FINAL WHERE session_id = toUInt128('${idFromHex(s.sessionId)}')`,
        );
        expect(row).toEqual({
          status: s.status === SessionStatus.CANCELLED ? "cancelled" : "closed",
          hold_micro: String(s.holdMicro),
          price_micro: String(s.postedMicro),
          author_micro: String(s.authorShareMicro),
          platform_micro: String(s.platformFeeMicro),
          refund_micro: String(s.refundMicro),
          usage_input_tokens: String(s.usage!.inputTokens),
          platform_fee_bps: s.platformFeeBps,
        });
      }
    } finally {
      await sink.close();
    }
  });
});
