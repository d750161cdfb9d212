/**
 * Issue 11, "values past the API's range", usage: a usage event that would push its session's
 * total (uint64/int64 in the API) past 2^63-1 is refused up front with INVALID_ARGUMENT naming
 * the field, and nothing of the call is applied.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStatus, UsageOutcome, type UsageEvent } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import type { SessionServiceInstance } from "../../src/services/sessions/service.js";
import { expectInvalid } from "../accounts/errors.js";
import { newSessionId } from "./harness.js";
import { donReq, startInProcess, type InProcess } from "./inprocess.js";

const MAX = (1n << 63n) - 1n;
let env: InProcess;
let S: SessionServiceInstance;
beforeAll(async () => {
  env = await startInProcess();
  S = await env.instance();
});
afterAll(async () => env?.close());

const ev = (sid: string, seq: bigint, inputTokens: bigint, outputTokens = 0n) =>
  ({ sessionId: sid, seq, inputTokens, outputTokens, toolCalls: 0n }) as UsageEvent;

describe("usage totals stay inside the API's range", () => {
  it("three events of 2^63-1 input tokens: INVALID_ARGUMENT naming events[1] and events[2], nothing applied", async () => {
    const p = await env.fundedAgent("range-three");
    const sid = newSessionId();
    await S.handlers.don(p, donReq(sid));
    await expectInvalid(S.handlers.recordUsage(p, [ev(sid, 1n, MAX), ev(sid, 2n, MAX), ev(sid, 3n, MAX)]), [
      "events[1].input_tokens",
      "events[2].input_tokens",
    ]);
    const s = await S.handlers.get(p, sid);
    expect(s.usage).toMatchObject({ inputTokens: 0n, outputTokens: 0n, toolCalls: 0n });
    expect(s.usageEvents).toBe(0n);
    // the first alone fits; the session stays readable, listable and settles at its capped price
    expect((await S.handlers.recordUsage(p, [ev(sid, 1n, MAX)])).results[0]!.outcome).toBe(UsageOutcome.APPLIED);
    await expectInvalid(S.handlers.recordUsage(p, [ev(sid, 2n, 1n, 5n)]), ["events[0].input_tokens"]);
    expect((await S.handlers.recordUsage(p, [ev(sid, 2n, 0n, 5n)])).results[0]!.outcome).toBe(UsageOutcome.APPLIED);
    const listed = await S.handlers.list(p, { owner: { case: undefined }, statuses: [], pageSize: 10, pageToken: "" });
    expect(listed.sessions.find((x) => x.sessionId === sid)?.usage?.inputTokens).toBe(MAX);
    const d = await S.handlers.doff(p, sid);
    expect(d).toMatchObject({ status: SessionStatus.DOFFED, usage: { inputTokens: MAX, outputTokens: 5n }, priceMicro: 1_000_000n });
  });

  it("a call where only the sum of its own events leaves the range names exactly the crossing events, across interleaved sessions", async () => {
    const p = await env.fundedAgent("range-sum");
    const a = newSessionId();
    const b = newSessionId();
    await S.handlers.don(p, donReq(a));
    await S.handlers.don(p, donReq(b));
    expect((await S.handlers.recordUsage(p, [ev(a, 1n, MAX - 10n)])).results[0]!.outcome).toBe(UsageOutcome.APPLIED);
    // a: MAX-10 in the ledger, +4 fits, +7 would cross, +6 then fits again (the refused +7 is not counted)
    await expectInvalid(
      S.handlers.recordUsage(p, [ev(b, 1n, 1_000n), ev(a, 2n, 4n), ev(b, 2n, 2_000n), ev(a, 3n, 7n), ev(a, 4n, 6n), ev(a, 5n, 0n, 3n), ev(a, 6n, 1n)]),
      ["events[3].input_tokens", "events[6].input_tokens"],
    );
    expect((await S.handlers.get(p, a)).usage).toMatchObject({ inputTokens: MAX - 10n, outputTokens: 0n });
    expect((await S.handlers.get(p, b)).usage).toMatchObject({ inputTokens: 0n });
    // the same call without the crossing events is applied whole, up to exactly 2^63-1
    const ok = await S.handlers.recordUsage(p, [ev(b, 1n, 1_000n), ev(a, 2n, 4n), ev(b, 2n, 2_000n), ev(a, 4n, 6n), ev(a, 5n, 0n, 3n)]);
    expect(ok.applied).toBe(5);
    expect((await S.handlers.get(p, a)).usage).toMatchObject({ inputTokens: MAX, outputTokens: 3n });
    expect((await S.handlers.get(p, b)).usage).toMatchObject({ inputTokens: 3_000n });
  });
});
