/**
 * Issue 11, "usage answered APPLIED, never billed": every usage event answered APPLIED is part of
 * its session's price; one that cannot be is refused with SESSION_NOT_OPEN — whatever settles the
 * session (Doff, Cancel, the reaper) and however many service instances share the ledger (two
 * instances over ONE ledger client, built the way the daemon builds its one, stand in for two
 * daemons over one TigerBeetle cluster). Usage is sent while the settlement is in flight: in the
 * same tick, after a few microtasks and after a macrotask.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BillingMode,
  SessionStatus,
  UsageOutcome,
  type Session,
  type UsageEvent,
} from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { agentWalletAccounts, agentWalletId, depositTransfer } from "../../src/domain/accounts.js";
import { accrue } from "../../src/domain/pricing.js";
import { createCoalescedClient } from "../../src/ledger/coalescer.js";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import type { Principal } from "../../src/server/principal.js";
import type { DaemonContext } from "../../src/server/registry.js";
import { controlPlaneOptions, openControlPlane } from "../../src/controlplane/index.js";
import { onStart } from "../../src/services/index.js";
import { reapOnce } from "../../src/services/sessions/reaper.js";
import { createSessionInstance, type SessionServiceInstance } from "../../src/services/sessions/service.js";
import { parseSessionId, planCloseMeters } from "../../src/domain/sessions.js";
import { seedControlPlane } from "../support/pglite-template.js";
import { newSessionId } from "./harness.js";

const SESSIONS = 12;
const TOKENS = 100_000n; // 0.02 USD of researcher input per event

let dir: string;
let inner: EmbeddedClient;
let offset_ns = 0n;
const clock = () => BigInt(Date.now()) * 1_000_000n + offset_ns;
let ctx: DaemonContext;
let A: SessionServiceInstance;
let B: SessionServiceInstance;

const agent = (id: string): Principal => ({ kind: "agent", id, scopes: ["ledger:read", "ledger:write"] });

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "usage-race-"));
  inner = createEmbeddedClient({ dataDir: path.join(dir, "ledger") });
  const ledger = createCoalescedClient(inner);
  const config = loadConfig({
    MASQUES_DATA_DIR: dir,
    MASQUES_DIR: path.resolve("masques"),
    SESSION_IDLE_S: "5",
    SESSION_REAPER_INTERVAL_MS: "100",
  });
  await seedControlPlane(dir);
  ctx = { ledger, controlplane: await openControlPlane(controlPlaneOptions(config)), config, log: pino({ level: "silent" }), clock };
  await onStart(ctx);
  // Two instances over one ledger client, as the daemon builds its one (src/services/index.ts).
  A = createSessionInstance(ctx, { reaper: false });
  B = createSessionInstance(ctx, { reaper: false });
  await Promise.all([A.ready, B.ready]);
}, 60_000);

afterAll(async () => {
  A?.stop();
  B?.stop();
  await inner?.close();
  await ctx?.controlplane.close();
  rmSync(dir, { recursive: true, force: true });
});

async function fundedAgent(id: string): Promise<Principal> {
  const ledger = A.state.ledger;
  await ledger.createAccounts(agentWalletAccounts(id, "prepaid"));
  await ledger.createTransfers([depositTransfer({ walletId: agentWalletId(id), amountMicro: 100_000_000n, rail: null, idempotencyKey: `race-${id}` })]);
  return agent(id);
}

const ev = (sid: string, seq: bigint): UsageEvent =>
  ({ sessionId: sid, seq, inputTokens: TOKENS, outputTokens: 0n, toolCalls: 0n }) as UsageEvent;

/** Usage sent around a settlement: same tick, after 1/3/10 microtasks, after a macrotask. */
async function usageAround(inst: SessionServiceInstance, p: Principal, sid: string): Promise<{ applied: bigint; outcomes: string[] }> {
  const sends: Promise<{ results: { outcome: UsageOutcome; reason: string }[] }>[] = [];
  let seq = 10n;
  const send = () => sends.push(inst.handlers.recordUsage(p, [ev(sid, seq++)]));
  send();
  for (const n of [1, 3, 10]) {
    for (let i = 0; i < n; i++) await Promise.resolve();
    send();
  }
  await new Promise((r) => setImmediate(r));
  send();
  let applied = 0n;
  const outcomes: string[] = [];
  for (const r of await Promise.all(sends)) {
    const x = r.results[0]!;
    if (x.outcome === UsageOutcome.APPLIED) applied += TOKENS;
    else outcomes.push(x.reason);
  }
  return { applied, outcomes };
}

/** The rule: applied usage == the settled session's usage, and it is in the charge. */
function expectBilled(s: Session, applied: bigint, refused: string[]): void {
  for (const r of refused) expect(r).toBe("SESSION_NOT_OPEN");
  expect([SessionStatus.DOFFED, SessionStatus.REAPED]).toContain(s.status);
  expect(s.usage!.inputTokens).toBe(applied);
  const researcher = A.state.catalog.byName.get("researcher")!;
  const price = accrue(researcher.pricing, { input_tokens: applied, output_tokens: 0n, tool_calls: 0n }, s.billedDurationMs).price_micro;
  expect(s.priceMicro).toBe(price);
  expect(s.chargedMicro).toBe(price); // live mode, well under the 0.5 USD hold
}

async function donAll(inst: SessionServiceInstance, p: Principal, n = SESSIONS): Promise<string[]> {
  const sids = Array.from({ length: n }, () => newSessionId());
  for (const sid of sids) {
    const r = await inst.handlers.don(p, { sessionId: sid, masque: "researcher", agentId: "", maxSpendMicro: 0n, billingMode: BillingMode.UNSPECIFIED });
    expect(r.created).toBe(true);
    // usage recorded before the settlement starts is billed too
    expect((await inst.handlers.recordUsage(p, [ev(sid, 1n)])).applied).toBe(1);
  }
  return sids;
}

describe("usage racing settlement is billed or refused, never applied and lost", () => {
  for (const [name, settler, reporter] of [
    ["one instance", () => A, () => A],
    ["two instances over one ledger", () => A, () => B],
  ] as const) {
    it(`Doff (${name})`, async () => {
      const p = await fundedAgent(`race-doff-${name.replace(/\W/g, "")}`);
      const sids = await donAll(A, p);
      await Promise.all(
        sids.map(async (sid) => {
          const doff = settler().handlers.doff(p, sid);
          const usage = await usageAround(reporter(), p, sid);
          await doff;
          const s = await A.handlers.get(p, sid);
          expectBilled(s, TOKENS + usage.applied, usage.outcomes);
        }),
      );
    }, 60_000);

    it(`the reaper (${name})`, async () => {
      const p = await fundedAgent(`race-reap-${name.replace(/\W/g, "")}`);
      const sids = await donAll(A, p);
      offset_ns += 60n * 1_000_000_000n; // every session is idle now (SESSION_IDLE_S=5)
      const reap = reapOnce(settler().state);
      const usages = await Promise.all(sids.map((sid) => usageAround(reporter(), p, sid)));
      await reap;
      // whatever the reaper did not settle in this pass (fresh usage) is doffed now
      for (const sid of sids) await A.handlers.doff(p, sid);
      for (const [i, sid] of sids.entries()) {
        const s = await A.handlers.get(p, sid);
        expectBilled(s, TOKENS + usages[i]!.applied, usages[i]!.outcomes);
      }
    }, 60_000);
  }

  it("Cancel: usage racing it is refused (a cancelled session bills nothing, so nothing may be applied after it)", async () => {
    const p = await fundedAgent("race-cancel");
    const sids = await donAll(A, p);
    await Promise.all(
      sids.map(async (sid) => {
        const cancel = A.handlers.cancel(p, sid);
        const usage = await usageAround(B, p, sid);
        const c = await cancel;
        expect(c.status).toBe(SessionStatus.CANCELLED);
        for (const r of usage.outcomes) expect(r).toBe("SESSION_NOT_OPEN");
        // what was applied happened before the cancel's close: it is in the session's usage
        expect((await A.handlers.get(p, sid)).usage!.inputTokens).toBe(TOKENS + usage.applied);
      }),
    );
  }, 60_000);

  it("a settlement interrupted after the close is finished from the ledger on restart, on the close's terms", async () => {
    const p = await fundedAgent("race-crash");
    const [sid] = await donAll(A, p, 1);
    // A Doff that crashed right after step 1 (the close): only the closing transfers exist.
    const end_ns = clock();
    const close = planCloseMeters(parseSessionId(sid!), { reason: "doff", end_ns });
    expect((await A.state.ledger.createTransfers(close)).every((r) => r.status === 0xffffffff /* created */)).toBe(true);
    expect((await B.handlers.recordUsage(p, [ev(sid!, 2n)])).results[0]!.reason).toBe("SESSION_NOT_OPEN");
    // A restarted daemon rebuilds its state from the ledger; its reaper finishes the settlement.
    const C = createSessionInstance(ctx, { reaper: false });
    await C.ready;
    expect(C.state.open.get(parseSessionId(sid!))?.closing).toBe(true);
    await reapOnce(C.state);
    C.stop();
    const s = await B.handlers.get(p, sid!); // B never indexed it: a ledger read
    expect(s.status).toBe(SessionStatus.DOFFED);
    expect(s.billedDurationMs).toBe((end_ns - (s.donTime!.seconds * 1_000_000_000n + BigInt(s.donTime!.nanos))) / 1_000_000n);
    expectBilled(s, TOKENS, []);
  }, 60_000);
});
