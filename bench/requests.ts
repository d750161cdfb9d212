/**
 * Request decoding on the hot calls (issue 20, ADR 0131), in process, CPU µs per request
 * (process.cpuUsage, so other load on the machine inflates the figures less than wall time):
 *
 *   npm run bench:requests            # defaults: 20,000 requests per case, 5 rounds
 *   npm run bench:requests -- 5000 3  # requests per case, rounds (--json: one JSON line)
 *
 * Cases, each decoding the bytes a client sends into the message the handler receives:
 *   usage 500, protobuf-es    fromBinary(RecordUsageRequest) of 500 events (the bench's events)
 *   usage 500, generated      src/server/binary-decoder.ts
 *   don, protobuf-es / generated, doff, protobuf-es / generated
 * Prints the median over rounds (rounds rotate the case order) and the request size.
 */
import { create, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { BillingMode, DoffRequestSchema, DonRequestSchema, RecordUsageRequestSchema, SessionView } from "../clients/gen/masques/ledger/v1/session_service_pb.js";
import { decodeMessage } from "../src/server/binary-decoder.js";

const positional = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const N = Number(positional[0] ?? 20_000);
const ROUNDS = Number(positional[1] ?? 5);
const json = process.argv.includes("--json");

const sid = (i: number) => (0x0123456789abcdefn * 1000003n + BigInt(i)).toString(16).padStart(32, "0");
const usage = Buffer.from(
  toBinary(
    RecordUsageRequestSchema,
    create(RecordUsageRequestSchema, {
      // as bench/sessions.ts sends them: 256 sessions, per-session seq
      events: Array.from({ length: 500 }, (_, e) => ({ sessionId: sid(e % 256), seq: BigInt(1 + Math.floor(e / 256) + 300), inputTokens: 100n, outputTokens: 50n, toolCalls: e % 5 === 0 ? 1n : 0n })),
    }),
  ),
);
const don = Buffer.from(toBinary(DonRequestSchema, create(DonRequestSchema, { sessionId: sid(1), masque: "researcher", agentId: "agent-0001", maxSpendMicro: 5_000_000n, billingMode: BillingMode.LIVE, view: SessionView.BASIC })));
const doff = Buffer.from(toBinary(DoffRequestSchema, create(DoffRequestSchema, { sessionId: sid(1), view: SessionView.BASIC })));

const cases: [string, number, () => unknown][] = [];
for (const [name, desc, bytes, reps] of [
  ["usage 500", RecordUsageRequestSchema, usage, Math.max(1, Math.floor(N / 50))],
  ["don", DonRequestSchema, don, N],
  ["doff", DoffRequestSchema, doff, N],
] as [string, DescMessage, Buffer, number][]) {
  cases.push([`${name}, protobuf-es`, reps, () => fromBinary(desc, bytes)]);
  cases.push([`${name}, generated`, reps, () => decodeMessage(desc, bytes)]);
}

function measure(reps: number, f: () => unknown): number {
  const t0 = process.cpuUsage();
  let keep: unknown;
  for (let i = 0; i < reps; i++) keep = f();
  const t = process.cpuUsage(t0);
  if (keep === undefined) throw new Error("nothing decoded");
  return (t.user + t.system) / reps;
}

for (const [, reps, f] of cases) measure(Math.ceil(reps / 4), f); // warm-up
const results = new Map<string, number[]>(cases.map(([n]) => [n, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < cases.length; k++) {
    const [name, reps, f] = cases[(k + r) % cases.length]!;
    results.get(name)!.push(measure(reps, f));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const out = Object.fromEntries([...results].map(([n, xs]) => [n, Math.round(median(xs) * 100) / 100]));
const sizes = { "usage 500": usage.length, don: don.length, doff: doff.length };
if (json) console.log(JSON.stringify({ cpu_us_per_request: out, bytes: sizes }));
else {
  for (const [n, v] of Object.entries(out)) console.log(`${n.padEnd(26)} ${v.toFixed(2)} µs`);
  console.log("bytes", sizes);
}
