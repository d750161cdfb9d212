/**
 * The generated request decoder (src/server/binary-decoder.ts, issue 20, ADR 0131) gives exactly
 * what protobuf-es's fromBinary gives: for every message type of the API (and the
 * google.protobuf types they use), on random messages written in the ways a peer may write them
 * (fields in any order, a singular field repeated (last wins), repeated numbers packed or
 * unpacked, zero values written out, unknown fields of every wire type with one- to five-byte
 * tags, 64-bit extremes, multi-byte strings), the messages are strictly equal; on damaged input
 * (truncated, bytes flipped, overlong varints, invalid UTF-8) the answer — message or error — is
 * protobuf-es's. The hot requests (RecordUsageRequest, DonRequest, DoffRequest) are decoded
 * without protobuf-es on every plain input.
 */
import { describe, expect, test } from "vitest";
import { create, fromBinary, ScalarType, toBinary, type DescEnum, type DescField, type DescFile, type DescMessage } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import * as account from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import * as admin from "../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import * as analytics from "../../clients/gen/masques/ledger/v1/analytics_service_pb.js";
import * as catalog from "../../clients/gen/masques/ledger/v1/catalog_service_pb.js";
import * as common from "../../clients/gen/masques/ledger/v1/common_pb.js";
import * as sessions from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import * as settlement from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import * as webhooks from "../../clients/gen/masques/ledger/v1/webhook_service_pb.js";
import { decodedWithoutProtobufEs, decodeMessage, decodeWithoutProtobufEs } from "../../src/server/binary-decoder.js";

/** Deterministic PRNG (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function allMessages(): DescMessage[] {
  const files = new Map<string, DescFile>();
  for (const mod of [account, admin, analytics, catalog, common, sessions, settlement, webhooks]) {
    for (const v of Object.values(mod)) {
      if (typeof v === "object" && v !== null && "kind" in v && v.kind === "file") files.set(v.name, v);
    }
  }
  const out = new Map<string, DescMessage>();
  const visit = (m: DescMessage): void => {
    if (out.has(m.typeName)) return;
    out.set(m.typeName, m);
    for (const n of m.nestedMessages) visit(n);
    for (const f of m.fields) if (f.message) visit(f.message);
  };
  for (const f of files.values()) for (const m of f.messages) visit(m);
  return [...out.values()];
}

const pick = <T,>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const STRINGS = ["", "a", "0123456789abcdef0123456789abcdef", "é", "€ 1", "😀x", "\ufeffbom", "x".repeat(200), "日本語テキスト"];

function randomBigint(r: () => number, signed: boolean): bigint {
  const edges = signed
    ? [0n, 1n, -1n, 127n, 128n, 16383n, 16384n, -0x8000000000000000n, 0x7fffffffffffffffn, 2n ** 53n + 1n, 2n ** 49n, 2n ** 49n - 1n, -(2n ** 40n)]
    : [0n, 1n, 127n, 128n, 16383n, 16384n, 0xffffffffffffffffn, 2n ** 53n, 2n ** 53n + 1n, 2n ** 49n - 1n, 2n ** 49n, 2n ** 32n, 2n ** 63n];
  if (r() < 0.5) return pick(r, edges);
  const v = (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
  const shifted = v >> BigInt(Math.floor(r() * 64));
  return signed ? BigInt.asIntN(64, r() < 0.3 ? v : shifted) : shifted;
}

function randomScalar(r: () => number, t: ScalarType): unknown {
  switch (t) {
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return r() < 0.5 ? pick(r, [0, 1, -1, 127, 128, -2147483648, 2147483647]) : Math.floor(r() * 2 ** 32) - 2 ** 31;
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return r() < 0.5 ? pick(r, [0, 1, 127, 128, 16384, 4294967295]) : Math.floor(r() * 2 ** 32);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return randomBigint(r, true);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return randomBigint(r, false);
    case ScalarType.BOOL:
      return r() < 0.5;
    case ScalarType.FLOAT:
      return pick(r, [0, -0, 1.5, -2.25, Number.NaN, Number.POSITIVE_INFINITY, Math.fround(r())]);
    case ScalarType.DOUBLE:
      return pick(r, [0, -0, 1.5, -2.25, 1e300, Number.NaN, Number.NEGATIVE_INFINITY, r()]);
    case ScalarType.STRING:
      return pick(r, STRINGS);
    case ScalarType.BYTES:
      return r() < 0.3 ? new Uint8Array(0) : Uint8Array.from({ length: 1 + Math.floor(r() * 40) }, () => Math.floor(r() * 256));
  }
}

const enumValue = (r: () => number, e: DescEnum): number => (r() < 0.8 ? pick(r, e.values).number : 99);

/** How to write one message: the writer's choices (all of them valid protobuf). */
interface Style {
  /** Write zero values of singular fields too. */
  zeros: boolean;
  /** Shuffle field order. */
  shuffle: boolean;
  /** Write a singular scalar twice, the first time with another value. */
  repeats: boolean;
  /** Repeated numbers unpacked (one tag per element) instead of packed. */
  unpacked: boolean;
  /** Unknown fields interleaved. */
  unknown: boolean;
}

function writeScalar(w: BinaryWriter, t: ScalarType, v: unknown): void {
  switch (t) {
    case ScalarType.INT32:
      w.int32(v as number);
      break;
    case ScalarType.SINT32:
      w.sint32(v as number);
      break;
    case ScalarType.SFIXED32:
      w.sfixed32(v as number);
      break;
    case ScalarType.UINT32:
      w.uint32(v as number);
      break;
    case ScalarType.FIXED32:
      w.fixed32(v as number);
      break;
    case ScalarType.INT64:
      w.int64(v as bigint);
      break;
    case ScalarType.SINT64:
      w.sint64(v as bigint);
      break;
    case ScalarType.SFIXED64:
      w.sfixed64(v as bigint);
      break;
    case ScalarType.UINT64:
      w.uint64(v as bigint);
      break;
    case ScalarType.FIXED64:
      w.fixed64(v as bigint);
      break;
    case ScalarType.BOOL:
      w.bool(v as boolean);
      break;
    case ScalarType.FLOAT:
      w.float(v as number);
      break;
    case ScalarType.DOUBLE:
      w.double(v as number);
      break;
    case ScalarType.STRING:
      w.string(v as string);
      break;
    case ScalarType.BYTES:
      w.bytes(v as Uint8Array);
      break;
  }
}

function wireTypeOf(t: ScalarType): WireType {
  switch (t) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WireType.LengthDelimited;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WireType.Bit64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WireType.Bit32;
    default:
      return WireType.Varint;
  }
}

function writeUnknown(r: () => number, w: BinaryWriter, known: Set<number>): void {
  let no = pick(r, [15, 16, 2047, 2048, 262143, 262144, 536870911]);
  while (known.has(no)) no++;
  switch (pick(r, [0, 1, 2, 5])) {
    case 0:
      w.tag(no, WireType.Varint).uint64(randomBigint(r, false));
      break;
    case 1:
      w.tag(no, WireType.Bit64).fixed64(randomBigint(r, false));
      break;
    case 2:
      w.tag(no, WireType.LengthDelimited).string(pick(r, STRINGS));
      break;
    default:
      w.tag(no, WireType.Bit32).fixed32(Math.floor(r() * 2 ** 32));
  }
}

/** Write a random message of `desc` in `style`; nested messages are written the same way. */
function writeRandom(r: () => number, desc: DescMessage, style: Style, depth: number): Uint8Array {
  const w = new BinaryWriter();
  const known = new Set(desc.fields.map((f) => f.number));
  const fields = desc.fields.filter((f) => f.fieldKind !== "map" && r() < 0.75 && !(f.fieldKind === "message" && depth > 3));
  if (style.shuffle) fields.sort(() => r() - 0.5);
  const oneofs = new Set<string>();
  for (const f of fields) {
    if (style.unknown && r() < 0.2) writeUnknown(r, w, known);
    if (f.oneof) {
      if (oneofs.has(f.oneof.localName) && r() < 0.5) continue;
      oneofs.add(f.oneof.localName);
    }
    writeField(r, w, f, style, depth);
  }
  if (style.unknown && r() < 0.5) writeUnknown(r, w, known);
  return w.finish();
}

function writeField(r: () => number, w: BinaryWriter, f: DescField, style: Style, depth: number): void {
  switch (f.fieldKind) {
    case "scalar": {
      const writes = style.repeats && r() < 0.3 ? 2 : 1;
      for (let i = 0; i < writes; i++) {
        const v = randomScalar(r, f.scalar);
        const zero = v === 0 || v === 0n || v === false || v === "" || (v instanceof Uint8Array && v.length === 0);
        if (zero && !style.zeros && !f.oneof) continue;
        w.tag(f.number, wireTypeOf(f.scalar));
        writeScalar(w, f.scalar, v);
      }
      return;
    }
    case "enum": {
      const v = enumValue(r, f.enum);
      if (v === 0 && !style.zeros && !f.oneof) return;
      w.tag(f.number, WireType.Varint).int32(v);
      return;
    }
    case "message":
      w.tag(f.number, WireType.LengthDelimited).bytes(writeRandom(r, f.message, style, depth + 1));
      return;
    case "list": {
      const n = Math.floor(r() * 4);
      if (f.listKind === "message") {
        for (let i = 0; i < n; i++) w.tag(f.number, WireType.LengthDelimited).bytes(writeRandom(r, f.message, style, depth + 1));
        return;
      }
      const scalar = f.listKind === "enum" ? ScalarType.INT32 : f.scalar;
      const values = Array.from({ length: n }, () => (f.listKind === "enum" ? enumValue(r, f.enum) : randomScalar(r, f.scalar)));
      const packable = scalar !== ScalarType.STRING && scalar !== ScalarType.BYTES;
      if (packable && !style.unpacked) {
        if (n === 0) return;
        w.tag(f.number, WireType.LengthDelimited).fork();
        for (const v of values) writeScalar(w, scalar, v);
        w.join();
        return;
      }
      for (const v of values) {
        w.tag(f.number, wireTypeOf(scalar));
        writeScalar(w, scalar, v);
      }
      return;
    }
    case "map":
      return;
  }
}

function randomStyle(r: () => number): Style {
  return { zeros: r() < 0.5, shuffle: r() < 0.5, repeats: r() < 0.5, unpacked: r() < 0.5, unknown: r() < 0.5 };
}

/** fromBinary's answer and decodeMessage's, as comparable values (an error by its message). */
function both(desc: DescMessage, bytes: Uint8Array): { expected: unknown; actual: unknown } {
  const run = (f: () => unknown) => {
    try {
      return { ok: f() };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err) };
    }
  };
  return { expected: run(() => fromBinary(desc, bytes)), actual: run(() => decodeMessage(desc, bytes)) };
}

const MESSAGES = allMessages();
const HOT = [sessions.RecordUsageRequestSchema, sessions.UsageEventSchema, sessions.DonRequestSchema, sessions.DoffRequestSchema];

describe("binary decoder = protobuf-es fromBinary", () => {
  test("every message type of the API without a map field is decoded without protobuf-es", () => {
    expect(MESSAGES.length).toBeGreaterThan(100);
    const fallback = MESSAGES.filter((m) => !decodedWithoutProtobufEs(m)).map((m) => m.typeName);
    expect(fallback).toEqual(["masques.ledger.v1.ErrorInfo"]);
    for (const d of HOT) expect(decodedWithoutProtobufEs(d)).toBe(true);
  });

  test("random messages of every type, written every valid way, decode to fromBinary's message on the generated path", () => {
    const r = rng(20261130);
    let compared = 0;
    for (const desc of MESSAGES) {
      if (!decodedWithoutProtobufEs(desc)) continue;
      for (let i = 0; i < 60; i++) {
        const style = randomStyle(r);
        const bytes = writeRandom(r, desc, style, 0);
        const expected = fromBinary(desc, bytes);
        const fast = decodeWithoutProtobufEs(desc, bytes);
        expect(fast, `${desc.typeName} #${i} ${JSON.stringify(style)} left the generated path`).toBeDefined();
        expect(fast, `${desc.typeName} #${i} ${JSON.stringify(style)}`).toStrictEqual(expected);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(100 * 60);
  });

  test("a Buffer input (what grpc-js hands over) gives Buffer views for bytes and unknown fields, like fromBinary", () => {
    const w = new BinaryWriter();
    w.tag(1, WireType.LengthDelimited).string("s1");
    w.tag(9, WireType.LengthDelimited).bytes(Uint8Array.of(1, 2, 3));
    const bytes = Buffer.from(w.finish());
    const expected = fromBinary(sessions.DoffRequestSchema, bytes);
    const actual = decodeWithoutProtobufEs(sessions.DoffRequestSchema, bytes)!;
    expect(actual).toStrictEqual(expected);
    expect(Buffer.isBuffer(actual.$unknown![0]!.data)).toBe(Buffer.isBuffer(expected.$unknown![0]!.data));
  });

  test("a 500-event RecordUsage request (the usage hot path) decodes on the generated path, 64-bit values exact", () => {
    const events = Array.from({ length: 500 }, (_, i) => ({
      sessionId: `${i.toString(16).padStart(32, "0")}`,
      seq: BigInt(i + 1) * (i % 7 === 0 ? 2n ** 50n : 1n),
      inputTokens: i % 3 === 0 ? 0n : 100n,
      outputTokens: 2n ** 64n - 1n - BigInt(i),
      toolCalls: BigInt(i % 5),
    }));
    const bytes = Buffer.from(toBinary(sessions.RecordUsageRequestSchema, create(sessions.RecordUsageRequestSchema, { events })));
    const fast = decodeWithoutProtobufEs(sessions.RecordUsageRequestSchema, bytes);
    expect(fast).toStrictEqual(fromBinary(sessions.RecordUsageRequestSchema, bytes));
    expect(fast!.events[7]!.seq).toBe(8n * 2n ** 50n);
    expect(fast!.events[499]!.outputTokens).toBe(2n ** 64n - 500n);
  });

  test("damaged input (truncated, flipped bytes, overlong varints, invalid UTF-8) gets protobuf-es's answer", () => {
    const r = rng(7);
    let errors = 0;
    let messages = 0;
    for (const desc of [...HOT, ...MESSAGES.filter((_, i) => i % 5 === 0)]) {
      for (let i = 0; i < 40; i++) {
        const good = writeRandom(r, desc, randomStyle(r), 0);
        const variants: Uint8Array[] = [];
        if (good.length > 0) variants.push(good.subarray(0, Math.floor(r() * good.length)));
        const flipped = Uint8Array.from(good);
        for (let k = 0; k < 1 + Math.floor(r() * 3) && flipped.length > 0; k++) flipped[Math.floor(r() * flipped.length)] = Math.floor(r() * 256);
        variants.push(flipped);
        variants.push(Uint8Array.from([...good, 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])); // 11-byte varint
        variants.push(Uint8Array.from([...good, 0x10, 0x81, 0x80, 0x80, 0x00])); // overlong but valid varint
        variants.push(Uint8Array.from([...good, 0x0a, 0x02, 0xc3, 0x28])); // invalid UTF-8 in field 1
        variants.push(Uint8Array.from([...good, 0x0b, 0x08, 0x01, 0x0c])); // a group
        variants.push(Uint8Array.from([...good, 0x00])); // field number 0
        for (const v of variants) {
          const { expected, actual } = both(desc, v);
          expect(actual, `${desc.typeName} #${i} ${Buffer.from(v).toString("hex")}`).toStrictEqual(expected);
          if ("error" in (expected as object)) errors++;
          else messages++;
        }
      }
    }
    // Both kinds of answer were compared many times.
    expect(errors).toBeGreaterThan(100);
    expect(messages).toBeGreaterThan(100);
  });

  test("a string field with invalid UTF-8 is refused with protobuf-es's error", () => {
    const bytes = Uint8Array.of(0x0a, 0x02, 0xc3, 0x28);
    expect(() => decodeMessage(sessions.DoffRequestSchema, bytes)).toThrow(/invalid UTF-8|encoded data was not valid/i);
    expect(() => decodeMessage(sessions.DoffRequestSchema, bytes)).toThrow(
      (() => {
        try {
          fromBinary(sessions.DoffRequestSchema, bytes);
        } catch (err) {
          return (err as Error).message;
        }
        return "no error";
      })(),
    );
  });
});
