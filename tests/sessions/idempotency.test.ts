/**
 * Issue 11, "idempotency that ignores part of the request": every idempotent SessionService call
 * compares the whole request it would have made. The same key with the same request returns the
 * original result; with any other field it is refused and nothing changes.
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BillingMode, SessionStatus, UsageOutcome, type UsageEvent } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import type { SessionServiceInstance } from "../../src/services/sessions/service.js";
import { expectStatus, keyReusedOf } from "../accounts/errors.js";
import { newSessionId } from "./harness.js";
import { adminP, donReq, startInProcess, type InProcess } from "./inprocess.js";

let env: InProcess;
let S: SessionServiceInstance;
beforeAll(async () => {
  env = await startInProcess();
  S = await env.instance();
});
afterAll(async () => env?.close());

const reused = (call: Promise<unknown>) => expectStatus(call, Code.AlreadyExists, "IDEMPOTENCY_KEY_REUSED");

describe("Don: the session id is the idempotency key of the whole request", () => {
  it("a different max_spend_micro is IDEMPOTENCY_KEY_REUSED; the original hold stays; the same request returns it", async () => {
    const p = await env.fundedAgent("idem-maxspend");
    const sid = newSessionId();
    const first = await S.handlers.don(p, donReq(sid, { maxSpendMicro: 100_000n }));
    expect(first).toMatchObject({ created: true, session: { holdMicro: 100_000n } });
    const err = await reused(S.handlers.don(p, donReq(sid, { maxSpendMicro: 300_000n })));
    expect(keyReusedOf(err)).toMatchObject({ idempotencyKey: sid });
    expect((await S.handlers.get(p, sid)).holdMicro).toBe(100_000n);
    const again = await S.handlers.don(p, donReq(sid, { maxSpendMicro: 100_000n }));
    expect(again.created).toBe(false);
    // the same session (an open session's billed time keeps running between the two reads)
    expect({ ...again.session, billedDurationMs: 0n }).toEqual({ ...first.session, billedDurationMs: 0n });
  });

  it("a different masque, billing mode or agent is IDEMPOTENCY_KEY_REUSED", async () => {
    const p = await env.fundedAgent("idem-fields");
    await env.fundedAgent("idem-other");
    const sid = newSessionId();
    await S.handlers.don(adminP, donReq(sid, { agentId: "idem-fields", billingMode: BillingMode.LIVE }));
    await reused(S.handlers.don(p, donReq(sid, { masque: "code-reviewer" })));
    await reused(S.handlers.don(adminP, donReq(sid, { agentId: "idem-fields", billingMode: BillingMode.SOFT })));
    await reused(S.handlers.don(adminP, donReq(sid, { agentId: "idem-other", billingMode: BillingMode.LIVE })));
    expect((await S.handlers.don(p, donReq(sid))).created).toBe(false); // the agent's own retry (default mode live)
  });
});

describe("RecordUsage: (session, seq) is the idempotency key of the whole event", () => {
  it("the same seq with other numbers is SEQ_REUSED even when the two events share no usage kind", async () => {
    const p = await env.fundedAgent("idem-usage");
    const sid = newSessionId();
    await S.handlers.don(p, donReq(sid));
    const ev = (seq: bigint, inputTokens: bigint, outputTokens: bigint, toolCalls: bigint) =>
      ({ sessionId: sid, seq, inputTokens, outputTokens, toolCalls }) as UsageEvent;
    const outcome = async (e: UsageEvent) => (await S.handlers.recordUsage(p, [e])).results[0]!;
    expect(await outcome(ev(1n, 5n, 0n, 0n))).toMatchObject({ outcome: UsageOutcome.APPLIED });
    expect(await outcome(ev(1n, 0n, 7n, 0n))).toMatchObject({ outcome: UsageOutcome.REJECTED, reason: "SEQ_REUSED" });
    expect(await outcome(ev(1n, 5n, 0n, 2n))).toMatchObject({ outcome: UsageOutcome.REJECTED, reason: "SEQ_REUSED" });
    expect(await outcome(ev(1n, 5n, 9n, 0n))).toMatchObject({ outcome: UsageOutcome.REJECTED, reason: "SEQ_REUSED" });
    expect(await outcome(ev(1n, 5n, 0n, 0n))).toMatchObject({ outcome: UsageOutcome.DUPLICATE });
    expect((await S.handlers.get(p, sid)).usage).toMatchObject({ inputTokens: 5n, outputTokens: 0n, toolCalls: 0n });
  });
});

describe("Doff and Cancel: the session id is the whole request", () => {
  it("a retried Doff returns the recorded settlement; a retried Cancel the recorded cancel", async () => {
    const p = await env.fundedAgent("idem-end");
    const a = newSessionId();
    const b = newSessionId();
    await S.handlers.don(p, donReq(a));
    await S.handlers.don(p, donReq(b));
    const d1 = await S.handlers.doff(p, a);
    expect(d1.status).toBe(SessionStatus.DOFFED);
    expect(await S.handlers.doff(p, a)).toEqual(d1);
    const c1 = await S.handlers.cancel(p, b);
    expect(c1.status).toBe(SessionStatus.CANCELLED);
    expect(await S.handlers.cancel(p, b)).toEqual(c1);
    await expectStatus(S.handlers.cancel(p, a), Code.FailedPrecondition, "SESSION_SETTLED");
    await expectStatus(S.handlers.doff(p, b), Code.FailedPrecondition, "SESSION_CANCELLED");
  });
});
