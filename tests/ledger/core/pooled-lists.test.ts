/**
 * The pooled per-account lists behind getAccountTransfers and balance history: many owners,
 * appends, rollback pops and regrowth, large lists that need their own chunk.
 */
import { describe, expect, it } from "vitest";
import { PooledLists } from "../../../src/ledger/embedded/core/pooled-lists.js";

function contents(lists: PooledLists, o: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < lists.length(o); k++) out.push(lists.get(o, k));
  return out;
}

describe("PooledLists", () => {
  it("keeps interleaved lists of many owners, with pops and regrowth", () => {
    const lists = new PooledLists(1);
    const model = new Map<number, number[]>();
    let x = 12345;
    const rand = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    let v = 0;
    for (let step = 0; step < 50_000; step++) {
      const o = rand(3000);
      const m = model.get(o) ?? [];
      model.set(o, m);
      if (m.length > 0 && rand(10) < 3) {
        lists.pop(o);
        m.pop();
      } else {
        lists.push1(o, v);
        m.push(v++);
      }
    }
    for (const [o, m] of model) {
      expect(lists.length(o)).toBe(m.length);
      expect(contents(lists, o)).toEqual(m);
      // sorted (values increase per owner), so lowerBound agrees with a linear search
      const probe = m[Math.floor(m.length / 2)] ?? 0;
      expect(lists.lowerBound(o, probe)).toBe(m.findIndex((e) => e >= probe) === -1 ? m.length : m.findIndex((e) => e >= probe));
      const bytes = [...lists.views(o)].flatMap((b) => [...new Uint32Array(b.slice().buffer)]);
      expect(bytes).toEqual(m);
    }
    expect(lists.length(999_999)).toBe(0);
  });

  it("grows one list past a chunk (dedicated big blocks) and stores 16-word elements", () => {
    const lists = new PooledLists(1);
    const n = 600_000;
    for (let i = 0; i < n; i++) lists.push1(7, i * 3);
    expect(lists.length(7)).toBe(n);
    for (const k of [0, 7, 8, 524_279, 524_280, n - 1]) expect(lists.get(7, k)).toBe(k * 3);
    expect(lists.lowerBound(7, 3 * 524_280)).toBe(524_280);
    let total = 0;
    for (const v of lists.views(7)) total += v.length / 4;
    expect(total).toBe(n);

    const wide = new PooledLists(16);
    for (let i = 0; i < 100; i++) {
      wide.push(3);
      for (let k = 0; k < 16; k++) wide.chunk[wide.offset + k] = i * 16 + k;
    }
    wide.locate(3, 57);
    expect([...wide.chunk.subarray(wide.offset, wide.offset + 16)]).toEqual(Array.from({ length: 16 }, (_, k) => 57 * 16 + k));
  });
});
