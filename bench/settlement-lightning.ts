/**
 * Lightning settlement benchmark (issue 15): payouts per second between two real LDK nodes
 * (tests/support/ldk-nodes.ts, behind the LND REST stand-in), through the adapter PROCESS
 * (`masques-ledger rail lightning`) and the daemon (in this process, embedded ledger, PGlite).
 *
 *   npm run bench:settlement -- --rail lightning [--payouts 40]
 *
 * Steps: an author earns through real sessions; N payouts are quoted and confirmed with node b's
 * BOLT11 invoices (timed: quote+confirm per second, daemon only); then the adapter starts and pays
 * them all (timed from its start-up line to its last `payout_completed` line: claim, record hash,
 * track, send, real HTLC round trip, complete with the preimage = one linked chain over both
 * ledgers). The machine is shared and loaded: compare ratios from one run, not absolute numbers.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Rail } from "../clients/gen/masques/ledger/v1/common_pb.js";
import { PayoutState } from "../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { LdkPair } from "../tests/support/ldk-nodes.js";
import { startLndStandIn } from "../tests/support/lnd-rest-server.js";
import { startSettlementHarness } from "../tests/settlement/harness.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const AUTHOR = "author-grace";

export async function run(args: string[]): Promise<void> {
  const k = args.indexOf("--payouts");
  const n = k >= 0 ? Number(args[k + 1]) : 40;
  if (!(Number.isInteger(n) && n >= 1 && n <= 100)) throw new Error("--payouts: must be an integer in [1, 100] (one claim round)");
  const amount_micro = 20_000n;
  const h = await startSettlementHarness({ LIGHTNING_RATE_MSAT_PER_USD: "1000000000", LIGHTNING_NETWORK: "regtest" });
  const dir = mkdtempSync(path.join(tmpdir(), "bench-ln-"));
  const pair = await LdkPair.open({ capacity_sat: 1_000_000n, push_msat: 100_000_000n });
  const mac = randomBytes(40);
  writeFileSync(path.join(dir, "a.macaroon"), mac);
  const lnd = await startLndStandIn(pair, pair.a, mac.toString("hex"));
  writeFileSync(path.join(dir, "rail.token"), await h.d.token("rail", "lightning"));
  try {
    await h.earn("bench-payer", Math.ceil((n * Number(amount_micro)) / 425_000) + 1);
    const author = await h.settlement("author", AUTHOR);
    const ids: string[] = [];
    const t_confirm0 = performance.now();
    for (let i = 0; i < n; i++) {
      const q = (await author.requestPayout({ rail: Rail.LIGHTNING, amount: { case: "amountMicro", value: amount_micro }, idempotencyKey: `bench-${i}` })).payout!;
      const inv = pair.createInvoice(pair.b, q.quote!.netConversion!.amountMsat, `bench ${i}`, 3600);
      await author.confirmPayout({ payoutId: q.payoutId, bolt11Invoice: inv.payment_request });
      ids.push(q.payoutId);
    }
    const confirm_s = (performance.now() - t_confirm0) / 1000;

    const env: Record<string, string> = {};
    for (const v of ["PATH", "HOME", "TMPDIR", "LANG"]) if (process.env[v] !== undefined) env[v] = process.env[v]!;
    let out = "";
    const times: { started: number | null; completed: number[] } = { started: null, completed: [] };
    const child = spawn(process.execPath, [path.join(ROOT, "bin/masques-ledger.js"), "rail", "lightning"], {
      cwd: ROOT,
      env: {
        ...env,
        RAIL_DAEMON_ENDPOINT: `http://${h.d.daemon.grpcAddr}`,
        RAIL_TOKEN_FILE: path.join(dir, "rail.token"),
        RAIL_DATA_DIR: dir,
        LND_REST_URL: lnd.url,
        LND_MACAROON_FILE: path.join(dir, "a.macaroon"),
        LND_NETWORK: "regtest",
        LND_POLL_INTERVAL_MS: "50",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      let nl: number;
      while ((nl = out.indexOf("\n")) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        const j = JSON.parse(line) as { event?: string; time?: string };
        if (j.event === "lightning_adapter_started") times.started = Date.parse(j.time!);
        if (j.event === "payout_completed") times.completed.push(Date.parse(j.time!));
      }
    });
    child.stderr.on("data", (b: Buffer) => process.stderr.write(b));
    const t_wait0 = Date.now();
    while (times.completed.length < n) {
      if (Date.now() - t_wait0 > 600_000) throw new Error(`only ${times.completed.length} of ${n} payouts completed in 600 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGTERM");
    const pay_s = (Math.max(...times.completed) - times.started!) / 1000;
    for (const id of ids) {
      const p = (await author.getPayout({ payoutId: id })).payout!;
      if (p.state !== PayoutState.CONFIRMED || p.preimage === "") throw new Error(`payout ${id} not confirmed with a preimage`);
    }
    const sends = lnd.calls.get("POST /v2/router/send") ?? 0;
    if (sends !== n) throw new Error(`expected ${n} sends, saw ${sends}`);
    console.log(`lightning settlement bench: ${n} payouts of ${amount_micro} micro-USD (${n} real HTLCs over one LDK channel)`);
    console.log(`  quote + confirm (daemon only):            ${(n / confirm_s).toFixed(1)} payouts/s  (${confirm_s.toFixed(2)} s)`);
    console.log(`  paid by the adapter process (claim, record, track, send, complete): ${(n / pay_s).toFixed(1)} payments/s  (${pay_s.toFixed(2)} s from adapter start to last completion)`);
    console.log(`  sends to LND: ${sends} (one per payment hash); every payout CONFIRMED with its preimage`);
  } finally {
    await lnd.close();
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
