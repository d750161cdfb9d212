/**
 * Issue 16, "Notifications: signed webhooks": the real daemon (a child process, so it can be
 * SIGKILLed) delivers session.settled events to a real HTTP server in this test, signed per
 * Standard Webhooks (verified here with the `standardwebhooks` library); a failing endpoint is
 * retried with backoff, dead-lettered after the last attempt and redelivered on demand; deliveries
 * in flight when the daemon is killed are delivered after it restarts; author endpoints on loopback
 * are refused unless an admin allows them. A fast retry schedule comes from the configuration;
 * every wait is for a condition, never a fixed sleep.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebhookDeliveryStatus, WebhookService } from "../../clients/gen/masques/ledger/v1/webhook_service_pb.js";
import { ErrorInfoSchema } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { newSessionId, startHarness, type Harness } from "../sessions/harness.js";

/** ok: 200; fail: 500; fail2: 500 to the first two requests of each webhook-id, then 200; hang: never answers. */
type Mode = "ok" | "fail" | "fail2" | "hang";
interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  answered: number;
}

/** The receiving HTTP server: per-path behaviour, every request recorded. */
class Receiver {
  readonly requests: Received[] = [];
  readonly modes = new Map<string, Mode>();
  private readonly hanging = new Set<http.ServerResponse>();
  private readonly server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const path = req.url ?? "/";
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
      let mode = this.modes.get(path) ?? "ok";
      if (mode === "fail2") {
        const seen = this.requests.filter((r) => r.path === path && r.headers["webhook-id"] === headers["webhook-id"]).length;
        mode = seen < 2 ? "fail" : "ok";
      }
      const r: Received = { path, headers, body, answered: mode === "ok" ? 200 : mode === "fail" ? 500 : 0 };
      this.requests.push(r);
      if (mode === "hang") {
        this.hanging.add(res);
        res.on("close", () => this.hanging.delete(res));
        return;
      }
      res.writeHead(r.answered).end(mode);
    });
  });
  base = "";
  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  at(path: string): Received[] {
    return this.requests.filter((r) => r.path === path);
  }
  async stop(): Promise<void> {
    for (const r of this.hanging) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

let h: Harness;
const rx = new Receiver();
let adminHooks: Client<typeof WebhookService>;

async function hooksAs(kind: "admin" | "author" | "agent", id: string): Promise<Client<typeof WebhookService>> {
  const token = await h.daemon.token(kind, id);
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  return createClient(WebhookService, createGrpcTransport({ baseUrl: `http://${h.daemon.grpcAddr}`, interceptors: [auth] }));
}

/** Poll `probe` until it returns a value (generous bound for a loaded machine). */
async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Don + Doff one researcher session (author-grace); returns its id. */
async function settleOne(agent: string): Promise<string> {
  const c = await h.fundedAgent(agent, 5_000_000n);
  const sid = newSessionId();
  await c.sessions.don({ masque: "researcher", sessionId: sid });
  await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 1000n, outputTokens: 500n, toolCalls: 1n }] });
  await c.sessions.doff({ sessionId: sid });
  return sid;
}

function sessionIdOf(r: Received): string {
  return (JSON.parse(r.body) as { data: { session_id: string } }).data.session_id;
}

function reasonOf(err: unknown): string | undefined {
  return err instanceof ConnectError ? err.findDetails(ErrorInfoSchema)[0]?.reason : undefined;
}

beforeAll(async () => {
  await rx.start();
  h = await startHarness({
    env: {
      STREAMER_ENABLED: "false",
      WEBHOOK_POLL_MS: "50",
      WEBHOOK_TIMEOUT_MS: "3000",
      WEBHOOK_MAX_ATTEMPTS: "3",
      WEBHOOK_BACKOFF_BASE_MS: "100",
      WEBHOOK_BACKOFF_MAX_MS: "400",
    },
  });
  adminHooks = await hooksAs("admin", "ops");
}, 180_000);
afterAll(async () => {
  await h?.stop();
  await rx.stop();
});

describe("signed webhooks (issue 16)", () => {
  it("an admin endpoint receives session.settled with a valid Standard Webhooks signature; an author endpoint only its own events", async () => {
    const admin = await adminHooks.createWebhookEndpoint({ url: `${rx.base}/admin`, eventTypes: ["session.settled"] });
    expect(admin.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    // Loopback author endpoints exist only by an admin's allowance (local development).
    const grace = await adminHooks.createWebhookEndpoint({ url: `${rx.base}/grace`, authorId: "author-grace", allowPrivateNetwork: true });
    const ada = await adminHooks.createWebhookEndpoint({ url: `${rx.base}/ada`, authorId: "author-ada", allowPrivateNetwork: true });
    expect(grace.endpoint?.ownerKind).toBe("author");

    const sid = await settleOne("wh-agent-1");
    const got = await until("the admin delivery", () => rx.at("/admin").find((r) => sessionIdOf(r) === sid));
    const verified = new Webhook(admin.secret).verify(got.body, got.headers) as { type: string; data: Record<string, string> };
    expect(verified.type).toBe("session.settled");
    expect(verified.data.masque).toBe("researcher");
    expect(verified.data.author_id).toBe("author-grace");
    expect(verified.data.reason).toBe("doff");
    expect(BigInt(verified.data.author_micro) + BigInt(verified.data.platform_micro)).toBe(BigInt(verified.data.charged_micro));
    expect(got.headers["webhook-id"]).toMatch(/^msg_[a-z2-7]{26}$/);
    // A wrong secret does not verify (the signature really binds the secret).
    expect(() => new Webhook(grace.secret).verify(got.body, got.headers)).toThrow();

    const toGrace = await until("the author delivery", () => rx.at("/grace").find((r) => sessionIdOf(r) === sid));
    expect(toGrace.headers["webhook-id"]).toBe(got.headers["webhook-id"]);
    new Webhook(grace.secret).verify(toGrace.body, toGrace.headers);
    // author-ada's endpoint never gets author-grace's event: no delivery row was even created.
    const adaDeliveries = await adminHooks.listWebhookDeliveries({ endpointId: ada.endpoint!.endpointId });
    expect(adaDeliveries.deliveries.filter((d) => d.payload.includes(sid))).toEqual([]);
    expect(rx.at("/ada")).toEqual([]);

    // The author reads their own history; another author cannot see it.
    const graceHooks = await hooksAs("author", "author-grace");
    const own = await graceHooks.listWebhookDeliveries({ endpointId: grace.endpoint!.endpointId });
    const mine = own.deliveries.find((d) => d.payload.includes(sid))!;
    expect(mine.status).toBe(WebhookDeliveryStatus.SUCCEEDED);
    expect(mine.history.map((a) => a.httpStatus)).toEqual([200]);
    const adaHooks = await hooksAs("author", "author-ada");
    await expect(adaHooks.listWebhookDeliveries({ endpointId: grace.endpoint!.endpointId })).rejects.toMatchObject({ code: Code.NotFound });
  }, 120_000);

  it("an author endpoint on loopback is refused at registration unless an admin allows it", async () => {
    const grace = await hooksAs("author", "author-grace");
    for (const url of [`${rx.base}/x`, "http://localhost:9/x", "http://[::1]:9/x", "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/x"]) {
      const err = await grace.createWebhookEndpoint({ url }).catch((e: unknown) => e);
      expect(err, url).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code, url).toBe(Code.InvalidArgument);
      expect(reasonOf(err), url).toBe("ENDPOINT_ADDRESS_NOT_PUBLIC");
      expect((err as ConnectError).rawMessage, url).toMatch(/loopback, private, link-local or reserved/);
    }
    // The allowance is an admin's: an author asking for it is refused.
    await expect(grace.createWebhookEndpoint({ url: `${rx.base}/x`, allowPrivateNetwork: true })).rejects.toMatchObject({ code: Code.PermissionDenied });
    // Nor may an author register for someone else, or an agent at all.
    await expect(grace.createWebhookEndpoint({ url: "https://hooks.example.com/x", authorId: "author-ada" })).rejects.toMatchObject({ code: Code.PermissionDenied });
    const agent = await hooksAs("agent", "wh-agent-x");
    await expect(agent.createWebhookEndpoint({ url: "https://hooks.example.com/x" })).rejects.toMatchObject({ code: Code.PermissionDenied });
    // Bad input names the field and the rule.
    const bad = (await adminHooks.createWebhookEndpoint({ url: "ftp://user:pw@example.com/x", eventTypes: ["session.nope"] }).catch((e: unknown) => e)) as ConnectError;
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.rawMessage).toMatch(/url: scheme must be https or http/);
    expect(bad.rawMessage).toMatch(/url: must not carry credentials/);
    expect(bad.rawMessage).toMatch(/event_types\[0\]: unknown event type "session.nope"/);
  }, 60_000);

  it("a failing endpoint is retried with backoff until it answers 2xx", async () => {
    // Two failed attempts, then the endpoint recovers and the third (last allowed) attempt succeeds.
    rx.modes.set("/flaky", "fail2");
    const ep = await adminHooks.createWebhookEndpoint({ url: `${rx.base}/flaky` });
    const sid = await settleOne("wh-agent-2");
    const ok = await until("a 200", () => rx.at("/flaky").find((r) => sessionIdOf(r) === sid && r.answered === 200));
    new Webhook(ep.secret).verify(ok.body, ok.headers);
    const all = rx.at("/flaky").filter((r) => sessionIdOf(r) === sid);
    expect(new Set(all.map((r) => r.headers["webhook-id"])).size).toBe(1); // one event, retried
    const d = await until("the succeeded delivery", async () => {
      const r = await adminHooks.listWebhookDeliveries({ endpointId: ep.endpoint!.endpointId, status: WebhookDeliveryStatus.SUCCEEDED });
      return r.deliveries.find((x) => x.payload.includes(sid));
    });
    expect(all.map((r) => r.answered)).toEqual([500, 500, 200]);
    expect(d.history.map((a) => a.httpStatus)).toEqual([500, 500, 200]);
    expect(d.history.at(-1)!.httpStatus).toBe(200);
    expect(d.history[0]!.error).toBe("HTTP 500");
    // Backoff: the attempts are spaced by at least the configured base delay.
    const t = d.history.map((a) => Number(a.attemptTime!.seconds) * 1000 + a.attemptTime!.nanos / 1e6);
    expect(t[1]! - t[0]!).toBeGreaterThanOrEqual(100);
  }, 120_000);

  it("an endpoint failing every attempt is dead-lettered after the last one, and redelivered on demand", async () => {
    rx.modes.set("/dead", "fail");
    const ep = await adminHooks.createWebhookEndpoint({ url: `${rx.base}/dead` });
    const sid = await settleOne("wh-agent-3");
    const dead = await until("the dead-lettered delivery", async () => {
      const r = await adminHooks.listWebhookDeliveries({ endpointId: ep.endpoint!.endpointId, status: WebhookDeliveryStatus.DEAD });
      return r.deliveries.find((x) => x.payload.includes(sid));
    });
    expect(dead.attempts).toBe(3);
    expect(dead.history.map((a) => a.httpStatus)).toEqual([500, 500, 500]);
    expect(rx.at("/dead").filter((r) => sessionIdOf(r) === sid)).toHaveLength(3);

    rx.modes.set("/dead", "ok");
    const again = await adminHooks.redeliverWebhook({ deliveryId: dead.deliveryId });
    expect(again.delivery?.status).toBe(WebhookDeliveryStatus.PENDING);
    const ok = await until("the redelivery", () => rx.at("/dead").find((r) => sessionIdOf(r) === sid && r.answered === 200));
    new Webhook(ep.secret).verify(ok.body, ok.headers);
    const after = await until("succeeded after redelivery", async () => {
      const r = await adminHooks.listWebhookDeliveries({ endpointId: ep.endpoint!.endpointId, status: WebhookDeliveryStatus.SUCCEEDED });
      return r.deliveries.find((x) => x.deliveryId === dead.deliveryId);
    });
    expect(after.history.map((a) => a.httpStatus)).toEqual([500, 500, 500, 200]);
  }, 120_000);

  it("nothing is lost across a daemon SIGKILL: deliveries in flight at the kill are delivered after the restart", async () => {
    rx.modes.set("/crash", "hang");
    const ep = await adminHooks.createWebhookEndpoint({ url: `${rx.base}/crash` });
    const sids: string[] = [];
    for (let i = 0; i < 4; i++) sids.push(await settleOne(`wh-agent-crash-${i}`));
    // Every event has reached the endpoint, which holds the requests open: all in flight.
    await until("4 requests in flight", () => (new Set(rx.at("/crash").map(sessionIdOf)).size === 4 ? true : undefined));
    await h.daemon.kill();
    rx.modes.set("/crash", "ok");
    await h.daemon.start();
    adminHooks = await hooksAs("admin", "ops");
    for (const sid of sids) {
      const ok = await until(`the delivery of ${sid} after the restart`, () => rx.at("/crash").find((r) => sessionIdOf(r) === sid && r.answered === 200));
      new Webhook(ep.secret).verify(ok.body, ok.headers);
    }
    const r = await until("4 succeeded deliveries", async () => {
      const l = await adminHooks.listWebhookDeliveries({ endpointId: ep.endpoint!.endpointId, status: WebhookDeliveryStatus.SUCCEEDED });
      return l.deliveries.length === 4 ? l : undefined;
    });
    expect(new Set(r.deliveries.map((d) => d.eventId)).size).toBe(4);
  }, 180_000);
});
