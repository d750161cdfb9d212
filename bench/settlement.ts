/**
 * `npm run bench:settlement -- [--rail base] [--payouts N] [--deposits M]`: settlement end to end on
 * a real local chain, through the daemon (in process, injected clock) and the rail adapter as a
 * separate process (`masques-ledger rail <rail>`), exactly as tests/settlement/ runs them.
 *
 * - payouts/s: N payouts requested and confirmed at once by one author; the clock starts at the
 *   first confirmation and stops when the last one is CONFIRMED at finality depth. Blocks are
 *   mined by the bench (one per poll round, ~40 ms), like a fast chain; anvil's automine also
 *   mines each transaction as it arrives.
 * - deposit detection lag: M deposits one after another; for each, the lag from the moment the
 *   block that makes it final is mined to the moment the agent's wallet shows the credit (daemon
 *   read every ~5 ms); p50 / p99. The adapter polls every BASE_POLL_INTERVAL_MS (50 ms here).
 *
 * Rails: base is implemented here; lightning in bench/settlement-lightning.ts (issue 15); solana is
 * added by its engineer (same shape).
 * The machine is shared and loaded: compare figures from one run, and read the load average.
 */
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { encodeFunctionData, parseAbi } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { Rail } from "../clients/gen/masques/ledger/v1/common_pb.js";
import { OwnershipPurpose, PayoutState } from "../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { DEV_KEYS } from "../tests/support/anvil.js";
import { FINALITY_DEPTH, startAdapterHarness, type AdapterHarness } from "../tests/settlement/adapter-harness.js";
import { newAccount } from "../tests/settlement/harness.js";

const { values } = parseArgs({
  options: {
    rail: { type: "string", default: "base" },
    payouts: { type: "string", default: "40" },
    deposits: { type: "string", default: "20" },
  },
});
if (values.rail === "lightning") {
  // Lightning (issue 15): two real LDK nodes behind the LND stand-in; bench/settlement-lightning.ts.
  const { run } = await import("./settlement-lightning.js");
  await run(["--payouts", values.payouts ?? "40"]);
  process.exit(0);
}
if (values.rail !== "base" && values.rail !== "solana") {
  console.error(`bench:settlement: --rail ${values.rail} is not implemented (base, lightning, solana)`);
  process.exit(2);
}
const N = Number(values.payouts);
const M = Number(values.deposits);
if (!(Number.isInteger(N) && N >= 1 && N <= 500) || !(Number.isInteger(M) && M >= 1 && M <= 500)) {
  console.error("bench:settlement: --payouts and --deposits must be integers in 1..500");
  process.exit(2);
}
if (values.rail === "solana") {
  await (await import("./settlement-solana.js")).benchSolana(N, M);
  process.exit(0);
}

const AUTHOR = "author-grace"; // the researcher masque pays author-grace
const AMOUNT = 100_000n;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function benchPayouts(x: AdapterHarness): Promise<Record<string, number>> {
  const a = await x.h.settlement("author", AUTHOR);
  const quotes = await Promise.all(
    Array.from({ length: N }, (_, i) => a.requestPayout({ rail: Rail.BASE, amount: { case: "amountMicro", value: AMOUNT }, idempotencyKey: `bench-${i}` })),
  );
  const head0 = await x.chain.headNumber();
  const t0 = performance.now();
  await Promise.all(quotes.map((q) => a.confirmPayout({ payoutId: q.payout!.payoutId })));
  const ids = quotes.map((q) => q.payout!.payoutId);
  for (;;) {
    const ps = await Promise.all(ids.map(async (id) => (await a.getPayout({ payoutId: id })).payout!));
    if (ps.every((p) => p.state === PayoutState.CONFIRMED)) break;
    const failed = ps.find((p) => p.state === PayoutState.FAILED);
    if (failed) throw new Error(`bench payout ${failed.payoutId} failed: ${failed.failureReason}`);
    if (performance.now() - t0 > 600_000) throw new Error("payouts did not settle within 10 minutes");
    await x.chain.mine(1);
    await sleep(40);
  }
  const s = (performance.now() - t0) / 1000;
  const blocks = Number((await x.chain.headNumber()) - head0);
  const logs = await x.payoutLogs(head0);
  if (logs.length !== N) throw new Error(`expected ${N} on-chain transfers, found ${logs.length}`);
  return { payouts: N, seconds: Number(s.toFixed(2)), payouts_per_s: Number((N / s).toFixed(2)), blocks_mined: blocks };
}

async function benchDeposits(x: AdapterHarness): Promise<Record<string, number>> {
  const source = privateKeyToAccount(DEV_KEYS[2]);
  await x.h.d.fundedAgent("bench-agent", 1n);
  const s = await x.h.settlement("agent", "bench-agent");
  const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.DEPOSIT_SOURCE, rail: Rail.BASE, address: source.address });
  await s.bindDepositSource({ rail: Rail.BASE, address: source.address, proof: { challengeId: challenge!.challengeId, signature: await source.signMessage({ message: challenge!.message }) } });
  await x.chain.testClient.setBalance({ address: source.address, value: 10n ** 20n });
  await x.chain.mint(x.usdc, source.address, BigInt(M) * 1_000_000n);
  const abi = parseAbi(["function transfer(address to, uint256 amount) returns (bool)"]);
  const lags: number[] = [];
  for (let i = 0; i < M; i++) {
    const before = await x.h.d.available("bench-agent");
    const pc = x.chain.publicClient;
    const [nonce, fees] = await Promise.all([pc.getTransactionCount({ address: source.address, blockTag: "pending" }), pc.estimateFeesPerGas()]);
    const raw = await source.signTransaction({
      chainId: 31337,
      type: "eip1559",
      to: x.usdc,
      data: encodeFunctionData({ abi, functionName: "transfer", args: [x.deposit_address, 1_000_000n] }),
      nonce,
      gas: 100_000n,
      maxFeePerGas: fees.maxFeePerGas * 2n,
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    });
    const hash = await pc.sendRawTransaction({ serializedTransaction: raw });
    await pc.waitForTransactionReceipt({ hash, pollingInterval: 10 });
    await x.chain.mine(FINALITY_DEPTH - 1); // now final
    const t0 = performance.now();
    while ((await x.h.d.available("bench-agent")) === before) {
      if (performance.now() - t0 > 120_000) throw new Error(`deposit ${i} not credited within 120 s`);
      await sleep(5);
    }
    lags.push(performance.now() - t0);
  }
  return { deposits: M, lag_ms_p50: Math.round(pct(lags, 50)), lag_ms_p99: Math.round(pct(lags, 99)), lag_ms_max: Math.round(Math.max(...lags)) };
}

const x = await startAdapterHarness();
try {
  await x.h.earn("payer", Math.ceil(Number((BigInt(N) * AMOUNT * 100n) / 85n / 500_000n)) + 1);
  await x.h.prove(AUTHOR, newAccount());
  await x.chain.mint(x.usdc, x.hot.address, BigInt(N) * AMOUNT);
  const adapter = await x.startAdapter();
  const payouts = await benchPayouts(x);
  const deposits = await benchDeposits(x);
  await adapter.stop();
  console.log(JSON.stringify({ rail: "base", finality_depth: FINALITY_DEPTH, adapter_poll_ms: 50, load_avg_1m: Number(loadavg()[0]!.toFixed(2)), ...payouts, ...deposits }, null, 2));
} finally {
  await x.stop();
}
