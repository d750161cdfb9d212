/**
 * The SDK turns the daemon's real error statuses and details into typed errors that say what
 * went wrong and what to do — checked against a running daemon, not hand-made statuses.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import path from "node:path";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { MasquesClient } from "../../clients/sdk/client.js";
import {
  IdempotencyKeyReusedError,
  InsufficientFundsError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  UnauthenticatedError,
  UnavailableError,
} from "../../clients/sdk/errors.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";

const MASQUES_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../masques");
let d: Daemon;
let admin: MasquesClient;
let agent: MasquesClient;

beforeAll(async () => {
  d = await startDaemon({ env: { MASQUES_DIR } });
  admin = new MasquesClient({ endpoint: `http://${d.grpcAddr}`, token: await d.token("admin", "ops"), env: {} });
  agent = new MasquesClient({ endpoint: `http://${d.grpcAddr}`, token: await d.token("agent", "agent-typed"), env: {} });
  await admin.openAgentWallet({ agent_id: "agent-typed" });
  await admin.deposit({ to: { agent_id: "agent-typed" }, amount_micro: 400_000n }, { idempotency_key: "typed-1" });
});
afterAll(async () => {
  await d?.stop();
});

describe("typed errors from a real daemon", () => {
  it("insufficient funds carries the available balance and the reservation", async () => {
    const e = await agent.sessions.don({ masque: "code-reviewer" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InsufficientFundsError);
    const f = e as InsufficientFundsError;
    expect(f.available_micro).toBe(400_000n);
    expect(f.required_micro).toBe(2_000_000n);
    expect(f.kind).toBe("user");
    expect(f.message).toContain("$0.40");
  });

  it("invalid argument names the field and the rule", async () => {
    const e = await agent.sessions.don({ masque: "code-reviewer", session_id: "not a session id" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as InvalidArgumentError).field).toBe("session_id");
    expect((e as InvalidArgumentError).rule).toBeTruthy();
    expect((e as Error).message).toMatch(/^Invalid session_id: /);
  });

  it("a reused idempotency key for a different deposit is refused, the original stands", async () => {
    const e = await admin.deposit({ to: { agent_id: "agent-typed" }, amount_micro: 999n }, { idempotency_key: "typed-1" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(IdempotencyKeyReusedError);
    expect((e as IdempotencyKeyReusedError).hint).toMatch(/fresh idempotency key/);
    expect((await agent.getAccount()).balance?.creditsPostedMicro).toBe(400_000n);
  });

  it("permission denied, unknown masque, unknown session, bad token, daemon down", async () => {
    await expect(agent.getAccount({ agent_id: "someone-else" })).rejects.toBeInstanceOf(PermissionDeniedError);
    await expect(agent.sessions.don({ masque: "no-such-masque" })).rejects.toBeInstanceOf(NotFoundError);
    await expect(agent.sessions.get("0123456789abcdef0123456789abcdef")).rejects.toBeInstanceOf(NotFoundError);
    const forged = new MasquesClient({ endpoint: `http://${d.grpcAddr}`, token: "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4Iiwia2luZCI6ImFnZW50In0.c2ln", env: {} });
    await expect(forged.getAccount()).rejects.toBeInstanceOf(UnauthenticatedError);
    const down = new MasquesClient({ endpoint: "http://127.0.0.1:9", token: "x", timeout_ms: 1500, retry: { max_attempts: 2, initial_backoff_ms: 10 }, env: {} });
    const e = await down.getAccount({ agent_id: "a" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UnavailableError);
    expect((e as UnavailableError).kind).toBe("outage");
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    await expectAnalyticsReconcile(d);
  });
});
