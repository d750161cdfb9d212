/**
 * Reply building and encoding on the hot calls (issue 20, ADR 0128), in process, CPU µs per reply
 * (process.cpuUsage, so other load on the machine inflates the figures less than wall time):
 *
 *   npm run bench:replies            # defaults: 100,000 replies per case, 5 rounds
 *   npm run bench:replies -- 50000 3 # replies per case, rounds
 *
 * Cases, each building the reply object the handler returns and encoding it to protobuf binary:
 *   don full, protobuf-es      create(DonResponse) + toBinary (the adapter before ADR 0128)
 *   don full, one-pass         the init shape straight to src/server/binary-encoder.ts
 *   don basic, one-pass        SESSION_VIEW_BASIC (id, state and amounts only)
 *   usage 500, protobuf-es     a RecordUsage reply of 500 APPLIED results (per reply)
 *   usage 500, one-pass
 * Prints the median over rounds and the encoded size. Compare ratios from one run.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  BillingMode,
  CloseReason,
  DonResponseSchema,
  RecordUsageResponseSchema,
  SessionStatus,
  UsageOutcome,
  type Session,
} from "../clients/gen/masques/ledger/v1/session_service_pb.js";
import { encodeMessage } from "../src/server/binary-encoder.js";

const N = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 5);

const ts = (ns: bigint): Timestamp => ({ $typeName: "google.protobuf.Timestamp", seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) });

/** What sessionToProto returns for a settled session, full view (src/services/sessions/proto.ts). */
function fullSession(i: number): Session {
  const don_ns = 1_764_489_600_123_456_789n + BigInt(i);
  return {
    $typeName: "masques.ledger.v1.Session",
    sessionId: "0123456789abcdef0123456789abcdef",
    agentWalletId: "fedcba9876543210fedcba9876543210",
    masqueName: "researcher",
    masqueIndex: 3n,
    author: "author-ada",
    priceVersion: 2_876_543_210,
    billingMode: BillingMode.LIVE,
    status: SessionStatus.DOFFED,
    closeReason: CloseReason.DOFF,
    holdMicro: 500_000n,
    donTime: ts(don_ns),
    deadlineTime: ts(don_ns + 3_600_000_000_000n),
    endTime: ts(don_ns + 2_000_000_000n),
    lastActivityTime: ts(don_ns + 1_000_000_000n),
    usage: { $typeName: "masques.ledger.v1.Usage", inputTokens: 10_000n, outputTokens: 5_000n, toolCalls: 3n },
    usageEvents: 1n,
    billedDurationMs: 2_000n,
    priceMicro: 7_500n,
    chargedMicro: 7_500n,
    postedMicro: 7_500n,
    debtMicro: 0n,
    refundMicro: 492_500n,
    unbilledMicro: 0n,
    authorShareMicro: 6_375n,
    platformFeeMicro: 1_125n,
    platformFeeBps: 1500,
  };
}

/** The same session in SESSION_VIEW_BASIC. */
function basicSession(i: number): Session {
  return {
    ...fullSession(i),
    agentWalletId: "",
    masqueName: "",
    masqueIndex: 0n,
    author: "",
    priceVersion: 0,
    donTime: undefined,
    deadlineTime: undefined,
    endTime: undefined,
    lastActivityTime: undefined,
    usage: undefined,
    usageEvents: 0n,
    billedDurationMs: 0n,
  };
}

function usageReply(): { results: { outcome: UsageOutcome; reason: string }[]; applied: number; duplicates: number; rejected: number } {
  return { results: Array.from({ length: 500 }, () => ({ outcome: UsageOutcome.APPLIED, reason: "" })), applied: 500, duplicates: 0, rejected: 0 };
}

interface Case {
  name: string;
  n: number;
  run: (i: number) => number;
}

const cases: Case[] = [
  { name: "don full, protobuf-es", n: N, run: (i) => toBinary(DonResponseSchema, create(DonResponseSchema, { session: fullSession(i), created: true })).byteLength },
  { name: "don full, one-pass", n: N, run: (i) => encodeMessage(DonResponseSchema, { session: fullSession(i), created: true }).byteLength },
  { name: "don basic, one-pass", n: N, run: (i) => encodeMessage(DonResponseSchema, { session: basicSession(i), created: true }).byteLength },
  { name: "usage 500, protobuf-es", n: Math.max(1, Math.floor(N / 200)), run: () => toBinary(RecordUsageResponseSchema, create(RecordUsageResponseSchema, usageReply())).byteLength },
  { name: "usage 500, one-pass", n: Math.max(1, Math.floor(N / 200)), run: () => encodeMessage(RecordUsageResponseSchema, usageReply()).byteLength },
];

const samples = new Map<string, number[]>();
const sizes = new Map<string, number>();
for (let r = 0; r < ROUNDS; r++) {
  // Rotate the order each round, so no case always runs first (JIT warm-up, GC debt).
  for (let k = 0; k < cases.length; k++) {
    const c = cases[(k + r) % cases.length]!;
    let bytes = 0;
    const t0 = process.cpuUsage();
    for (let i = 0; i < c.n; i++) bytes = c.run(i);
    const d = process.cpuUsage(t0);
    if (r > 0) (samples.get(c.name) ?? samples.set(c.name, []).get(c.name)!).push((d.user + d.system) / c.n);
    sizes.set(c.name, bytes);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const rows = cases.map((c) => ({ case: c.name, cpu_us_per_reply: Math.round(median(samples.get(c.name) ?? []) * 100) / 100, bytes: sizes.get(c.name) ?? 0 }));
if (process.argv.includes("--json")) console.log(JSON.stringify(rows));
else console.table(rows);
