import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { deterministicId, hexIdDeriver, idToHex } from "../../src/domain/ids.js";
import { debtRepaymentId, planDebtRepayment } from "../../src/domain/refunds.js";
import { holdIdOfHex, sessionCloseIds, sessionTransferIds } from "../../src/domain/sessions.js";

describe("session hold id (fast path)", () => {
  it("is the same id deterministicId('transfer', 'don', hex) names, so existing ledgers stay readable", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: (1n << 128n) - 2n }), (sid) => {
        const hex = idToHex(sid);
        expect(holdIdOfHex(hex)).toBe(deterministicId("transfer", "don", hex));
        expect(sessionTransferIds(sid).hold).toBe(deterministicId("transfer", "don", hex));
      }),
      { numRuns: 500 },
    );
  });

  it("names a session's transfers with the ids ADR 0032 fixes (known answers, worked outside this code)", () => {
    // Worked independently (Python hashlib): hold = first 16 bytes of SHA-256 over
    // "masques-ledger/id/v1" + for each of ["transfer", "don", "00000000000000000000000000001234"]:
    // 4-byte big-endian length + UTF-8; the others = hold XOR (tag << 120) with tags
    // post 0x10, void 0x20, author 0x30, platform 0x40, debt 0x50.
    const expected = {
      hold: 0x9d2796956b86b50a8cd2330fb987e38bn,
      post: 0x8d2796956b86b50a8cd2330fb987e38bn,
      void: 0xbd2796956b86b50a8cd2330fb987e38bn,
      author: 0xad2796956b86b50a8cd2330fb987e38bn,
      platform: 0xdd2796956b86b50a8cd2330fb987e38bn,
      debt: 0xcd2796956b86b50a8cd2330fb987e38bn,
    };
    const ids = sessionTransferIds(0x1234n);
    // read in an order other than declaration order: each lazily derived id is still its own
    expect({ debt: ids.debt, author: ids.author, post: ids.post, hold: ids.hold, platform: ids.platform, void: ids.void }).toEqual(expected);
    expect(new Set(Object.values(expected)).size).toBe(6);
  });

  it("derived ids are the same on every read, from the memo and after it was evicted", () => {
    const first = { ...pick(sessionTransferIds(0x1234n)) };
    expect(pick(sessionTransferIds(0x1234n))).toEqual(first);
    // more sessions than the memo holds (100,000): 0x1234 is rebuilt from scratch
    for (let i = 1n; i <= 100_001n; i++) sessionTransferIds(0x10_0000n + i);
    const rebuilt = sessionTransferIds(0x1234n);
    expect(pick(rebuilt)).toEqual(first);
  });
});

describe("Doff's other derived ids (ADR 0114: one SHA-256 call, memoized close ids)", () => {
  it("the author-debt repayment id is the one deterministicId names (a Doff retried across versions finds its event)", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: (1n << 128n) - 2n }), (base) => {
        const generic = deterministicId("transfer", "author_debt_repayment", idToHex(base));
        expect(debtRepaymentId(base)).toBe(generic);
        expect(planDebtRepayment(base, 7n, 9n).id).toBe(generic);
      }),
      { numRuns: 500 },
    );
    // Worked independently (Python hashlib) from the hold id of session 0x1234 above.
    expect(debtRepaymentId(0x9d2796956b86b50a8cd2330fb987e38bn)).toBe(0x32d70da6bb30bf5c954881ed790aa2c6n);
  });

  it("hexIdDeriver falls back to deterministicId for anything but 32 lowercase hex digits", () => {
    const f = hexIdDeriver("transfer", "x");
    for (const text of ["abc", "ABCDEF0123456789ABCDEF0123456789", "é".repeat(32), "0".repeat(33)]) {
      expect(f(text)).toBe(deterministicId("transfer", "x", text));
    }
  });

  it("close ids are hold XOR the per-ledger tags (0x92, 0x93, 0x94), whichever sessions were asked for in between", () => {
    expect(sessionCloseIds(0x1234n)).toEqual([0x0f2796956b86b50a8cd2330fb987e38bn, 0x0e2796956b86b50a8cd2330fb987e38bn, 0x092796956b86b50a8cd2330fb987e38bn]);
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: 1n, max: (1n << 128n) - 2n }), { minLength: 1, maxLength: 8 }), (sids) => {
        for (const sid of [...sids, ...sids.reverse()]) {
          const hold = deterministicId("transfer", "don", idToHex(sid));
          expect(sessionTransferIds(sid).hold).toBe(hold);
          expect(sessionCloseIds(sid)).toEqual([0x92n, 0x93n, 0x94n].map((t) => hold ^ (t << 120n)));
        }
      }),
      { numRuns: 100 },
    );
  });
});

function pick(ids: ReturnType<typeof sessionTransferIds>) {
  return { hold: ids.hold, post: ids.post, void: ids.void, author: ids.author, platform: ids.platform, debt: ids.debt };
}
