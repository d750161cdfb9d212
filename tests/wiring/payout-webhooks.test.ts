/**
 * Issues 13 + 16, wiring (ADR 0109): payout state changes and the settlement outbox's destination
 * change notifications reach the AUTHOR's endpoint — a real HTTP server, through the real
 * dispatcher, signed per Standard Webhooks — and never another author's. Each event is enqueued in
 * the transaction that records the change, so a repeated store call adds no second event.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { Webhook } from "standardwebhooks";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import type { ControlPlane } from "../../src/controlplane/index.js";
import { createLogger } from "../../src/log.js";
import { DESTINATION_CHANGE_PENDING, destinationChangeNotification } from "../../src/services/settlement/notifications.js";
import { startDispatcher, type Dispatcher } from "../../src/webhooks/dispatcher.js";
import { createTestDb, type TestDb } from "../controlplane/support.js";

const NOW = 1_800_000_000_000_000_000n;
interface Got {
  path: string;
  headers: Record<string, string>;
  body: string;
}
const received: Got[] = [];
const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c: Buffer) => (body += c.toString()));
  req.on("end", () => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
    received.push({ path: req.url ?? "/", headers, body });
    res.writeHead(200).end("ok");
  });
});

let t: TestDb;
let cp: ControlPlane;
let dispatcher: Dispatcher;
let annSecret = "";
let base = "";

/** Poll (and tick the dispatcher) until the delivery arrives (bounded; no fixed sleep decides). */
async function deliveredTo(path: string, type: string, key: string, value: string): Promise<Got> {
  for (let i = 0; i < 2000; i++) {
    const hit = received.find((g) => g.path === path && (JSON.parse(g.body) as { type: string; data: Record<string, string> }).type === type && (JSON.parse(g.body) as { data: Record<string, string> }).data[key] === value);
    if (hit) return hit;
    await dispatcher.tick();
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no ${type} with ${key}=${value} reached ${path}`);
}

/** Signature check against the signed timestamp (the store's clock here is a fixed instant). */
function verify(secret: string, g: Got): { type: string; data: Record<string, string> } {
  const expected = new Webhook(secret).sign(g.headers["webhook-id"]!, new Date(Number(g.headers["webhook-timestamp"]) * 1000), g.body);
  expect(g.headers["webhook-signature"]!.split(" ")).toContain(expected);
  return JSON.parse(g.body) as { type: string; data: Record<string, string> };
}

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t = await createTestDb();
  cp = await t.open();
  const ann = await cp.webhooks.createEndpoint({ owner_kind: "author", owner_id: "ann", url: `${base}/ann`, event_types: [], allow_private_network: true, create_time_ns: NOW - 1n });
  await cp.webhooks.createEndpoint({ owner_kind: "author", owner_id: "bob", url: `${base}/bob`, event_types: [], allow_private_network: true, create_time_ns: NOW - 1n });
  annSecret = ann.secret;
  const config = loadConfig({ MASQUES_DATA_DIR: t.dataDir, WEBHOOK_POLL_MS: "50", WEBHOOK_BACKOFF_BASE_MS: "10", WEBHOOK_BACKOFF_MAX_MS: "10" });
  const quiet = new Writable({ write: (_c, _e, cb) => cb() });
  dispatcher = startDispatcher({ store: cp.webhooks, log: createLogger({ destination: quiet }), clock: () => NOW + 1_000n, config });
}, 120_000);
afterAll(async () => {
  await dispatcher?.stop();
  await cp?.close();
  await t?.dispose();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe("payout and destination webhooks reach the author (issues 13, 16)", () => {
  it("payout.requested, payout.submitted and payout.completed, each once, only to the payout's author", async () => {
    const s = cp.settlement;
    const p = await s.insertPayout({ payout_id: "po_wired_1", author_id: "ann", idempotency_key: "k1", rail: "base", request: "amount:5000000", amount_micro: 5_000_000n, fee_micro: 100_000n, net_micro: 4_900_000n, quote_expire_time_ns: NOW + 60_000_000_000n, create_time_ns: NOW });
    await s.fixDestination(p.payout_id, "0x" + "11".repeat(20), NOW);
    await s.markHeld(p.payout_id, NOW);
    await s.markHeld(p.payout_id, NOW + 1n); // a retried confirm: no second event
    const requested = verify(annSecret, await deliveredTo("/ann", "payout.requested", "payout_id", p.payout_id));
    expect(requested.data).toMatchObject({ author_id: "ann", amount_micro: "5000000", fee_micro: "100000", net_micro: "4900000", status: "queued" });

    const [claimed] = await s.claim("base", NOW, NOW + 60_000_000_000n, 10);
    expect(claimed?.payout_id).toBe(p.payout_id);
    const rec = await s.recordSigned({ payout_id: p.payout_id, now_ns: NOW + 2n, signed_transaction: new Uint8Array([1, 2, 3]), tx_ref: "0xabc", replay_guard: 7n, replaces_tx_ref: "" });
    expect(rec.ok).toBe(true);
    expect(verify(annSecret, await deliveredTo("/ann", "payout.submitted", "payout_id", p.payout_id)).data.tx_ref).toBe("0xabc");
    await s.markSettled(p.payout_id, "posted", NOW + 3n, null);
    await s.markSettled(p.payout_id, "posted", NOW + 4n, null); // a repeated post: no second event
    expect(verify(annSecret, await deliveredTo("/ann", "payout.completed", "payout_id", p.payout_id)).data.status).toBe("completed");

    const events = await sql<{ event_type: string }>`select event_type from webhook_event where payload like ${"%" + p.payout_id + "%"} order by event_type`.execute(cp.db);
    expect(events.rows.map((r) => r.event_type)).toEqual(["payout.completed", "payout.requested", "payout.submitted"]);
    expect(received.filter((g) => g.path === "/bob" && g.body.includes(p.payout_id))).toEqual([]);
  }, 120_000);

  it("a failed payout is payout.failed with its reason", async () => {
    const s = cp.settlement;
    const p = await s.insertPayout({ payout_id: "po_wired_2", author_id: "ann", idempotency_key: "k2", rail: "base", request: "amount:1000000", amount_micro: 1_000_000n, fee_micro: 0n, net_micro: 1_000_000n, quote_expire_time_ns: NOW + 60_000_000_000n, create_time_ns: NOW });
    await s.fixDestination(p.payout_id, "0x" + "11".repeat(20), NOW);
    await s.markHeld(p.payout_id, NOW);
    expect(await s.setVoidIntent(p.payout_id, "failed", "reverted on chain", NOW + 1n)).not.toBeNull();
    await s.markSettled(p.payout_id, "voided", NOW + 2n, null);
    const failed = verify(annSecret, await deliveredTo("/ann", "payout.failed", "payout_id", p.payout_id));
    expect(failed.data).toMatchObject({ status: "failed", failure_reason: "reverted on chain" });
  }, 120_000);

  it("a destination change notification is relayed from the settlement outbox to the author's endpoint", async () => {
    const s = cp.settlement;
    const active = { address: "0x" + "11".repeat(20), effective_time_ns: NOW, create_time_ns: NOW };
    await s.putDestinations("ann", "base", { active, pending: null });
    const pending = { address: "0x" + "22".repeat(20), effective_time_ns: NOW + 3_600_000_000_000n, create_time_ns: NOW };
    const n = destinationChangeNotification({ event_type: DESTINATION_CHANGE_PENDING, author_id: "ann", rail: "base", address: pending.address, active_address: active.address, effective_time_ns: pending.effective_time_ns, now_ns: NOW });
    await s.putDestinations("ann", "base", { active, pending }, n);
    const got = verify(annSecret, await deliveredTo("/ann", "payout_destination.change_pending", "address", pending.address));
    expect(got.data).toMatchObject({ author_id: "ann", rail: "base", address: pending.address, active_address: active.address });
    const unrelayed = await sql<{ n: number }>`select count(*)::int as n from settlement_notification where relay_time_ns is null`.execute(cp.db);
    expect(unrelayed.rows[0]!.n).toBe(0);
    expect(received.filter((g) => g.path === "/bob" && g.body.includes(pending.address))).toEqual([]);
  }, 120_000);
});
