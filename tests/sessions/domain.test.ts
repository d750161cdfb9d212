import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { describe, expect, it } from "vitest";
import { CatalogError, loadCatalog, parseMasque, PriceBookRegistry } from "../../src/domain/catalog.js";
import { reapMarginNs } from "../../src/services/sessions/reaper.js";
import { deterministicId } from "../../src/domain/ids.js";
import { issuanceLimitTransferId } from "../../src/domain/balance-bounds.js";
import { Ledger } from "../../src/domain/codes.js";
import {
  decodeHoldTag,
  encodeHoldTag,
  parseSessionId,
  planCancel,
  planDoff,
  planDon,
  planHeartbeat,
  planUsage,
  priceSession,
  reconstructSession,
  sessionMeterId,
  sessionTransferIds,
  usageTransferId,
  type SessionAccountIds,
} from "../../src/domain/sessions.js";

const ids: SessionAccountIds = {
  agentWallet: (a) => deterministicId("t", "wallet", a),
  agentDebt: (a) => deterministicId("t", "debt", a),
  authorEarnings: (a) => deterministicId("t", "author", a),
  escrow: deterministicId("t", "escrow"),
  platformRevenue: deterministicId("t", "platform"),
  usageMeter: (a, l) => deterministicId("t", "meter", a, l),
  usageSink: (l) => deterministicId("t", "sink", l),
};

const MASQUE = `
name: demo
index: 7
version: "1.0.0"
author: author-x
lens: "be brief"
pricing:
  flat_per_session: "0.01"
  per_1k_output_tokens: "0.002"
  reserve: "1"
`;

describe("catalog", () => {
  it("loads the shipped example masques with exact pricing", () => {
    const c = loadCatalog(path.resolve("masques"));
    expect(c.list().map((m) => m.name)).toEqual(["code-reviewer", "researcher", "pair-programmer"]);
    const cr = c.byName.get("code-reviewer")!;
    expect(cr.author).toBe("author-ada");
    expect(cr.pricing.reserve_micro).toBe(2_000_000n);
    expect(cr.pricing.per_1k_input_tokens_pico).toBe(300_000_000n);
    expect(c.indexesOfAuthor("author-ada")).toEqual([1, 3]);
  });

  it("rejects bad masques with the file and field in the message", () => {
    expect(() => parseMasque(MASQUE.replace('"0.002"', '"0.0000000000001"'), "m.yaml")).toThrow(
      /m\.yaml: pricing\.per_1k_output_tokens: expected a decimal USD rate/,
    );
    expect(() => parseMasque(MASQUE.replace('reserve: "1"', 'reserve: "0.001"'), "m.yaml")).toThrow(
      /reserve must cover flat_per_session/,
    );
    expect(() => parseMasque(MASQUE.replace("author: author-x\n", ""), "m.yaml")).toThrow(/author/);
    expect(() => parseMasque(MASQUE.replace('"0.01"', "0.01"), "m.yaml")).toThrow(/flat_per_session/);
  });

  it("a price change is a new price-book version; the registry keeps every version across restarts", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pricebook-"));
    const v1 = parseMasque(MASQUE, "a.yaml");
    const v1again = parseMasque(MASQUE.replace("be brief", "be very brief"), "a.yaml");
    const v2 = parseMasque(MASQUE.replace('"0.002"', '"0.003"'), "a.yaml");
    expect(v1again.price_version).toBe(v1.price_version); // lens edits do not reprice
    expect(v2.price_version).not.toBe(v1.price_version);
    const r1 = new PriceBookRegistry(dir);
    r1.registerCatalog({ list: () => [v1] } as never);
    const r2 = new PriceBookRegistry(dir);
    r2.registerCatalog({ list: () => [v2] } as never);
    const r3 = new PriceBookRegistry(dir);
    expect(r3.get(v1.price_version)?.pricing.per_1k_output_tokens_pico).toBe(2_000_000_000n);
    expect(r3.get(v2.price_version)?.pricing.per_1k_output_tokens_pico).toBe(3_000_000_000n);
    expect(r3.indexesOfAuthor("author-x")).toEqual([7]);
  });

  it("duplicate names or indexes are refused", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "masques-"));
    fs.writeFileSync(path.join(dir, "a.yaml"), MASQUE);
    fs.writeFileSync(path.join(dir, "b.yml"), MASQUE.replace("name: demo", "name: other"));
    expect(() => loadCatalog(dir)).toThrow(CatalogError);
  });
});

describe("session plans", () => {
  const sid = parseSessionId("0123456789abcdef0123456789abcdef");

  it("session ids accept 32 hex or a UUID and nothing else", () => {
    expect(parseSessionId("01234567-89ab-cdef-0123-456789abcdef")).toBe(sid);
    expect(() => parseSessionId("xyz")).toThrow();
    expect(() => parseSessionId("0".repeat(32))).toThrow();
  });

  it("hold tag round-trips price version and mode", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 30 - 1 }), fc.constantFrom("shadow", "soft", "live" as const), (v, m) => {
        expect(decodeHoldTag(encodeHoldTag(v, m))).toEqual({ price_version: v, mode: m });
      }),
    );
  });

  it("don, usage, doff rebuild the same session from the transfers alone", () => {
    const pb = parseMasque(MASQUE, "a.yaml");
    const don = planDon(ids, { session_id: sid, agent_id: "ag", masque_index: 7, price_version: pb.price_version, mode: "live", hold_micro: 1_000_000n, timeout_s: 3600 });
    expect(don.flags).toBe(TransferFlags.pending);
    const u1 = planUsage(ids, { session_id: sid, agent_id: "ag", seq: 1n, input_tokens: 100n, output_tokens: 2000n, tool_calls: 0n });
    const u2 = planUsage(ids, { session_id: sid, agent_id: "ag", seq: 2n, input_tokens: 0n, output_tokens: 500n, tool_calls: 3n });
    // the tool-call transfer first, always (the event's idempotency anchor), then the token kinds
    expect(u1.map((t) => t.flags)).toEqual([TransferFlags.linked, TransferFlags.linked, TransferFlags.none]);
    expect(u1.map((t) => [t.ledger, t.amount])).toEqual([[4, 0n], [2, 100n], [3, 2000n]]);
    const hb = planHeartbeat(ids, sid, "ag", 1n);
    const s = priceSession(pb.pricing, "live", 1_000_000n, { input_tokens: 100n, output_tokens: 2500n, tool_calls: 3n }, 60_000n, 1_500);
    expect(s.price_micro).toBe(15_000n); // 0.01 flat + 2.5k output tokens x 0.002/1k
    const doff = planDoff(ids, { session_id: sid, agent_id: "ag", author_id: "author-x", masque_index: 7, settlement: s, billed_duration_ms: 60_000n, fee_bps: 1_500, reason: "doff" });
    expect(doff.map((t) => t.flags & TransferFlags.linked)).toEqual([1, 1, 0]);
    // escrow is zero-sum over the chain: posted in, author + platform out
    const escrowIn = s.posted_micro;
    const escrowOut = doff.filter((t) => t.debit_account_id === ids.escrow).reduce((a, t) => a + t.amount, 0n);
    expect(escrowOut).toBe(escrowIn);
    let ts = 1_000_000_000_000n;
    const stamp = (t: Transfer): Transfer => ({ ...t, timestamp: (ts += 1_000_000_000n) });
    const all = [don, ...u1, hb, ...u2, ...doff].map(stamp);
    const v = reconstructSession(sid, all, ts)!;
    expect(v).toMatchObject({
      status: "doffed",
      masque_index: 7,
      price_version: pb.price_version,
      mode: "live",
      hold_micro: 1_000_000n,
      usage: { input_tokens: 100n, output_tokens: 2500n, tool_calls: 3n },
      usage_events: 2,
      billed_duration_ms: 60_000n,
      posted_micro: 15_000n,
      author_micro: 12_750n,
      platform_micro: 2_250n,
      fee_bps: 1_500,
    });
    const open = reconstructSession(sid, [don, ...u1].map(stamp), ts)!;
    expect(open.status).toBe("open");
    const expired = reconstructSession(sid, [don].map(stamp), ts + 3_601_000_000_000n)!;
    expect(expired.status).toBe("expired");
    const cancelled = reconstructSession(sid, [don, planCancel(sid)].map(stamp), ts)!;
    expect(cancelled.status).toBe("cancelled");
    expect(reconstructSession(sid, u1, ts)).toBeNull();
  });

  it("soft overrun adds a debt leg; usage ids are unique per (session, seq, kind)", () => {
    const s = priceSession(parseMasque(MASQUE, "a.yaml").pricing, "soft", 10_000n, { input_tokens: 0n, output_tokens: 5000n, tool_calls: 0n }, 0n, 1000);
    expect(s.debt_micro).toBe(10_000n);
    const doff = planDoff(ids, { session_id: sid, agent_id: "ag", author_id: "a", masque_index: 7, settlement: s, billed_duration_ms: 0n, fee_bps: 1000, reason: "idle" });
    expect(doff.map((t) => t.id)).toEqual([
      sessionTransferIds(sid).post,
      sessionTransferIds(sid).debt,
      issuanceLimitTransferId(sessionTransferIds(sid).debt),
      sessionTransferIds(sid).author,
      sessionTransferIds(sid).platform,
    ]);
    // the debt is an issuance (ADR 0055): the limit transfer of the same amount, linked, right after it
    expect(doff[2]).toMatchObject({ ledger: Ledger.issuance_limit, amount: 10_000n, user_data_128: sessionTransferIds(sid).debt });
    expect(doff.slice(0, -1).every((t) => (t.flags & TransferFlags.linked) !== 0)).toBe(true);
    const a = planUsage(ids, { session_id: sid, agent_id: "ag", seq: 5n, input_tokens: 1n, output_tokens: 1n, tool_calls: 1n });
    const b = planUsage(ids, { session_id: sid, agent_id: "ag", seq: 5n, input_tokens: 1n, output_tokens: 1n, tool_calls: 1n });
    expect(a.map((t) => t.id)).toEqual(b.map((t) => t.id));
    expect(new Set(a.map((t) => t.id)).size).toBe(3);
    const c = planUsage(ids, { session_id: sid, agent_id: "ag", seq: 5n, input_tokens: 2n, output_tokens: 1n, tool_calls: 1n });
    expect(c[0]!.user_data_32).not.toBe(a[0]!.user_data_32);
  });
});

describe("reaper margin", () => {
  it("settles sessions at least 3 intervals and at least min(60 s, a tenth of the maximum length) before the hold's timeout", () => {
    expect(reapMarginNs(5_000, 86_400)).toBe(60_000_000_000n);
    expect(reapMarginNs(60_000, 86_400)).toBe(180_000_000_000n);
    expect(reapMarginNs(100, 2)).toBe(300_000_000n);
    expect(reapMarginNs(50, 2)).toBe(200_000_000n);
    expect(reapMarginNs(1_500, 10)).toBe(4_500_000_000n); // never shorter than 3 intervals (issue 11)
  });
});

describe("usage ids", () => {
  it("are distinct per (seq, kind), from the session's money ids and across sessions", () => {
    const a = parseSessionId("0123456789abcdef0123456789abcdef");
    const b = parseSessionId("fedcba9876543210fedcba9876543210");
    const seen = new Set<bigint>();
    for (const sid of [a, b]) {
      const t = sessionTransferIds(sid);
      for (const id of [t.hold, t.post, t.void, t.author, t.platform, t.debt]) seen.add(id);
      for (let seq = 1n; seq <= 200n; seq++) {
        for (const k of ["input_tokens", "output_tokens", "tool_calls"] as const) seen.add(usageTransferId(sid, seq, k));
      }
    }
    expect(seen.size).toBe(2 * (6 + 600));
    expect(usageTransferId(a, 7n, "tool_calls")).toBe(usageTransferId(a, 7n, "tool_calls"));
    // planUsage's transfers carry exactly these ids and the session's meters (they are in the ledger: never changing)
    for (const seq of [1n, 2n, (1n << 64n) - 1n]) {
      const chain = planUsage(ids, { session_id: b, agent_id: "ag", seq, input_tokens: 3n, output_tokens: 4n, tool_calls: 5n });
      expect(chain.map((t) => t.id)).toEqual((["tool_calls", "input_tokens", "output_tokens"] as const).map((k) => usageTransferId(b, seq, k)));
      expect(chain.map((t) => t.debit_account_id)).toEqual([Ledger.usage_tool_calls, Ledger.usage_input_tokens, Ledger.usage_output_tokens].map((l) => sessionMeterId(b, l)));
    }
  });
});
