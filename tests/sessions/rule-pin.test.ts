/**
 * Issue 20, ADR 0124: Don pins the revenue rule in the ledger (on the session's usage meters,
 * created before the hold) instead of a control-plane row, and a session settles with its pin
 * whichever daemon settles it. Sessions donned before (pin only in `session_rule_pin`) settle with
 * that pin; sessions with no pin at all with PLATFORM_FEE_BPS (ADR 0102).
 */
import { CreateTransferStatus } from "tigerbeetle-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentWalletId } from "../../src/domain/accounts.js";
import { idToHex } from "../../src/domain/ids.js";
import { decodeRulePin } from "../../src/domain/rule-pin.js";
import { parseSessionId, planDon, sessionMeterAccounts } from "../../src/domain/sessions.js";
import { systemActor, type GovernanceStore } from "../../src/controlplane/governance.js";
import { governanceOf } from "../../src/services/governance.js";
import { pinMeterId } from "../../src/services/sessions/accounts.js";
import type { SessionServiceInstance } from "../../src/services/sessions/service.js";
import { newSessionId } from "./harness.js";
import { agentP, donReq, startInProcess, type InProcess } from "./inprocess.js";

const PLATFORM_FEE_BPS = 1500;
let env: InProcess;
let S: SessionServiceInstance;
let rules: GovernanceStore;
beforeAll(async () => {
  env = await startInProcess({ PLATFORM_FEE_BPS: String(PLATFORM_FEE_BPS) });
  S = await env.instance();
  rules = governanceOf(env.ctx).rules;
}, 120_000);
afterAll(async () => env?.close());

/** Make a masque-scoped rule for `researcher` at `fee_bps` active now (emergency: no cooling). */
async function researcherFee(fee_bps: number) {
  const actor = systemActor(`test-${fee_bps}`);
  const r = await rules.create(actor, { scope: { kind: "masque", value: "researcher" }, author_bps: 10_000 - fee_bps, platform_fee_bps: fee_bps, description: `test ${fee_bps}` });
  return rules.emergencyActivate(actor, r.rule_id, "test: a known split");
}

/** Record usage and Doff on `on`; returns the settled split. */
async function settle(on: SessionServiceInstance, agent: string, sid: string) {
  const p = agentP(agent);
  await on.handlers.recordUsage(p, [{ sessionId: sid, seq: 1n, inputTokens: 10_000n, outputTokens: 5_000n, toolCalls: 3n } as never]);
  const s = await on.handlers.doff(p, sid);
  expect(s.chargedMicro).toBeGreaterThan(0n);
  return s;
}

const feeOf = (charged: bigint, bps: number) => (charged * BigInt(bps)) / 10_000n;

describe("Don pins the revenue rule in the ledger", () => {
  it("the meters carry the active rule (scope, fee, activation time); no control-plane pin; a later rule change does not move it; another instance settles with it", async () => {
    const first = await researcherFee(3000);
    const p = await env.fundedAgent("pin-ledger");
    const sid = newSessionId();
    await S.handlers.don(p, donReq(sid));
    const [meter] = await env.ctx.ledger.lookupAccounts([pinMeterId(parseSessionId(sid))]);
    expect(decodeRulePin(meter!)).toEqual({ scope_kind: "masque", platform_fee_bps: 3000, activate_time_ns: first.activate_time_ns });
    expect(await rules.pinOf(idToHex(parseSessionId(sid)))).toBeNull();

    await researcherFee(5000);
    const after = newSessionId();
    await S.handlers.don(p, donReq(after));
    // A second instance (another daemon: it never saw these Dons) reads the pins from the ledger.
    const other = await env.instance();
    const s1 = await settle(other, "pin-ledger", sid);
    expect(s1.platformFeeMicro).toBe(feeOf(s1.chargedMicro, 3000));
    const s2 = await settle(other, "pin-ledger", after);
    expect(s2.platformFeeMicro).toBe(feeOf(s2.chargedMicro, 5000));
  }, 60_000);

  it("a retried Don after the rule changed keeps the first pin", async () => {
    await researcherFee(2000);
    const p = await env.fundedAgent("pin-retry");
    const sid = newSessionId();
    await S.handlers.don(p, donReq(sid));
    await researcherFee(4000);
    const other = await env.instance();
    expect((await other.handlers.don(p, donReq(sid))).created).toBe(false);
    const s = await settle(other, "pin-retry", sid);
    expect(s.platformFeeMicro).toBe(feeOf(s.chargedMicro, 2000));
  }, 60_000);
});

describe("sessions donned before the pin moved to the ledger", () => {
  it("a session whose pin is only in the control plane settles with it", async () => {
    await researcherFee(3500);
    const p = await env.fundedAgent("pin-old");
    const sid = newSessionId();
    const id = parseSessionId(sid);
    // What a Don did before ADR 0124: the pin in session_rule_pin, the meters without one.
    expect((await rules.pinSession(idToHex(id), "researcher", S.state.catalog.list().find((m) => m.name === "researcher")!.author))?.platform_fee_bps).toBe(3500);
    await env.ctx.ledger.createAccounts(sessionMeterAccounts(id, agentWalletId("pin-old")));
    await researcherFee(6000);
    await S.handlers.don(p, donReq(sid));
    const other = await env.instance();
    const s = await settle(other, "pin-old", sid);
    expect(s.platformFeeMicro).toBe(feeOf(s.chargedMicro, 3500));
  }, 60_000);

  it("a session with no pin anywhere settles with PLATFORM_FEE_BPS", async () => {
    await researcherFee(4500);
    await env.fundedAgent("pin-none");
    const sid = newSessionId();
    const id = parseSessionId(sid);
    const m = S.state.catalog.list().find((x) => x.name === "researcher")!;
    // A hold and meters as a daemon from before revenue rules wrote them.
    await env.ctx.ledger.createAccounts(sessionMeterAccounts(id, agentWalletId("pin-none")));
    const [r] = await env.ctx.ledger.createTransfers([
      planDon(S.state.ids, { session_id: id, agent_id: "pin-none", masque_index: m.index, price_version: m.price_version, mode: "live", hold_micro: 1_000_000n, timeout_s: 3600 }),
    ]);
    expect(r!.status).toBe(CreateTransferStatus.created);
    const other = await env.instance();
    const s = await settle(other, "pin-none", sid);
    expect(s.platformFeeMicro).toBe(feeOf(s.chargedMicro, PLATFORM_FEE_BPS));
  }, 60_000);
});
