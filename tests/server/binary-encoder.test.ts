/**
 * The one-pass reply encoder (src/server/binary-encoder.ts, issue 20, ADR 0128) writes exactly
 * the bytes protobuf-es's toBinary writes: for every message type of the API (and the
 * google.protobuf types they use), on random values chosen around the encoding's edges (zero and
 * negative numbers, 64-bit extremes, multi-byte and unpaired-surrogate strings, unknown enum
 * values, oneofs, nested and repeated messages, unknown fields), both for full messages and for
 * init shapes (what the gRPC adapter hands it without create()). Values protobuf-es refuses are
 * refused with protobuf-es's own error.
 */
import { describe, expect, test } from "vitest";
import { create, toBinary, type DescEnum, type DescField, type DescMessage, type DescFile, ScalarType } from "@bufbuild/protobuf";
import * as account from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import * as admin from "../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import * as analytics from "../../clients/gen/masques/ledger/v1/analytics_service_pb.js";
import * as catalog from "../../clients/gen/masques/ledger/v1/catalog_service_pb.js";
import * as common from "../../clients/gen/masques/ledger/v1/common_pb.js";
import * as sessions from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import * as settlement from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import * as webhooks from "../../clients/gen/masques/ledger/v1/webhook_service_pb.js";
import { encodedWithoutProtobufEs, encodeMessage } from "../../src/server/binary-encoder.js";

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

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const STRINGS = ["", "a", "0123456789abcdef0123456789abcdef", "é", "€ 1", "😀x", "\ud800", "a\udc00b", "x".repeat(200), "日本語テキスト"];

function randomBigint(r: () => number, signed: boolean): bigint {
  const edges = signed
    ? [0n, 1n, -1n, 127n, 128n, -0x8000000000000000n, 0x7fffffffffffffffn, 2n ** 53n + 1n, -(2n ** 40n)]
    : [0n, 1n, 127n, 128n, 0xffffffffffffffffn, 2n ** 53n, 2n ** 53n + 1n, 2n ** 32n, 2n ** 63n];
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
    case ScalarType.DOUBLE:
      return pick(r, [0, -0, 1.5, -2.25, 1e300, Number.NaN, Number.POSITIVE_INFINITY, r()]);
    case ScalarType.STRING:
      return pick(r, STRINGS);
    case ScalarType.BYTES:
      return r() < 0.3 ? new Uint8Array(0) : Uint8Array.from({ length: 1 + Math.floor(r() * 40) }, () => Math.floor(r() * 256));
  }
}

function randomEnum(r: () => number, e: DescEnum): number {
  return r() < 0.8 ? pick(r, e.values).number : 99;
}

function randomValue(r: () => number, f: DescField, depth: number): unknown {
  switch (f.fieldKind) {
    case "scalar":
      return randomScalar(r, f.scalar);
    case "enum":
      return randomEnum(r, f.enum);
    case "message":
      return depth > 3 ? undefined : randomMessage(r, f.message, depth + 1, true);
    case "list": {
      const n = depth > 3 ? 0 : Math.floor(r() * 4);
      const items: unknown[] = [];
      for (let i = 0; i < n; i++) {
        if (f.listKind === "scalar") items.push(randomScalar(r, f.scalar));
        else if (f.listKind === "enum") items.push(randomEnum(r, f.enum));
        else items.push(randomMessage(r, f.message, depth + 1, true));
      }
      return items;
    }
    case "map":
      return {};
  }
}

/** An init shape with a random subset of fields set (some messages carry unknown fields). */
function randomMessage(r: () => number, desc: DescMessage, depth: number, asInit: boolean): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  for (const f of desc.fields) {
    if (r() < 0.25) continue;
    const v = randomValue(r, f, depth);
    if (v === undefined) continue;
    if (f.oneof) {
      if (r() < 0.5) init[f.oneof.localName] = { case: f.localName, value: v };
    } else init[f.localName] = v;
  }
  if (!asInit && r() < 0.2) {
    const m = create(desc, init) as unknown as Record<string, unknown>;
    m.$unknown = [
      { no: 1000 + Math.floor(r() * 100), wireType: 0, data: Uint8Array.of(0x96, 0x01) },
      { no: 2047, wireType: 2, data: Uint8Array.of(2, 0x68, 0x69) },
    ];
    return m;
  }
  return init;
}

const MESSAGES = allMessages();

describe("binary encoder = protobuf-es toBinary, byte for byte", () => {
  test("every message type of the API without a map field is encoded without protobuf-es", () => {
    expect(MESSAGES.length).toBeGreaterThan(100);
    const hasMap = (m: DescMessage, seen = new Set<string>()): boolean => {
      if (seen.has(m.typeName)) return false;
      seen.add(m.typeName);
      return m.fields.some((f) => f.fieldKind === "map" || (f.message !== undefined && hasMap(f.message, seen)));
    };
    const fallback = MESSAGES.filter((m) => !encodedWithoutProtobufEs(m)).map((m) => m.typeName);
    expect(fallback).toEqual(MESSAGES.filter((m) => hasMap(m)).map((m) => m.typeName));
    expect(fallback).toEqual(["masques.ledger.v1.ErrorInfo"]);
    expect(encodedWithoutProtobufEs(sessions.DonResponseSchema)).toBe(true);
  });

  test("random messages and init shapes of every type", () => {
    const r = rng(20261130);
    let compared = 0;
    for (const desc of MESSAGES) {
      for (let i = 0; i < 60; i++) {
        const init = randomMessage(r, desc, 0, false);
        const msg = "$typeName" in init ? (init as never) : create(desc, init);
        const expected = Buffer.from(toBinary(desc, msg));
        expect(encodeMessage(desc, msg).equals(expected), `${desc.typeName} #${i}`).toBe(true);
        if (!("$typeName" in init)) expect(encodeMessage(desc, init).equals(expected), `${desc.typeName} init #${i}`).toBe(true);
        compared++;
      }
    }
    expect(compared).toBe(MESSAGES.length * 60);
  });

  test("a full Session reply (the hot path's shape) encodes identically", () => {
    const ts = (s: bigint) => ({ $typeName: "google.protobuf.Timestamp" as const, seconds: s, nanos: 123_456_789 });
    const res = create(sessions.DonResponseSchema, {
      created: true,
      session: {
        sessionId: "0123456789abcdef0123456789abcdef",
        agentWalletId: "fedcba9876543210fedcba9876543210",
        masqueName: "researcher",
        masqueIndex: 3n,
        author: "alice",
        priceVersion: 4_000_000_000,
        billingMode: sessions.BillingMode.LIVE,
        status: sessions.SessionStatus.OPEN,
        holdMicro: 5_000_000n,
        donTime: ts(1_764_489_600n),
        deadlineTime: ts(1_764_493_200n),
        lastActivityTime: ts(1_764_489_600n),
        usage: { inputTokens: 0n, outputTokens: 7n, toolCalls: 2n ** 64n - 1n },
        priceMicro: 10_000n,
      },
    });
    expect(encodeMessage(sessions.DonResponseSchema, res)).toEqual(Buffer.from(toBinary(sessions.DonResponseSchema, res)));
  });

  test("values of the wrong type or range get protobuf-es's answer (its error, or its bytes)", () => {
    const refused = [{ priceVersion: -1 }, { priceVersion: 1.5 }, { holdMicro: -1n }, { holdMicro: 2n ** 64n }];
    for (const bad of refused) {
      const msg = create(sessions.SessionSchema, {});
      Object.assign(msg, bad);
      let expected: unknown;
      try {
        toBinary(sessions.SessionSchema, msg);
      } catch (err) {
        expected = err;
      }
      expect(expected).toBeInstanceOf(Error);
      expect(() => encodeMessage(sessions.SessionSchema, msg)).toThrow((expected as Error).message);
    }
    // protobuf-es accepts these loosely typed values (a number for a string or a 64-bit field).
    for (const loose of [{ sessionId: 7 as unknown as string }, { holdMicro: 42 as unknown as bigint }, { holdMicro: "42" as unknown as bigint }]) {
      const msg = create(sessions.SessionSchema, {});
      Object.assign(msg, loose);
      expect(encodeMessage(sessions.SessionSchema, msg)).toEqual(Buffer.from(toBinary(sessions.SessionSchema, msg)));
    }
  });

  test("a message of another type is refused like toBinary refuses it", () => {
    const other = create(sessions.UsageSchema, { inputTokens: 1n });
    expect(() => toBinary(sessions.SessionSchema, other as never)).toThrow();
    expect(() => encodeMessage(sessions.SessionSchema, other as never)).toThrow();
  });
});
