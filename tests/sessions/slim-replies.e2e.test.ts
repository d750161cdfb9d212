/**
 * Slim replies (issue 20, ADR 0128): Don, Doff and Cancel take `view`; SESSION_VIEW_BASIC returns
 * the session's id, state and every amount exactly as the full view has them and leaves the rest
 * unset; the default (unset) stays the full session. The view shapes only the reply: a retried
 * call returns the recorded session in whichever view it asks for. Over native gRPC and over
 * Connect JSON (the HTTP port), against the real daemon.
 */
import { toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DonResponseSchema,
  SessionStatus,
  SessionView,
  UsageOutcome,
  type Session,
} from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { newSessionId, startHarness, type Harness } from "./harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { BILLING_MODE: "live" } });
});
afterAll(async () => {
  await h?.stop();
});

let n = 0;
const fresh = (p: string) => `${p}-${++n}`;

/** What BASIC carries: the id, the state and the money. */
function basicFields(s: Session) {
  return {
    sessionId: s.sessionId,
    status: s.status,
    closeReason: s.closeReason,
    billingMode: s.billingMode,
    holdMicro: s.holdMicro,
    priceMicro: s.priceMicro,
    chargedMicro: s.chargedMicro,
    postedMicro: s.postedMicro,
    debtMicro: s.debtMicro,
    refundMicro: s.refundMicro,
    unbilledMicro: s.unbilledMicro,
    authorShareMicro: s.authorShareMicro,
    platformFeeMicro: s.platformFeeMicro,
    platformFeeBps: s.platformFeeBps,
  };
}

function expectOnlyBasic(s: Session): void {
  expect(s.agentWalletId).toBe("");
  expect(s.masqueName).toBe("");
  expect(s.author).toBe("");
  expect(s.masqueIndex).toBe(0n);
  expect(s.priceVersion).toBe(0);
  expect(s.donTime).toBeUndefined();
  expect(s.deadlineTime).toBeUndefined();
  expect(s.endTime).toBeUndefined();
  expect(s.lastActivityTime).toBeUndefined();
  expect(s.usage).toBeUndefined();
  expect(s.usageEvents).toBe(0n);
  expect(s.billedDurationMs).toBe(0n);
}

describe("SessionView on Don, Doff and Cancel", () => {
  it("BASIC carries the id, the state and the amounts of the full session; the rest is unset", async () => {
    const c = await h.fundedAgent(fresh("agent"), 5_000_000n);
    const sid = newSessionId();

    const don = await c.sessions.don({ sessionId: sid, masque: "researcher", view: SessionView.BASIC });
    expect(don.created).toBe(true);
    const donned = don.session!;
    expectOnlyBasic(donned);
    expect(donned).toMatchObject({ sessionId: sid, status: SessionStatus.OPEN, holdMicro: 500_000n });
    const full = (await c.sessions.getSession({ sessionId: sid })).session!;
    expect(full.masqueName).toBe("researcher");
    expect(basicFields(donned)).toEqual({ ...basicFields(full), priceMicro: donned.priceMicro });

    const usage = await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, inputTokens: 10_000n, outputTokens: 5_000n, toolCalls: 3n }] });
    expect(usage.results[0]!.outcome).toBe(UsageOutcome.APPLIED);

    const doff = (await c.sessions.doff({ sessionId: sid, view: SessionView.BASIC })).session!;
    expectOnlyBasic(doff);
    // 10k in x 0.0002/1k + 5k out x 0.0008/1k + 3 calls x 0.0005 = 2,000 + 4,000 + 1,500 micro-USD.
    expect(doff.priceMicro).toBe(7_500n);
    const settled = (await c.sessions.getSession({ sessionId: sid })).session!;
    expect(settled.status).toBe(SessionStatus.DOFFED);
    expect(basicFields(doff)).toEqual(basicFields(settled));
    expect(doff.refundMicro).toBe(500_000n - 7_500n);

    // A retried Doff returns the recorded result, in the view it asks for (default: full).
    const again = (await c.sessions.doff({ sessionId: sid })).session!;
    expect(again).toEqual(settled);
    const againBasic = (await c.sessions.doff({ sessionId: sid, view: SessionView.BASIC })).session!;
    expect(againBasic).toEqual(doff);
  });

  it("the default and FULL are the whole session, and BASIC is well under half its bytes", async () => {
    const c = await h.fundedAgent(fresh("agent"), 5_000_000n);
    const sid = newSessionId();
    const byDefault = await c.sessions.don({ sessionId: sid, masque: "researcher" });
    const retryFull = await c.sessions.don({ sessionId: sid, masque: "researcher", view: SessionView.FULL });
    const retryBasic = await c.sessions.don({ sessionId: sid, masque: "researcher", view: SessionView.BASIC });
    expect(byDefault.session!.masqueName).toBe("researcher");
    expect(byDefault.session!.donTime).toBeDefined();
    expect(retryFull.created).toBe(false);
    expect({ ...retryFull.session!, priceMicro: 0n, billedDurationMs: 0n, lastActivityTime: undefined }).toEqual({
      ...byDefault.session!,
      priceMicro: 0n,
      billedDurationMs: 0n,
      lastActivityTime: undefined,
    });
    expect(retryBasic.created).toBe(false);
    expectOnlyBasic(retryBasic.session!);
    const full_bytes = toBinary(DonResponseSchema, retryFull).byteLength;
    const basic_bytes = toBinary(DonResponseSchema, retryBasic).byteLength;
    expect(basic_bytes * 2).toBeLessThan(full_bytes);
  });

  it("Cancel with BASIC returns the voided hold as the refund", async () => {
    const c = await h.fundedAgent(fresh("agent"), 5_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher", view: SessionView.BASIC });
    const s = (await c.sessions.cancel({ sessionId: sid, view: SessionView.BASIC })).session!;
    expectOnlyBasic(s);
    expect(s).toMatchObject({ sessionId: sid, status: SessionStatus.CANCELLED, holdMicro: 500_000n, refundMicro: 500_000n, chargedMicro: 0n, priceMicro: 0n });
  });

  it("Connect JSON on the HTTP port takes the view by name and omits the unset fields", async () => {
    const agent = fresh("agent");
    await h.fundedAgent(agent, 5_000_000n);
    const token = await h.daemon.token("agent", agent);
    const sid = newSessionId();
    const post = async (method: string, body: unknown) => {
      const res = await fetch(`http://${h.daemon.httpAddr}/masques.ledger.v1.SessionService/${method}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { session: Record<string, unknown> };
    };
    const don = await post("Don", { sessionId: sid, masque: "researcher", view: "SESSION_VIEW_BASIC" });
    expect(don.session).toMatchObject({ sessionId: sid, status: "SESSION_STATUS_OPEN", holdMicro: "500000" });
    for (const unset of ["masqueName", "agentWalletId", "author", "donTime", "deadlineTime", "usage"]) expect(don.session).not.toHaveProperty(unset);
    const doff = await post("Doff", { sessionId: sid });
    expect(doff.session).toMatchObject({ sessionId: sid, status: "SESSION_STATUS_DOFFED", masqueName: "researcher" });
    expect(doff.session).toHaveProperty("donTime");
  });
});
