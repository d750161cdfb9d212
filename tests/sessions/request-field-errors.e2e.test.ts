/**
 * SessionService refuses what it cannot name, and names what it refuses (faults an adversarial
 * tester found). Proto3 enums are open, so the wire carries any int32: before, Don with
 * `view: 99` answered the full session, an admin's Don with `billing_mode: 99` held money as
 * LIVE, Doff / Cancel took `view: 99`, and ListSessions with `statuses: [99]` answered OK and
 * empty. Each is now INVALID_ARGUMENT naming the field and the allowed values, with nothing held.
 * RecordUsage's per-event refusals said only "INVALID_ARGUMENT"; they now name the field and the
 * rule, the outcome staying REJECTED. A Don whose max_spend_micro is below the masque's flat
 * price (a hold that could never pay the session's own minimum price) is refused naming both.
 * The real daemon over native gRPC, one per file.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import {
  BillingMode,
  SessionStatus,
  SessionView,
  UsageOutcome,
} from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { newSessionId, startHarness, type Harness } from "./harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { BILLING_MODE: "live", STREAMER_ENABLED: "false" } });
});
afterAll(async () => {
  await h?.stop();
});

let n = 0;
const fresh = (p: string) => `${p}-${++n}`;

/** The refusal of `call`: its code and its BadRequest field violations as [field, description]. */
async function refusal(call: Promise<unknown>): Promise<{ code: Code; violations: [string, string][] }> {
  try {
    await call;
  } catch (e) {
    const err = ConnectError.from(e);
    const violations = (err.findDetails(BadRequestSchema)[0]?.fieldViolations ?? []).map((v): [string, string] => [v.field, v.description]);
    return { code: err.code, violations };
  }
  throw new Error("the call succeeded; expected a refusal");
}

const VIEW_RULE = "99 is not a value of the enum: must be one of SESSION_VIEW_UNSPECIFIED (0), SESSION_VIEW_BASIC (1), SESSION_VIEW_FULL (2)";

describe("an enum value the proto does not name is INVALID_ARGUMENT naming the field", () => {
  it("Don with view 99: refused naming view and its values; nothing held, no session", async () => {
    const agent = fresh("agent");
    const c = await h.fundedAgent(agent, 5_000_000n);
    const sid = newSessionId();
    const r = await refusal(c.sessions.don({ sessionId: sid, masque: "researcher", view: 99 as SessionView }));
    expect(r).toEqual({ code: Code.InvalidArgument, violations: [["view", VIEW_RULE]] });
    expect(await h.available(agent)).toBe(5_000_000n);
    expect((await refusal(c.sessions.getSession({ sessionId: sid }))).code).toBe(Code.NotFound);
  });

  it("Doff and Cancel with view 99: refused naming view; the session stays open with its hold", async () => {
    const agent = fresh("agent");
    const c = await h.fundedAgent(agent, 5_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    const held = await h.available(agent);
    expect(held).toBe(4_500_000n);
    expect(await refusal(c.sessions.doff({ sessionId: sid, view: 99 as SessionView }))).toEqual({ code: Code.InvalidArgument, violations: [["view", VIEW_RULE]] });
    expect(await refusal(c.sessions.cancel({ sessionId: sid, view: 99 as SessionView }))).toEqual({ code: Code.InvalidArgument, violations: [["view", VIEW_RULE]] });
    const s = (await c.sessions.getSession({ sessionId: sid })).session!;
    expect(s.status).toBe(SessionStatus.OPEN);
    expect(await h.available(agent)).toBe(held);
  });

  it("an admin's Don with billing_mode 99: refused naming billing_mode; the wallet is untouched", async () => {
    const agent = fresh("agent");
    await h.fundedAgent(agent, 5_000_000n);
    const admin = await h.as("admin", "ops");
    const sid = newSessionId();
    const r = await refusal(admin.sessions.don({ sessionId: sid, masque: "researcher", agentId: agent, billingMode: 99 as BillingMode }));
    expect(r).toEqual({
      code: Code.InvalidArgument,
      violations: [
        [
          "billing_mode",
          "99 is not a value of the enum: must be one of BILLING_MODE_UNSPECIFIED (0), BILLING_MODE_SHADOW (1), BILLING_MODE_SOFT (2), BILLING_MODE_LIVE (3)",
        ],
      ],
    });
    expect(await h.available(agent)).toBe(5_000_000n);
    expect((await refusal(admin.sessions.getSession({ sessionId: sid }))).code).toBe(Code.NotFound);
  });

  it("ListSessions with statuses [99] (and [OPEN, 99]): refused naming the element", async () => {
    const agent = fresh("agent");
    const c = await h.fundedAgent(agent, 5_000_000n);
    await c.sessions.don({ sessionId: newSessionId(), masque: "researcher" });
    const rule = "99 is not a value of the enum: must be one of SESSION_STATUS_UNSPECIFIED (0), SESSION_STATUS_OPEN (1), SESSION_STATUS_DOFFED (2), SESSION_STATUS_REAPED (3), SESSION_STATUS_CANCELLED (4), SESSION_STATUS_EXPIRED (5)";
    expect(await refusal(c.sessions.listSessions({ owner: { case: "agentId", value: agent }, statuses: [99 as SessionStatus] }))).toEqual({
      code: Code.InvalidArgument,
      violations: [["statuses[0]", rule]],
    });
    expect(
      await refusal(c.sessions.listSessions({ owner: { case: "agentId", value: agent }, statuses: [SessionStatus.OPEN, 99 as SessionStatus] })),
    ).toEqual({ code: Code.InvalidArgument, violations: [["statuses[1]", rule]] });
    // Only the first is named, however many follow (the reply stays small).
    const many = Array.from({ length: 10_000 }, () => 99 as SessionStatus);
    expect(await refusal(c.sessions.listSessions({ owner: { case: "agentId", value: agent }, statuses: [SessionStatus.OPEN, ...many] }))).toEqual({
      code: Code.InvalidArgument,
      violations: [["statuses[1]", rule]],
    });
    // The named values still filter as before.
    const open = await c.sessions.listSessions({ owner: { case: "agentId", value: agent }, statuses: [SessionStatus.OPEN] });
    expect(open.sessions.length).toBe(1);
  });
});

describe("RecordUsage names the field and the rule of each event it refuses", () => {
  it("seq 0, tokens of 2^63 and a bad session id are REJECTED with reasons naming events[i].<field>", async () => {
    const c = await h.fundedAgent(fresh("agent"), 5_000_000n);
    const sid = newSessionId();
    await c.sessions.don({ sessionId: sid, masque: "researcher" });
    const r = await c.sessions.recordUsage({
      events: [
        { sessionId: sid, seq: 1n, inputTokens: 10n },
        { sessionId: sid, seq: 0n, inputTokens: 10n },
        { sessionId: sid, seq: 2n, inputTokens: 1n << 63n, toolCalls: 1n << 63n },
        { sessionId: "not-a-session", seq: 3n },
      ],
    });
    expect(r.results.map((x) => [x.outcome, x.reason])).toEqual([
      [UsageOutcome.APPLIED, ""],
      [UsageOutcome.REJECTED, "events[1].seq: must be >= 1"],
      [UsageOutcome.REJECTED, "events[2].input_tokens: must be <= 2^63-1; events[2].tool_calls: must be <= 2^63-1"],
      [UsageOutcome.REJECTED, "events[3].session_id: must be 32 hex digits or a UUID"],
    ]);
    const s = (await c.sessions.getSession({ sessionId: sid })).session!;
    expect(s.usage?.inputTokens).toBe(10n);
    expect(s.usageEvents).toBe(1n);
  });
});

describe("max_spend_micro below the masque's flat price", () => {
  it("is INVALID_ARGUMENT naming max_spend_micro and the flat price; nothing held; at the flat price it is accepted", async () => {
    const agent = fresh("agent");
    const c = await h.fundedAgent(agent, 5_000_000n);
    const sid = newSessionId();
    // code-reviewer: flat_per_session "0.01" = 10,000 micro-USD (masques/code-reviewer.yaml).
    const r = await refusal(c.sessions.don({ sessionId: sid, masque: "code-reviewer", maxSpendMicro: 1n }));
    expect(r).toEqual({
      code: Code.InvalidArgument,
      violations: [["max_spend_micro", 'must be 0 (no cap) or >= the flat_per_session price of masque "code-reviewer" (10000 micro-USD)']],
    });
    expect(await h.available(agent)).toBe(5_000_000n);
    expect((await refusal(c.sessions.getSession({ sessionId: sid }))).code).toBe(Code.NotFound);
    // An admin's soft Don is refused the same way (the cap is the agent's own).
    const admin = await h.as("admin", "ops");
    const soft = await refusal(admin.sessions.don({ sessionId: sid, masque: "code-reviewer", agentId: agent, maxSpendMicro: 9_999n, billingMode: BillingMode.SOFT }));
    expect(soft.code).toBe(Code.InvalidArgument);
    expect(soft.violations.map((v) => v[0])).toEqual(["max_spend_micro"]);
    expect(await h.available(agent)).toBe(5_000_000n);

    const ok = await c.sessions.don({ sessionId: sid, masque: "code-reviewer", maxSpendMicro: 10_000n });
    expect(ok.session!.holdMicro).toBe(10_000n);
    expect(await h.available(agent)).toBe(4_990_000n);
  });
});
