/**
 * AnalyticsService against the real daemon (embedded ledger, embedded chDB): the earnings and
 * spend it reports are the ledger's to the micro-USD once the streamer has copied them; an author
 * or agent reads only its own figures (PERMISSION_DENIED otherwise, before any query); operator
 * views are admin only; bad windows are INVALID_ARGUMENT naming the field.
 */
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AnalyticsService, TimeBucket } from "../../clients/gen/masques/ledger/v1/analytics_service_pb.js";
import { newSessionId, startHarness, type Harness } from "../sessions/harness.js";
import type { PrincipalKind } from "../../src/server/principal.js";

type Analytics = Client<typeof AnalyticsService>;

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await f();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(last, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`);
    await new Promise((r) => setTimeout(r, 100));
    last = await f();
  }
  return last;
}

async function denied(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

describe("AnalyticsService", () => {
  let h: Harness;
  const analytics = async (kind: PrincipalKind, id: string): Promise<Analytics> => {
    const token = await h.daemon.token(kind, id);
    return createClient(
      AnalyticsService,
      createConnectTransport({
        baseUrl: `http://${h.daemon.httpAddr}`,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))],
      }),
    );
  };

  beforeAll(async () => {
    h = await startHarness({ env: { STREAM_POLL_MS: "50" } });
  });
  afterAll(async () => {
    for (const l of h?.daemon.logs() ?? []) if (l.level === "error" || Number(l.level) >= 50) console.log(JSON.stringify(l).slice(0, 1500));
    await h?.stop();
  });

  it("reports an author's earnings and an agent's spend exactly as the ledger holds them", async () => {
    const agent = await h.fundedAgent("an-agent", 20_000_000n);
    const ids = [newSessionId(), newSessionId(), newSessionId()];
    const masques = ["code-reviewer", "pair-programmer", "researcher"]; // ada, ada, grace
    for (const [i, sessionId] of ids.entries()) {
      await agent.sessions.don({ sessionId, masque: masques[i]! });
      await agent.sessions.recordUsage({ events: [{ sessionId, seq: 1n, inputTokens: 1_234n * BigInt(i + 1), outputTokens: 567n, toolCalls: 3n }] });
      await agent.sessions.doff({ sessionId });
    }
    const ada = await analytics("author", "author-ada");
    const ledgerEarnings = await h.earnings("author-ada");
    expect(ledgerEarnings).toBeGreaterThan(0n);
    const earned = await until("ada's earnings in ClickHouse", () => ada.getAuthorEarnings({}), (r) => r.totalEarnedMicro === ledgerEarnings);
    expect(earned.authorId).toBe("author-ada");
    expect(earned.points.map((p) => p.masqueName).sort()).toEqual(["code-reviewer", "pair-programmer"]);
    expect(earned.points.reduce((s, p) => s + p.sessions, 0n)).toBe(2n);
    const weekly = await ada.getAuthorEarnings({ bucket: TimeBucket.WEEK });
    expect(weekly.totalEarnedMicro).toBe(ledgerEarnings);
    const monday = new Date(Number(weekly.points[0]!.bucketStart!.seconds) * 1000);
    expect(monday.getUTCDay()).toBe(1);
    expect(monday.getUTCHours()).toBe(0);

    // the copy follows the ledger: wait for the last doff to arrive, then compare exactly
    const spent = 20_000_000n - (await h.available("an-agent"));
    const me = await analytics("agent", "an-agent");
    const spend = await until("the agent's spend in ClickHouse", () => me.getAgentSpend({}), (r) => r.sessions.length === ids.length);
    expect(spend.sessions.map((s) => s.sessionId).sort()).toEqual([...ids].sort());
    expect(spend.totalPriceMicro).toBe(spent);
    for (const s of spend.sessions) {
      expect(s.authorMicro + s.platformMicro).toBe(s.priceMicro);
      expect(s.priceMicro + s.refundMicro).toBe(s.holdMicro);
    }

    const ops = await analytics("admin", "ops");
    const revenue = await ops.getPlatformRevenue({});
    const fees = spend.sessions.reduce((a, s) => a + s.platformMicro, 0n);
    expect(revenue.totalPlatformMicro).toBe(fees);
    const status = await ops.getStreamerStatus({});
    expect(status.sink).toContain("chDB");
    expect(status.openSessions).toBe(0n);
    // an admin reads an author's figures by naming the author
    expect((await ops.getAuthorEarnings({ authorId: "author-ada" })).totalEarnedMicro).toBe(ledgerEarnings);
  });

  it("refuses anyone else's figures with PERMISSION_DENIED", async () => {
    const grace = await analytics("author", "author-grace");
    const e1 = await denied(grace.getAuthorEarnings({ authorId: "author-ada" }));
    expect(e1.code).toBe(Code.PermissionDenied);
    expect(e1.rawMessage).toContain('may not read the earnings of author "author-ada"');
    // her own earnings are hers only: none of ada's masques appear
    const own = await grace.getAuthorEarnings({});
    expect(own.points.every((p) => p.masqueName === "researcher")).toBe(true);
    expect((await denied(grace.getAgentSpend({ agentId: "an-agent" }))).code).toBe(Code.PermissionDenied);
    expect((await denied(grace.getPlatformRevenue({}))).code).toBe(Code.PermissionDenied);
    const other = await analytics("agent", "someone-else");
    expect((await denied(other.getAgentSpend({ agentId: "an-agent" }))).code).toBe(Code.PermissionDenied);
    expect((await denied(other.getAuthorEarnings({}))).code).toBe(Code.PermissionDenied);
    expect((await denied(other.getStreamerStatus({}))).code).toBe(Code.PermissionDenied);
    // a token without a ledger scope reads nothing
    const token = await h.daemon.token("author", "author-ada", ["rail:settle"]);
    const noScope = createClient(
      AnalyticsService,
      createConnectTransport({
        baseUrl: `http://${h.daemon.httpAddr}`,
        httpVersion: "1.1",
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))],
      }),
    );
    expect((await denied(noScope.getAuthorEarnings({}))).code).toBe(Code.PermissionDenied);
  });

  it("names the field of a bad request", async () => {
    const ops = await analytics("admin", "ops");
    const e = await denied(ops.getAuthorEarnings({}));
    expect(e.code).toBe(Code.InvalidArgument);
    expect(e.rawMessage).toContain("author_id: required for an admin");
    const ada = await analytics("author", "author-ada");
    const backwards = await denied(ada.getAuthorEarnings({ window: { startTime: { seconds: 2_000n }, endTime: { seconds: 1_000n } } }));
    expect(backwards.code).toBe(Code.InvalidArgument);
    expect(backwards.rawMessage).toContain("window.end_time: must be after window.start_time");
    const wide = await denied(ada.getAuthorEarnings({ window: { startTime: { seconds: 0n }, endTime: { seconds: 401n * 86_400n } } }));
    expect(wide.rawMessage).toContain("window: must span at most 400 days");
    const tooMany = await denied((await analytics("agent", "an-agent")).getAgentSpend({ limit: 501 }));
    expect(tooMany.rawMessage).toContain("limit: must be at most 500");
  });
});
