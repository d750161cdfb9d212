/**
 * Issue 18 / ADR 0118: api_requests is filled exactly once without a control-plane record of the
 * stored ids. The check ("which of these request ids does api_requests hold?") and the insert run
 * in ClickHouse, one group at a time on the sink's own connection, so:
 *  - the same export sent several times at once (an exporter's retry racing its first attempt)
 *    leaves one row per event, not one per attempt;
 *  - after a SIGKILL, a retried export (and one that overlaps it) stores only what is missing;
 *  - billing stays exactly once throughout (the ledger's deterministic transfer ids);
 *  - an export billed but not stored (the crash window of "bill first, then store": billing is
 *    APPLIED, the insert never happens) is stored by its retry, whose billing is DUPLICATE and
 *    whose events are therefore checked and inserted.
 * Rows are counted physically (no FINAL): folding by ReplacingMergeTree is not relied on.
 */
import { rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AccountService, WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { SessionService } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { ChdbSink } from "../../src/streamer/chdb-sink.js";
import { newSessionId } from "../sessions/harness.js";
import { startDaemon, type Daemon } from "../support/daemon.js";

function bearer(token: string): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

let d: Daemon;
let agentToken: string;
const CLAUDE = "claude-once-1";
/** Events are stamped after the Don (a binding bills events from its Don on). */
let t0_ns = 0n;
let sessionId = "";

beforeAll(async () => {
  d = await startDaemon({ env: { OTLP_DOFF_GRACE_MS: "0" } });
  agentToken = await d.token("agent", "otel-once");
  const admin = await d.token("admin", "ops");
  const t = createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors: [bearer(agentToken)] });
  const adminT = createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors: [bearer(admin)] });
  await createClient(AccountService, t).openAgentWallet({ mode: WalletMode.PREPAID });
  await createClient(AccountService, adminT).deposit({ account: { ref: { case: "agentWallet", value: "otel-once" } }, amountMicro: 100_000_000n, idempotencyKey: "fund-once" });
}, 120_000);
afterAll(async () => {
  await d?.stop();
});

/** An OTLP/JSON export of api_request events `seqs` of CLAUDE (1,000 input tokens each). */
function exportBody(seqs: number[]): string {
  const kv = (key: string, v: string | number) => ({ key, value: typeof v === "number" ? { intValue: String(v) } : { stringValue: v } });
  return JSON.stringify({
    resourceLogs: [
      {
        resource: { attributes: [kv("service.name", "claude-code")] },
        scopeLogs: [
          {
            logRecords: seqs.map((seq) => ({
              timeUnixNano: (t0_ns + BigInt(seq) * 1_000_000n).toString(),
              body: { stringValue: "claude_code.api_request" },
              attributes: [
                kv("event.name", "api_request"), kv("session.id", CLAUDE), kv("event.sequence", seq), kv("model", "claude-sonnet-4"),
                kv("input_tokens", "1000"), kv("output_tokens", "10"), kv("cost_usd", "0.01"), kv("duration_ms", "500"),
              ],
            })),
          },
        ],
      },
    ],
  });
}

/** POST an export as an exporter would: retried on 503 (analytics still starting) until answered 200. */
async function exportUntilOk(body: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(`http://${d.httpAddr}/v1/logs`, { method: "POST", headers: { authorization: `Bearer ${agentToken}`, "content-type": "application/json" }, body });
    const text = await r.text();
    if (r.status === 200) return;
    if (r.status !== 503 || attempt >= 300) throw new Error(`export answered ${r.status}: ${text}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

test("concurrent copies of one export, then a retry after SIGKILL and an overlapping export: every event is one api_requests row and billed once", async () => {
  const sessions = () => createClient(SessionService, createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors: [bearer(agentToken)] }));
  sessionId = newSessionId();
  await sessions().don({ sessionId, masque: "researcher", maxSpendMicro: 50_000_000n, claudeSessionId: CLAUDE });
  t0_ns = BigInt(Date.now()) * 1_000_000n + 1_000_000_000n;

  // The same export four times at once: the racing copies are recognised, not inserted again.
  const first = exportBody([1, 2, 3]);
  await Promise.all([exportUntilOk(first), exportUntilOk(first), exportUntilOk(first), exportUntilOk(first)]);

  // Crash, start again, and the exporter retries; a later export overlaps it.
  await d.kill();
  await d.start();
  await exportUntilOk(first);
  await exportUntilOk(exportBody([2, 3, 4, 5]));

  expect((await sessions().getSession({ sessionId })).session!.usage).toMatchObject({ inputTokens: 5_000n, outputTokens: 50n });

  await d.shutdown();
  const sink = await ChdbSink.open({ path: path.join(d.dataDir, "chdb"), database: "masques" });
  try {
    const rows = await sink.query(
      `SELECT JSONExtractString(attributes_json, 'event.sequence') AS seq, count() AS n FROM masques.api_requests WHERE JSONExtractString(attributes_json, 'session.id') = '${CLAUDE}' GROUP BY seq ORDER BY seq`,
    );
    expect(rows).toEqual(["1", "2", "3", "4", "5"].map((seq) => ({ seq, n: "1" })));
  } finally {
    await sink.close();
  }
  await d.start();
}, 240_000);

test("billed, then the daemon stops before the insert (analytics cannot open): the retry is DUPLICATE for billing and stores each event once", async () => {
  const sessions = () => createClient(SessionService, createGrpcTransport({ baseUrl: `http://${d.grpcAddr}`, interceptors: [bearer(agentToken)] }));
  const chdb = path.join(d.dataDir, "chdb");
  await d.shutdown();
  await rename(chdb, `${chdb}.away`);
  await writeFile(chdb, "not a directory: chDB cannot open this data path\n");
  await d.start();
  const body = exportBody([6, 7]);
  const r = await fetch(`http://${d.httpAddr}/v1/logs`, { method: "POST", headers: { authorization: `Bearer ${agentToken}`, "content-type": "application/json" }, body });
  await r.text();
  expect(r.status).toBe(503);
  expect((await sessions().getSession({ sessionId })).session!.usage).toMatchObject({ inputTokens: 7_000n, outputTokens: 70n });

  // Gone before storing; back with analytics; the exporter retries.
  await d.shutdown();
  await rm(chdb);
  await rename(`${chdb}.away`, chdb);
  await d.start();
  await exportUntilOk(body);
  expect((await sessions().getSession({ sessionId })).session!.usage).toMatchObject({ inputTokens: 7_000n, outputTokens: 70n });

  await d.shutdown();
  const sink = await ChdbSink.open({ path: chdb, database: "masques" });
  try {
    const rows = await sink.query(
      `SELECT JSONExtractString(attributes_json, 'event.sequence') AS seq, count() AS n FROM masques.api_requests WHERE JSONExtractString(attributes_json, 'session.id') = '${CLAUDE}' GROUP BY seq ORDER BY seq`,
    );
    expect(rows).toEqual(["1", "2", "3", "4", "5", "6", "7"].map((seq) => ({ seq, n: "1" })));
  } finally {
    await sink.close();
  }
  await d.start();
}, 240_000);
