import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { deterministicId, idToHex } from "../../src/domain/ids.js";
import { holdIdOfHex, sessionTransferIds } from "../../src/domain/sessions.js";

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

  it("derived ids are stable across reads", () => {
    const ids = sessionTransferIds(0x1234n);
    expect(ids.post).toBe(ids.post);
    expect(new Set([ids.hold, ids.post, ids.void, ids.author, ids.platform, ids.debt]).size).toBe(6);
  });
});
