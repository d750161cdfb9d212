/**
 * Issue 20 (ADR 0114): a Doff reaches the ledger in as few requests as its design allows, and
 * the work it skips changes nothing it does. Counted on the real embedded ledger behind the
 * coalescer (every call passes through to it): close the meters (one create), read the final
 * usage (one read per usage meter that can hold any: the tool-call meter always; no lookup when
 * this daemon's Don counted the hold), submit the Doff chain (one create). session.settled still
 * reaches an endpoint registered for it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStatus, type UsageEvent } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { dayUsedMicro } from "../../src/domain/limits.js";
import { parseSessionId, planUsage } from "../../src/domain/sessions.js";
import { countedTransferId } from "../../src/services/sessions/limits.js";
import type { SessionServiceInstance } from "../../src/services/sessions/service.js";
import { newSessionId } from "./harness.js";
import { donReq, startInProcess, type InProcess } from "./inprocess.js";

type Op = "createTransfers" | "createAccounts" | "lookupTransfers" | "lookupAccounts" | "getAccountTransfers" | "queryAccounts" | "queryTransfers" | "getAccountBalances";
const OPS: Op[] = ["createTransfers", "createAccounts", "lookupTransfers", "lookupAccounts", "getAccountTransfers", "queryAccounts", "queryTransfers", "getAccountBalances"];

let env: InProcess;
let S: SessionServiceInstance;
const calls = new Map<Op, number>();
let counting = false;

beforeAll(async () => {
  env = await startInProcess();
  // Count the service's requests to the ledger: each method passes through to the real client.
  const ledger = env.ctx.ledger as unknown as Record<Op, (...a: unknown[]) => Promise<unknown>>;
  for (const op of OPS) {
    const real = ledger[op].bind(ledger);
    ledger[op] = (...a: unknown[]) => {
      if (counting) calls.set(op, (calls.get(op) ?? 0) + 1);
      return real(...a);
    };
  }
  S = await env.instance();
});
afterAll(async () => env?.close());

/** The day account the session's Don counted its hold on, as the ledger has it now. */
async function dayOf(sid: string) {
  const [c] = await env.ctx.ledger.lookupTransfers([countedTransferId(parseSessionId(sid))]);
  expect(c, "the Don counted its hold on a day account").toBeDefined();
  const [day] = await env.ctx.ledger.lookupAccounts([c!.debit_account_id]);
  return day;
}

async function counted<T>(f: () => Promise<T>): Promise<{ result: T; requests: Partial<Record<Op, number>> }> {
  calls.clear();
  counting = true;
  try {
    const result = await f();
    return { result, requests: Object.fromEntries(calls) };
  } finally {
    counting = false;
  }
}

describe("Doff's ledger requests", () => {
  it("a Doff of an open session with usage: two creates (close, chain), one read per usage meter, no lookup; the unused hold goes back to the day", async () => {
    const p = await env.fundedAgent("rt-doff");
    const sid = newSessionId();
    const don = await S.handlers.don(p, donReq(sid));
    const hold = don.session.holdMicro;
    expect(hold).toBeGreaterThan(0n);
    const usage = { sessionId: sid, seq: 1n, inputTokens: 1_000n, outputTokens: 500n, toolCalls: 2n } as UsageEvent;
    expect((await S.handlers.recordUsage(p, [usage])).applied).toBe(1);
    expect(dayUsedMicro(await dayOf(sid))).toBe(hold);
    const { result: s, requests } = await counted(() => S.handlers.doff(p, sid));
    expect(s.status).toBe(SessionStatus.DOFFED);
    // Before ADR 0114 what the Don counted was a second lookup of its own; since its second
    // amendment the Don's count is remembered and the hold, closes and post/void are not looked up.
    expect(requests).toEqual({ createTransfers: 2, getAccountTransfers: 3 });
    // The release of the unused hold rests on that merged read: the day keeps only the charge.
    expect(s.postedMicro).toBeGreaterThan(0n);
    expect(s.postedMicro).toBeLessThan(hold);
    expect(dayUsedMicro(await dayOf(sid))).toBe(s.postedMicro + s.debtMicro);
  });

  it("a Cancel of a session without usage reads only its tool-call meter, and gives the whole hold back to the day", async () => {
    const p = await env.fundedAgent("rt-cancel");
    const sid = newSessionId();
    await S.handlers.don(p, donReq(sid));
    const { result: s, requests } = await counted(() => S.handlers.cancel(p, sid));
    expect(s.status).toBe(SessionStatus.CANCELLED);
    expect(requests).toEqual({ createTransfers: 2, getAccountTransfers: 1 });
    expect(dayUsedMicro(await dayOf(sid))).toBe(0n);
  });

  it("usage the daemon has not seen answered (applied just before the close) is billed: the tool-call meter shows it and the token meters are read", async () => {
    const p = await env.fundedAgent("rt-unseen");
    const usage = { seq: 1n, input_tokens: 40_000n, output_tokens: 20_000n, tool_calls: 0n };
    // Reference: the same usage through RecordUsage, whose reply the daemon saw.
    const seen = newSessionId();
    await S.handlers.don(p, donReq(seen));
    const ev = { sessionId: seen, seq: 1n, inputTokens: usage.input_tokens, outputTokens: usage.output_tokens, toolCalls: 0n } as UsageEvent;
    expect((await S.handlers.recordUsage(p, [ev])).applied).toBe(1);
    const reference = await S.handlers.doff(p, seen);
    expect(reference.chargedMicro).toBeGreaterThan(0n);
    // The race: the usage chain is in the ledger, but the daemon's index never saw its reply.
    const sid = newSessionId();
    await S.handlers.don(p, donReq(sid));
    const chain = planUsage(S.state.ids, { session_id: parseSessionId(sid), agent_id: p.id, ...usage });
    expect((await env.ctx.ledger.createTransfers(chain)).map((r) => r.timestamp > 0n)).toEqual(chain.map(() => true));
    const { result: s, requests } = await counted(() => S.handlers.doff(p, sid));
    expect(s.status).toBe(SessionStatus.DOFFED);
    expect(s.usage).toMatchObject({ inputTokens: usage.input_tokens, outputTokens: usage.output_tokens });
    expect([s.priceMicro, s.chargedMicro, s.authorShareMicro, s.platformFeeMicro]).toEqual([reference.priceMicro, reference.chargedMicro, reference.authorShareMicro, reference.platformFeeMicro]);
    // The tool-call meter first, then both token meters the index knew nothing about.
    expect(requests).toEqual({ createTransfers: 2, getAccountTransfers: 3 });
  });

  it("after a restart (index rebuilt from the ledger) a Doff reads what the Don counted, and the unused hold still goes back to the day", async () => {
    const p = await env.fundedAgent("rt-restart");
    const sid = newSessionId();
    const don = await S.handlers.don(p, donReq(sid));
    const after = await env.instance(); // rebuilds its open index from the ledger
    const { result: s, requests } = await counted(() => after.handlers.doff(p, sid));
    expect(s.status).toBe(SessionStatus.DOFFED);
    // A new instance also makes sure of the meters (createAccounts) and reads the pin (lookupAccounts).
    expect(requests).toMatchObject({ createTransfers: 2, lookupTransfers: 1, getAccountTransfers: 1 });
    expect(s.chargedMicro).toBeLessThan(don.session.holdMicro);
    expect(dayUsedMicro(await dayOf(sid))).toBe(s.chargedMicro);
    // The first instance's index still says open: its Doff is answered from the ledger's record.
    const again = await S.handlers.doff(p, sid);
    expect([again.status, again.chargedMicro, again.authorShareMicro]).toEqual([s.status, s.chargedMicro, s.authorShareMicro]);
  });
});

describe("session.settled is built only when an endpoint may receive it", () => {
  it("no endpoint: nothing is stored; an endpoint registered for the author: the next Doff's event is delivered to it", async () => {
    const hooks = env.ctx.controlplane.webhooks;
    const p = await env.fundedAgent("rt-hooks");
    const first = newSessionId();
    await S.handlers.don(p, donReq(first));
    const settled = await S.handlers.doff(p, first);
    expect(settled.status).toBe(SessionStatus.DOFFED);
    const ep = await hooks.createEndpoint({
      owner_kind: "author",
      owner_id: settled.author,
      url: "https://hooks.example.test/settled",
      event_types: ["session.settled"],
      allow_private_network: false,
      create_time_ns: env.ctx.clock(),
    });
    const second = newSessionId();
    await S.handlers.don(p, donReq(second));
    await S.handlers.doff(p, second);
    const deliveries = await hooks.listDeliveries(ep.endpoint_id, null, null, 10);
    expect(deliveries.map((d) => d.event_type)).toEqual(["session.settled"]);
    expect(JSON.parse(deliveries[0]!.payload)).toMatchObject({ type: "session.settled", data: { session_id: second } });
  });
});
