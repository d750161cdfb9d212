/**
 * End-to-end harness for the rail adapter: a REAL anvil (tests/support/anvil.ts) with a deployed
 * TestUSDC, the real daemon (settlement harness, injected clock) and the Base adapter as a
 * SEPARATE PROCESS (`masques-ledger rail base`) that reaches the daemon only over gRPC with a rail
 * token file. One anvil + one daemon per test file; adapters are started and SIGKILLed at will.
 * Waiting is always "until a condition holds" with generous bounds, mining blocks explicitly.
 */
import type { AnalyticsPort } from "../../src/server/registry.js";
import type { Sink } from "../../src/streamer/sink.js";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAbiItem, type Address, type Hash } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { PayoutState, type Payout } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { DEV_KEYS, startAnvil, type Anvil } from "../support/anvil.js";
import { startSettlementHarness, type SettlementHarness } from "./harness.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin/masques-ledger.js");
export const FINALITY_DEPTH = 3;
const TRANSFER = parseAbiItem("event Transfer(address indexed from, address indexed to, uint256 value)");

export interface AdapterProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  lines(): Record<string, unknown>[];
  stderr(): string;
  /** SIGTERM and wait (graceful). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): Promise<void>;
}

export interface AdapterHarness {
  h: SettlementHarness;
  chain: Anvil;
  usdc: Address;
  hot: PrivateKeyAccount;
  deposit_address: Address;
  dataDir: string;
  /** Start `masques-ledger rail base` with the harness's configuration plus `env`. */
  startAdapter(env?: Record<string, string>): Promise<AdapterProcess>;
  /** Request + confirm a payout for `author`: the queued payout. */
  queue(author: string, key: string, amount_micro: bigint): Promise<Payout>;
  payout(author: string, id: string): Promise<Payout>;
  /** Poll until `pred` holds (bounded), mining one block per round when `mine` is set. */
  until<T>(what: string, probe: () => Promise<T>, pred: (v: T) => boolean, opts?: { mine?: boolean; timeout_ms?: number }): Promise<T>;
  /** Until every payout is terminal (mining blocks). */
  settled(author: string, ids: string[]): Promise<Payout[]>;
  /** The daemon streamer's ClickHouse sink (only with `streamer: true`). */
  analytics(): Sink;
  /** USDC Transfer logs from the hot wallet since `fromBlock`. */
  payoutLogs(fromBlock: bigint): Promise<{ tx_hash: Hash; to: Address; value: bigint }[]>;
  usdcOf(a: Address): Promise<bigint>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

const TERMINAL = new Set([PayoutState.CONFIRMED, PayoutState.FAILED, PayoutState.CANCELLED, PayoutState.EXPIRED]);

/** `streamer`: run the daemon's CDC streamer (embedded chDB) and expose its sink as `analytics`. */
export async function startAdapterHarness(opts: { streamer?: boolean } = {}): Promise<AdapterHarness> {
  const chain = await startAnvil();
  let h: SettlementHarness | undefined;
  const dataDir = await mkdtemp(path.join(tmpdir(), "rail-adapter-"));
  const procs = new Set<AdapterProcess>();
  try {
    const usdc = await chain.deployToken();
    const hot = privateKeyToAccount(DEV_KEYS[1]);
    const deposit_address = privateKeyToAccount(DEV_KEYS[3]).address;
    let analytics: AnalyticsPort | undefined;
    h = await startSettlementHarness(
      { SETTLEMENT_BASE_FINALITY_DEPTH: String(FINALITY_DEPTH), ...(opts.streamer === true ? { STREAMER_ENABLED: "true" } : {}) },
      { onAnalytics: (a) => (analytics = a) },
    );
    const keyFile = path.join(dataDir, "hot.key");
    await writeFile(keyFile, DEV_KEYS[1], { mode: 0o600 });
    const tokenFile = path.join(dataDir, "rail.jwt");
    await writeFile(tokenFile, await h.d.token("rail", "base"), { mode: 0o600 });
    const harness: SettlementHarness = h;
    const env0 = (): Record<string, string> => ({
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      TMPDIR: process.env.TMPDIR ?? tmpdir(),
      RAIL_DAEMON_ENDPOINT: `http://${harness.d.daemon.grpcAddr}`,
      RAIL_TOKEN_FILE: tokenFile,
      RAIL_DATA_DIR: path.join(dataDir, "adapter"),
      BASE_RPC_URL: chain.url,
      BASE_CHAIN_ID: "31337",
      BASE_USDC_ADDRESS: usdc,
      BASE_HOT_WALLET_KEY_FILE: keyFile,
      BASE_DEPOSIT_ADDRESS: deposit_address,
      BASE_FINALITY_DEPTH: String(FINALITY_DEPTH),
      BASE_POLL_INTERVAL_MS: "50",
    });

    const until: AdapterHarness["until"] = async (what, probe, pred, opts = {}) => {
      const deadline = Date.now() + (opts.timeout_ms ?? 90_000);
      for (;;) {
        const v = await probe();
        if (pred(v)) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? String(x) : x))}`);
        if (opts.mine) await chain.mine(1);
        await new Promise((r) => setTimeout(r, 40)); // polling interval only; the condition decides
      }
    };
    const payout = async (author: string, id: string) => (await (await harness.settlement("author", author)).getPayout({ payoutId: id })).payout!;

    return {
      analytics: () => {
        if (analytics === undefined) throw new Error("the daemon runs no streamer: startAdapterHarness({ streamer: true })");
        return analytics.sink;
      },
      h: harness,
      chain,
      usdc,
      hot,
      deposit_address,
      dataDir,
      async startAdapter(env = {}) {
        const child = spawn(process.execPath, [BIN, "rail", "base"], { cwd: ROOT, env: { ...env0(), ...env }, stdio: ["ignore", "pipe", "pipe"] });
        live.add(child);
        const lines: Record<string, unknown>[] = [];
        let err = "";
        let buf = "";
        child.stdout!.on("data", (d: Buffer) => {
          buf += d.toString();
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const text = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            try {
              lines.push(JSON.parse(text) as Record<string, unknown>);
            } catch {
              lines.push({ raw: text });
            }
          }
        });
        child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
          child.once("exit", (code, signal) => {
            live.delete(child);
            resolve({ code, signal });
          }),
        );
        const p: AdapterProcess = {
          child,
          exited,
          lines: () => lines.slice(),
          stderr: () => err,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
            const r = await exited;
            procs.delete(p);
            return r;
          },
          async kill() {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
            await exited;
            procs.delete(p);
          },
        };
        procs.add(p);
        return p;
      },
      async queue(author, key, amount_micro) {
        const a = await harness.settlement("author", author);
        const q = (await a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: amount_micro }, idempotencyKey: key })).payout!;
        return (await a.confirmPayout({ payoutId: q.payoutId })).payout!;
      },
      payout,
      until,
      async settled(author, ids) {
        return until(
          `payouts ${ids.join(",")} to settle`,
          () => Promise.all(ids.map((id) => payout(author, id))),
          (ps) => ps.every((p) => TERMINAL.has(p.state)),
          { mine: true, timeout_ms: 120_000 },
        );
      },
      async payoutLogs(fromBlock) {
        const logs = await chain.publicClient.getLogs({ address: usdc, event: TRANSFER, args: { from: hot.address }, fromBlock, toBlock: "latest" });
        return logs.map((l) => ({ tx_hash: l.transactionHash!, to: l.args.to!, value: l.args.value! }));
      },
      async usdcOf(a) {
        return chain.publicClient.readContract({
          address: usdc,
          abi: [parseAbiItem("function balanceOf(address) view returns (uint256)")],
          functionName: "balanceOf",
          args: [a],
        });
      },
      async stop() {
        for (const p of [...procs]) await p.kill();
        await harness.stop();
        await chain.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const p of procs) await p.kill();
    await h?.stop();
    await chain.stop();
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
}
