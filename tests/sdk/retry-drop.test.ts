/**
 * A retry after a dropped connection never charges twice: a proxy cuts the connection after the
 * daemon handled the request and before the client read the answer; the SDK retries with the same
 * idempotency key / session id / sequence number, gets the original result, and the ledger shows
 * one movement of money. Over gRPC (HTTP/2) and Connect (HTTP/1.1).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import path from "node:path";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { DropProxy } from "./drop-proxy.js";
import { MasquesClient } from "../../clients/sdk/client.js";
import { SessionStatus } from "../../clients/sdk/sessions.js";
import { UsageOutcome } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";

const MASQUES_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../masques");

let d: Daemon;
let grpcProxy: DropProxy;
let httpProxy: DropProxy;
let grpcUrl: string;
let httpUrl: string;

function hostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(":");
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)) };
}

beforeAll(async () => {
  d = await startDaemon({ env: { MASQUES_DIR } });
  grpcProxy = new DropProxy(hostPort(d.grpcAddr), "h2");
  httpProxy = new DropProxy(hostPort(d.httpAddr), "http1");
  grpcUrl = await grpcProxy.listen();
  httpUrl = await httpProxy.listen();
});

afterAll(async () => {
  await grpcProxy?.close();
  await httpProxy?.close();
  await d?.stop();
});

const fast = { max_attempts: 5, initial_backoff_ms: 20, max_backoff_ms: 200, multiplier: 2 };

describe("retry after a dropped connection (gRPC)", () => {
  it("deposit, don, usage and doff each apply once although the first answer was lost", async () => {
    const admin = new MasquesClient({ endpoint: grpcUrl, token: await d.token("admin", "ops"), retry: fast, env: {} });
    const agent = new MasquesClient({ endpoint: grpcUrl, token: await d.token("agent", "agent-drop"), retry: fast, env: {} });

    await admin.openAgentWallet({ agent_id: "agent-drop" });
    grpcProxy.dropNext();
    const dep = await admin.deposit({ to: { agent_id: "agent-drop" }, amount_micro: 3_000_000n });
    expect(grpcProxy.dropped).toBe(1);
    // The same key from another process returns the same transfer, not a second credit.
    const again = await admin.deposit({ to: { agent_id: "agent-drop" }, amount_micro: 3_000_000n }, { idempotency_key: dep.idempotency_key });
    expect(again.transfer.transferId).toBe(dep.transfer.transferId);
    expect((await agent.getAccount()).balance?.availableMicro).toBe(3_000_000n);

    grpcProxy.dropNext();
    const don = await agent.sessions.don({ masque: "code-reviewer" });
    expect(grpcProxy.dropped).toBe(2);
    expect(don.session.sessionId).toBe(don.session_id);
    expect(don.session.holdMicro).toBe(2_000_000n);
    let wallet = await agent.getAccount();
    expect(wallet.balance?.availableMicro).toBe(1_000_000n);
    expect(wallet.balance?.debitsPendingMicro).toBe(2_000_000n);

    grpcProxy.dropNext();
    const usage = await agent.sessions.recordUsage([{ session_id: don.session_id, seq: 1, input_tokens: 10_000n, tool_calls: 4n }]);
    expect(grpcProxy.dropped).toBe(3);
    expect([UsageOutcome.APPLIED, UsageOutcome.DUPLICATE]).toContain(usage.results[0]?.outcome);

    grpcProxy.dropNext();
    const doffed = await agent.sessions.doff(don.session_id);
    expect(grpcProxy.dropped).toBe(4);
    expect(doffed.status).toBe(SessionStatus.DOFFED);
    expect(doffed.usage?.inputTokens).toBe(10_000n); // counted once
    expect(doffed.usage?.toolCalls).toBe(4n);
    expect(doffed.usageEvents).toBe(1n);
    expect(doffed.chargedMicro + doffed.refundMicro).toBe(2_000_000n);
    expect(doffed.authorShareMicro + doffed.platformFeeMicro).toBe(doffed.chargedMicro);

    wallet = await agent.getAccount();
    expect(wallet.balance?.availableMicro).toBe(3_000_000n - doffed.chargedMicro);
    expect(wallet.balance?.debitsPendingMicro).toBe(0n);
    expect(wallet.balance?.debitsPostedMicro).toBe(doffed.chargedMicro);
  });
});

describe("the proxy really drops answers of applied requests", () => {
  it("without retries the caller sees an outage, yet the daemon applied the request", async () => {
    const admin = new MasquesClient({ endpoint: grpcUrl, token: await d.token("admin", "ops"), retry: { ...fast, max_attempts: 1 }, env: {} });
    await admin.openAgentWallet({ agent_id: "agent-noretry" });
    grpcProxy.dropNext();
    const before = grpcProxy.dropped;
    const err = await admin.deposit({ to: { agent_id: "agent-noretry" }, amount_micro: 700_000n }, { idempotency_key: "noretry-1" }).catch((e: unknown) => e);
    expect(grpcProxy.dropped).toBe(before + 1);
    expect(err).toMatchObject({ kind: "outage" });
    // Applied although unanswered: exactly the case where a retry must not apply it again.
    expect((await admin.getAccount({ agent_id: "agent-noretry" })).balance?.creditsPostedMicro).toBe(700_000n);
    const retried = await admin.deposit({ to: { agent_id: "agent-noretry" }, amount_micro: 700_000n }, { idempotency_key: "noretry-1" });
    expect(retried.transfer.amountMicro).toBe(700_000n);
    expect((await admin.getAccount({ agent_id: "agent-noretry" })).balance?.creditsPostedMicro).toBe(700_000n);
  });
});

describe("retry after a dropped connection (Connect over HTTP/1.1)", () => {
  it("a manual deposit whose answer was lost credits once", async () => {
    const admin = new MasquesClient({ endpoint: httpUrl, transport: "connect", token: await d.token("admin", "ops"), retry: fast, env: {} });
    await admin.openAgentWallet({ agent_id: "agent-drop-h1" });
    httpProxy.dropNext();
    const dep = await admin.deposit({ to: { agent_id: "agent-drop-h1" }, amount_micro: 1_250_000n });
    expect(httpProxy.dropped).toBe(1);
    const wallet = await admin.getAccount({ agent_id: "agent-drop-h1" });
    expect(wallet.balance?.creditsPostedMicro).toBe(1_250_000n);
    expect(dep.transfer.amountMicro).toBe(1_250_000n);
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    await expectAnalyticsReconcile(d);
  });
});
