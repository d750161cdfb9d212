/**
 * ADR 0118 (amendment otlp-rows): encodeTsv builds lines by concatenation and reuses the decimal
 * text of the last wide bigints of each column. The text the streamer sends ClickHouse must not
 * change: for random rows (strings with tabs, newlines, carriage returns, backslashes, quotes and
 * unicode; bigints of every width, recurring, alternating and negative; numbers; booleans) it
 * equals the cell-array encoder as of 3471590, kept below as the reference.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { encodeTsv, TsvLine, type Cell, type Row } from "../../src/streamer/sink.js";

function refEscapeTsv(s: string): string {
  if (!/[\\\t\n\r]/.test(s)) return s;
  return s.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r");
}
function refEncodeTsv(rows: readonly Row[]): string {
  const lines: string[] = new Array<string>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    const cells: string[] = new Array<string>(row.length);
    for (let c = 0; c < row.length; c++) {
      const v = row[c]!;
      cells[c] = typeof v === "bigint" ? (v === 0n ? "0" : v.toString()) : typeof v === "number" ? "" + v : typeof v === "string" ? refEscapeTsv(v) : v ? "1" : "0";
    }
    lines[r] = cells.join("\t");
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

const text = fc
  .array(fc.oneof(fc.constantFrom("\t", "\n", "\r", "\\", "\\t", '"', "'", "é", "日本", "😀", "\ud800", "\u0000", " "), fc.string({ maxLength: 8 }), fc.string({ unit: "grapheme", maxLength: 4 })), { maxLength: 10 })
  .map((p) => p.join(""));
/** A few 128-bit ids that recur across rows, as account and session ids do. */
const recurring = fc.constantFrom(...Array.from({ length: 8 }, (_, i) => (BigInt(i + 1) << 120n) ^ 0x0123456789abcdef0123456789abcdefn));
const bigint = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }),
  fc.constantFrom(0n, 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 1n, 2n ** 64n, -(2n ** 53n), -(2n ** 64n), 2n ** 128n - 1n),
  recurring,
);
const cell: fc.Arbitrary<Cell> = fc.oneof(text, bigint, fc.double(), fc.integer(), fc.constantFrom(0, -0, NaN, Infinity, 1e21, 5e-324), fc.boolean());
const rows = fc.array(fc.array(cell, { maxLength: 18 }), { maxLength: 12 });

describe("encodeTsv", () => {
  test("random rows encode byte-identically to the reference encoder", () => {
    fc.assert(
      fc.property(rows, (rs) => {
        expect(encodeTsv(rs)).toBe(refEncodeTsv(rs));
      }),
      { numRuns: 2000 },
    );
  });

  test("ids that recur, alternate, or differ only in their top byte (a session's meters) keep their own text", () => {
    const session = 0x0123456789abcdef0123456789abcdefn;
    const meters = [0x82n, 0x83n, 0x84n].map((tag) => session ^ (tag << 120n));
    const rs: Row[] = Array.from({ length: 300 }, (_, i) => [
      session ^ (BigInt(1 + (i % 3)) << 120n) ^ BigInt(i), meters[i % 3]!, meters[(i * 7) % 3]!, session, i % 2 === 0 ? session : meters[0]!, "usage_input_tokens",
    ]);
    expect(encodeTsv(rs)).toBe(refEncodeTsv(rs));
  });

  test("a TsvLine is copied as it is, between encoded rows; a line break in it is refused", () => {
    const line = new TsvLine("2026-11-30 08:00:00.000000001\tab\\\\c\t{\\\\\"q\\\\\"}");
    expect(encodeTsv([[1n, "a\tb"], line, [true]])).toBe(`1\ta\\tb\n${line.text}\n1\n`);
    expect(() => new TsvLine("a\nb")).toThrow(/line break/);
    expect(() => new TsvLine("a\rb")).toThrow(/line break/);
  });
});
