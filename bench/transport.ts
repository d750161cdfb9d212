/**
 * Transport benchmark: unary "health-style" call (tiny request, tiny response, no ledger, no
 * auth) against candidate server stacks, each in its own server process, load generated from
 * this (separate) process with the same client for every stack.
 *
 *   npm run bench:transport                  # defaults: 6 interleaved rounds, 32 calls in flight
 *   npm run bench:transport -- 10 64         # rounds, concurrency
 *
 * Stacks (server side):
 *   grpc-js+adapter   @grpc/grpc-js serving a Connect ServiceImpl through src/server/grpc.ts
 *   grpc-js raw       @grpc/grpc-js with a hand-written handler (adapter overhead reference)
 *   connect-node grpc connect-node's gRPC handler on node:http2 (h2c)
 *   daemon pipeline   grpc-js+adapter plus the daemon's per-RPC pipeline (JWT verification,
 *                     request id, request logger, access log line to /dev/null)
 * Client: @grpc/grpc-js (one channel, N concurrent unary calls); a second pass uses the
 * connect-node gRPC client, to check the ranking does not depend on the client.
 * Machines here are shared and noisy, so stacks run interleaved in short rounds (order rotated),
 * throughput is the median over rounds, and the SERVER PROCESS CPU TIME PER CALL (from
 * process.cpuUsage in the server) is reported too: it is far less sensitive to other load than
 * calls/s. Compare ratios from one run, not absolute figures.
 */
import { fork, type ChildProcess } from "node:child_process";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { createClient, createServiceImplSpec, type ServiceImplSpec } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import {
  AccountService,
  GetAccountRequestSchema,
  GetAccountResponseSchema,
  type GetAccountRequest,
  type GetAccountResponse,
} from "../clients/gen/masques/ledger/v1/account_service_pb.js";
import { toGrpcService } from "../src/server/grpc.js";
import { createVerifier, loadOrCreateDevKeys, mintToken, parsePublicKeys } from "../src/server/auth.js";
import { wrapService } from "../src/server/pipeline.js";

const BENCH_KEY_DIR = path.join(tmpdir(), "masques-bench-transport");
const devKeys = () => loadOrCreateDevKeys(BENCH_KEY_DIR);

type Stack = "grpc-js+adapter" | "grpc-js raw" | "connect-node grpc" | "daemon pipeline";
const STACKS: Stack[] = ["grpc-js+adapter", "grpc-js raw", "connect-node grpc", "daemon pipeline"];
const PATH = "/masques.ledger.v1.AccountService/GetAccount";

function reply(req: GetAccountRequest): GetAccountResponse {
  return create(GetAccountResponseSchema, {
    account: { accountId: req.account?.ref.case === "accountId" ? req.account.ref.value : "0".repeat(32) },
  });
}

function spec(): ServiceImplSpec {
  return createServiceImplSpec<typeof AccountService>(AccountService, { getAccount: (req) => reply(req) });
}

const ser = <D extends DescMessage>(d: D) => (m: MessageShape<D>) => Buffer.from(toBinary(d, m));
const de = <D extends DescMessage>(d: D) => (b: Buffer) => fromBinary(d, b);

async function serve(stack: Stack): Promise<number> {
  if (stack === "connect-node grpc") {
    const handler = connectNodeAdapter({
      routes: (r) => r.service(AccountService, { getAccount: (req) => reply(req) }),
      grpc: true,
      grpcWeb: false,
      connect: false,
    });
    const server = http2.createServer(handler);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const a = server.address();
    return typeof a === "object" && a ? a.port : 0;
  }
  const server = new grpc.Server();
  if (stack === "daemon pipeline") {
    const log = pino({ level: "info" }, pino.destination("/dev/null"));
    const { privateJwk, publicJwks } = await devKeys();
    const verifier = createVerifier(parsePublicKeys(JSON.stringify(publicJwks)), "bench", { issuer: "masques-ledger", audience: "masques-ledger" });
    const wrapped = wrapService({ service: AccountService, spec: spec() }, { verifier, log });
    const { definition, handlers } = toGrpcService(wrapped, log);
    server.addService(definition, handlers);
    void privateJwk;
  } else if (stack === "grpc-js+adapter") {
    const { definition, handlers } = toGrpcService(spec(), pino({ level: "silent" }));
    server.addService(definition, handlers);
  } else {
    const definition = {
      GetAccount: {
        path: PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: ser(GetAccountRequestSchema),
        requestDeserialize: de(GetAccountRequestSchema),
        responseSerialize: ser(GetAccountResponseSchema),
        responseDeserialize: de(GetAccountResponseSchema),
      },
    } satisfies grpc.ServiceDefinition;
    server.addService(definition, {
      GetAccount: ((call, cb) => cb(null, reply(call.request))) as grpc.handleUnaryCall<GetAccountRequest, GetAccountResponse>,
    });
  }
  return new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
}

interface Sample {
  calls: number;
  seconds: number;
  errors: number;
  /** Server process CPU (user+system) spent during the sample, µs. */
  server_cpu_us: number;
  lat: number[];
}

async function load(call: () => Promise<unknown>, seconds: number, concurrency: number): Promise<Omit<Sample, "server_cpu_us">> {
  const lat: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        try {
          await call();
          lat.push(performance.now() - s);
        } catch {
          errors += 1;
        }
      }
    }),
  );
  return { calls: lat.length, seconds: (performance.now() - t0) / 1000, errors, lat };
}

function grpcJsCaller(port: number, token: string): { call: () => Promise<unknown>; close: () => void } {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const req = create(GetAccountRequestSchema, { account: { ref: { case: "accountId", value: "ab".repeat(16) } } });
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  const call = () =>
    new Promise((resolve, reject) =>
      client.makeUnaryRequest(PATH, ser(GetAccountRequestSchema), de(GetAccountResponseSchema), req, md, (e, r) => (e ? reject(e) : resolve(r))),
    );
  return { call, close: () => client.close() };
}

function connectCaller(port: number, token: string): { call: () => Promise<unknown>; close: () => void } {
  const client = createClient(AccountService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const headers = { authorization: `Bearer ${token}` };
  return { call: () => client.getAccount({ account: { ref: { case: "accountId", value: "ab".repeat(16) } } }, { headers }), close: () => {} };
}

interface ServerProc {
  port: number;
  child: ChildProcess;
  cpu(): Promise<number>;
}

async function startServer(stack: Stack): Promise<ServerProc> {
  const child = fork(fileURLToPath(import.meta.url), ["--server", stack], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (m) => resolve(Number(m)));
    child.once("exit", (c) => reject(new Error(`server ${stack} exited ${String(c)}`)));
  });
  const cpu = () =>
    new Promise<number>((resolve) => {
      child.once("message", (m) => resolve(Number(m)));
      child.send("cpu");
    });
  return { port, child, cpu };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--server") {
    const port = await serve(args[1] as Stack);
    process.on("message", () => {
      const u = process.cpuUsage();
      process.send?.(String(u.user + u.system));
    });
    process.send?.(String(port));
    return;
  }
  const rounds = Number(args[0] ?? 6);
  const concurrency = Number(args[1] ?? 32);
  const sliceS = 1.5;
  console.log(
    `transport bench: unary GetAccount-shaped call; ${rounds} interleaved rounds x ${sliceS}s per stack; ` +
      `${concurrency} calls in flight from one grpc-js client process; each server in its own process`,
  );
  for (const [clientName, mk] of [["grpc-js client", grpcJsCaller], ["connect-node client", connectCaller]] as const) {
    const servers = new Map<Stack, ServerProc>();
    for (const s of STACKS) servers.set(s, await startServer(s));
    // Every call carries the same bearer token (only the daemon pipeline checks it).
    const { privateJwk } = await devKeys();
    const token = await mintToken(privateJwk, { kind: "agent", id: "bench", scopes: ["ledger:read"], ttlS: 3600, issuer: "masques-ledger", audience: "masques-ledger" });
    const callers = new Map(STACKS.map((s) => [s, mk(servers.get(s)!.port, token)]));
    // Warm-up (JIT, connections).
    for (const s of STACKS) await load(callers.get(s)!.call, 1, concurrency);
    const samples = new Map<Stack, Sample[]>(STACKS.map((s) => [s, []]));
    for (let r = 0; r < rounds; r++) {
      // Rotate the order each round so drift in machine load spreads evenly.
      const order = STACKS.map((_, i) => STACKS[(i + r) % STACKS.length]!);
      for (const s of order) {
        const srv = servers.get(s)!;
        const c0 = await srv.cpu();
        const res = await load(callers.get(s)!.call, sliceS, concurrency);
        const c1 = await srv.cpu();
        samples.get(s)!.push({ ...res, server_cpu_us: c1 - c0 });
      }
    }
    for (const c of callers.values()) c.close();
    for (const srv of servers.values()) srv.child.kill("SIGTERM");
    console.log(`\n${clientName}:`);
    const summary = new Map<Stack, { rate: number; cpu: number }>();
    for (const s of STACKS) {
      const xs = samples.get(s)!;
      const rate = median(xs.map((x) => x.calls / x.seconds));
      const calls = xs.reduce((a, x) => a + x.calls, 0);
      const cpu = xs.reduce((a, x) => a + x.server_cpu_us, 0) / Math.max(1, calls);
      const lat = xs.flatMap((x) => x.lat).sort((a, b) => a - b);
      const p50 = lat[Math.floor(lat.length * 0.5)] ?? 0;
      const errors = xs.reduce((a, x) => a + x.errors, 0);
      summary.set(s, { rate, cpu });
      console.log(
        `  ${s.padEnd(18)} median ${String(Math.round(rate)).padStart(6)} calls/s   server CPU ${cpu.toFixed(1).padStart(6)} µs/call   p50 ${p50.toFixed(2)} ms   errors ${errors}`,
      );
    }
    const a = summary.get("grpc-js+adapter")!;
    const raw = summary.get("grpc-js raw")!;
    const cn = summary.get("connect-node grpc")!;
    const full = summary.get("daemon pipeline")!;
    console.log(
      `  ratios: grpc-js+adapter vs connect-node grpc: ${(a.rate / cn.rate).toFixed(2)}x calls/s, ${(cn.cpu / a.cpu).toFixed(2)}x less server CPU per call; ` +
        `adapter vs raw grpc-js: ${(a.rate / raw.rate).toFixed(2)}x calls/s, ${(a.cpu / raw.cpu).toFixed(2)}x CPU per call; ` +
        `pipeline (auth+logs) adds ${(full.cpu - a.cpu).toFixed(1)} µs CPU per call`,
    );
  }
}

await main();
