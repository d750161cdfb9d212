/**
 * Issue 16, wiring (ADR 0109): every revenue-rule transition — created, submitted, approved
 * (cooling), rejected, activated by the daemon's own scheduler at the end of cooling, superseded,
 * emergency-activated — reaches a real HTTP endpoint an admin registered, as the matching
 * `revenue_rule.*` event with a valid Standard Webhooks signature. The daemon's clock is injected
 * (cooling passes by moving it); every wait is for a condition.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RevenueRuleScopeKind } from "../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { APPROVE, EMERGENCY, WRITE, eventually, startGovDaemon, type GovDaemon } from "../governance/harness.js";

const COOLING_S = 3600;

interface Got {
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
    received.push({ headers, body });
    res.writeHead(200).end("ok");
  });
});

let d: GovDaemon;
let base = "";
let secret = "";

type Ev = { type: string; data: Record<string, string | number | boolean | null> };

/**
 * The event in `g`, after checking its Standard Webhooks signature. The daemon's clock runs ahead
 * of the wall clock here (cooling passes by moving it), so `verify`'s freshness window would
 * refuse it: the signature is recomputed with the library for the signed timestamp instead.
 */
function verified(g: Got): Ev {
  const wh = new Webhook(secret);
  const expected = wh.sign(g.headers["webhook-id"]!, new Date(Number(g.headers["webhook-timestamp"]) * 1000), g.body);
  if (!g.headers["webhook-signature"]!.split(" ").includes(expected)) throw new Error(`bad signature on ${g.headers["webhook-id"]}`);
  return JSON.parse(g.body) as Ev;
}

/** The verified events about `rule_id`, in arrival order (each webhook-id once). */
function eventsOf(rule_id: string): Ev[] {
  const seen = new Set<string>();
  const out: Ev[] = [];
  for (const g of received) {
    const ev = verified(g);
    if (ev.data.rule_id !== rule_id || seen.has(g.headers["webhook-id"]!)) continue;
    seen.add(g.headers["webhook-id"]!);
    out.push(ev);
  }
  return out;
}

async function waitFor(rule_id: string, type: string): Promise<Ev> {
  return eventually(async () => eventsOf(rule_id).find((e) => e.type === type), `${type} for ${rule_id}`);
}

beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  d = await startGovDaemon({
    REVENUE_RULE_COOLING_S: String(COOLING_S),
    AUDIT_ANCHOR_INTERVAL_S: "0",
    WEBHOOK_POLL_MS: "50",
    WEBHOOK_BACKOFF_BASE_MS: "100",
    WEBHOOK_BACKOFF_MAX_MS: "400",
  });
  const ops = await d.as("grpc", "admin", "ops", ["admin"]);
  const ep = await ops.hooks.createWebhookEndpoint({ url: `${base}/rules` });
  secret = ep.secret;
}, 120_000);
afterAll(async () => {
  await d?.stop();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe("revenue-rule transitions are webhooks (issue 16)", () => {
  it("created, submitted, approved, activated by the scheduler and superseded reach an admin endpoint, signed", async () => {
    const alice = await d.as("grpc", "admin", "alice", WRITE);
    const bob = await d.as("grpc", "admin", "bob", APPROVE);
    const author = "author-wired";
    const old = (await alice.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: author, authorBps: 9000, platformFeeBps: 1000, description: "old" })).rule!;
    await alice.admin.submitRevenueRule({ ruleId: old.ruleId });
    await bob.admin.approveRevenueRule({ ruleId: old.ruleId });
    d.advance(COOLING_S + 1);
    await waitFor(old.ruleId, "revenue_rule.activated");

    const neu = (await alice.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: author, authorBps: 8000, platformFeeBps: 2000, description: "raise" })).rule!;
    await alice.admin.submitRevenueRule({ ruleId: neu.ruleId });
    await bob.admin.approveRevenueRule({ ruleId: neu.ruleId });
    const approved = await waitFor(neu.ruleId, "revenue_rule.approved");
    expect(approved.data).toMatchObject({ rule_id: neu.ruleId, scope: `author:${author}`, author_share_bps: 8000, platform_fee_bps: 2000, actor: "bob", approver: "bob" });
    expect(typeof approved.data.effective_time).toBe("string");
    d.advance(COOLING_S + 1);
    const activated = await waitFor(neu.ruleId, "revenue_rule.activated");
    expect(activated.data).toMatchObject({ actor: "masques-ledger", emergency: false });
    const superseded = await waitFor(old.ruleId, "revenue_rule.superseded");
    expect(superseded.data).toEqual({ rule_id: old.ruleId, scope: `author:${author}`, superseded_by: neu.ruleId });
    // Deliveries run concurrently: arrival order is not the order of the facts, the set is.
    expect(eventsOf(neu.ruleId).map((e) => e.type).sort()).toEqual(["revenue_rule.activated", "revenue_rule.approved", "revenue_rule.created", "revenue_rule.submitted"]);
    expect(eventsOf(old.ruleId).map((e) => e.type).sort()).toEqual([
      "revenue_rule.activated",
      "revenue_rule.approved",
      "revenue_rule.created",
      "revenue_rule.submitted",
      "revenue_rule.superseded",
    ]);
  }, 180_000);

  it("rejected and emergency activation reach it too", async () => {
    const alice = await d.as("grpc", "admin", "alice", WRITE);
    const bob = await d.as("grpc", "admin", "bob", APPROVE);
    const carol = await d.as("grpc", "admin", "carol", EMERGENCY);
    const r = (await alice.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: "author-rej", authorBps: 1000, platformFeeBps: 9000, description: "" })).rule!;
    await alice.admin.submitRevenueRule({ ruleId: r.ruleId });
    await bob.admin.rejectRevenueRule({ ruleId: r.ruleId, reason: "fee far too high" });
    expect((await waitFor(r.ruleId, "revenue_rule.rejected")).data).toMatchObject({ approver: "bob", reason: "fee far too high" });

    const e = (await alice.admin.createRevenueRule({ scopeKind: RevenueRuleScopeKind.MASQUE, scopeValue: "researcher", authorBps: 7000, platformFeeBps: 3000, description: "" })).rule!;
    await carol.admin.emergencyActivateRevenueRule({ ruleId: e.ruleId, justification: "incident 42" });
    expect((await waitFor(e.ruleId, "revenue_rule.activated")).data).toMatchObject({ actor: "carol", emergency: true, justification: "incident 42" });
  }, 120_000);
});
