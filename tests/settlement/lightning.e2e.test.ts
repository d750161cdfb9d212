/**
 * The Lightning rail end to end (issue 15 "Proven by tests"): the real daemon (in process, with an
 * injected clock) and the real adapter as a SEPARATE PROCESS (`masques-ledger rail lightning`),
 * paying through the production LND REST client against the LND stand-in over two real LDK nodes
 * (real channel, real BOLT11 invoices, HTLCs and preimages; tests/support/ldk-nodes.ts). Node a
 * is the platform's node, node b the authors' and agents'. The LND client is tested against this
 * stand-in, NOT against LND itself (ADR 0093).
 *
 * Rate: 10^9 msat per USD (1 BTC = 100 USD) so that the 1,000,000-sat test channel is worth
 * 10 USD and "above channel capacity" needs only a few dollars of earnings.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import bolt11 from "bolt11";
import { Code } from "@connectrpc/connect";
import type { Client } from "tigerbeetle-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { DepositInvoiceState, PayoutState, type Payout } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { Ledger } from "../../src/domain/codes.js";
import { exchangeAccountId, msatRailAccountId } from "../../src/domain/settlement/conversion.js";
import { idToHex } from "../../src/domain/ids.js";
import { expectStatus } from "../accounts/errors.js";
import { LdkPair } from "../support/ldk-nodes.js";
import { startLndStandIn, type LndStandIn } from "../support/lnd-rest-server.js";
import { startSettlementHarness, type SettlementHarness } from "./harness.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const AUTHOR = "author-grace";
const RATE = 1_000_000_000n; // msat per USD
const msat = (micro: bigint) => (micro * RATE) / 1_000_000n;
const fee = (amount: bigint) => 1_000n + (amount * 50n + 9_999n) / 10_000n; // TEST_PAYOUT_ENV

let h: SettlementHarness;
let pair: LdkPair;
let lnd: LndStandIn;
let dir: string;
let adapter: ChildProcess | null = null;
let adapterOut = "";

function startAdapter(): void {
  if (adapter) throw new Error("adapter already running");
  const env: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "TMPDIR", "LANG", "NODE_OPTIONS"]) if (process.env[k] !== undefined) env[k] = process.env[k]!;
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
      LND_POLL_INTERVAL_MS: "100",

    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (b: Buffer) => (adapterOut += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (adapterOut += b.toString()));
  adapter = child;
}

async function killAdapter(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  const c = adapter;
  if (!c) return;
  adapter = null;
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once("exit", () => r()));
  c.kill(signal);
  await exited;
}

/** Polls `check` until it holds (generous bound: the machine is shared and slow). */
async function until(what: string, check: () => Promise<boolean> | boolean, timeout_ms = 240_000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeout_ms) throw new Error(`timed out waiting for ${what}\nadapter output:\n${adapterOut.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sends = () => lnd.calls.get("POST /v2/router/send") ?? 0;
const tracks = () => lnd.calls.get("GET /v2/router/track") ?? 0;
const totalCalls = () => [...lnd.calls.values()].reduce((a, b) => a + b, 0);
function advanceDaemon(s: number): void {
  h.d.advance(s);
}
/**
 * Brings the nodes' chain clock (their only clock) up to the wall clock, which the adapter process
 * uses, as real nodes' block time roughly is. The daemon's clock is the one a test moves ahead.
 */
function syncChainClock(): void {
  pair.mineBlock({ advance_s: Math.max(1, Math.floor(Date.now() / 1000) - pair.chain_time_s) });
}

let ledger: Client | null = null;
/** An account read from the daemon's ledger (the msat ledger is not shown by AccountService). */
async function balance(id: bigint) {
  const [a] = await ledger!.lookupAccounts([id]);
  if (!a) throw new Error(`account ${idToHex(id)} not found`);
  return a;
}

async function payoutState(id: string): Promise<Payout> {
  const a = await h.settlement("author", AUTHOR);
  return (await a.getPayout({ payoutId: id })).payout!;
}

/** Quote + an invoice from node b for exactly the quoted msat + confirm. */
async function confirmed(key: string, amount_micro: bigint, opts: { expiry_s?: number } = {}) {
  const a = await h.settlement("author", AUTHOR);
  const q = (await a.requestPayout({ rail: Rail.LIGHTNING, amount: { case: "amountMicro", value: amount_micro }, idempotencyKey: key })).payout!;
  const inv = pair.createInvoice(pair.b, q.quote!.netConversion!.amountMsat, `payout ${key}`, opts.expiry_s ?? 3600);
  const c = (await a.confirmPayout({ payoutId: q.payoutId, bolt11Invoice: inv.payment_request })).payout!;
  expect(c.state).toBe(PayoutState.REQUESTED);
  return { payout: c, invoice: inv };
}

beforeAll(async () => {
  h = await startSettlementHarness(
    { LIGHTNING_RATE_MSAT_PER_USD: RATE.toString(), LIGHTNING_NETWORK: "regtest", LIGHTNING_QUOTE_TTL_S: "120" },
    { onLedger: (l) => (ledger = l) },
  );
  await h.earn("payer", 8); // 3,400,000 micro-USD of earnings for author-grace
  pair = await LdkPair.open({ capacity_sat: 1_000_000n, push_msat: 100_000_000n });
  dir = mkdtempSync(path.join(tmpdir(), "ln-e2e-"));
  const mac = randomBytes(40);
  writeFileSync(path.join(dir, "a.macaroon"), mac);
  lnd = await startLndStandIn(pair, pair.a, mac.toString("hex"));
  writeFileSync(path.join(dir, "rail.token"), await h.d.token("rail", "lightning"));
}, 300_000);

afterAll(async () => {
  await killAdapter();
  await lnd?.close();
  await h?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("payouts", () => {
  let first: Awaited<ReturnType<typeof confirmed>>;

  it("quotes the net in msat at the operator's rate, recorded with its source and time", async () => {
    const a = await h.settlement("author", AUTHOR);
    const q = (await a.requestPayout({ rail: Rail.LIGHTNING, amount: { case: "amountMicro", value: 100_000n }, idempotencyKey: "ln-quote" })).payout!;
    expect(q.quote).toMatchObject({ amountMicro: 100_000n, feeMicro: fee(100_000n), netMicro: 100_000n - fee(100_000n) });
    expect(q.quote!.netConversion).toMatchObject({ amountMsat: msat(100_000n - fee(100_000n)), rateMsatPerUsd: "1000000000", rateSource: "operator" });
    expect(q.quote!.netConversion!.rateTime).toBeDefined();
    await a.cancelPayout({ payoutId: q.payoutId });
  });

  it("pays end to end: preimage recorded, balances exact on both ledgers and in the channel", async () => {
    const amount = 50_000n; // net 48,750 micro = 48,750,000 msat: under LDK's in-flight limit (10% of the channel)
    const net = amount - fee(amount);
    const before = { earn: await h.earnings(AUTHOR), out: await balance(msatRailAccountId("rail_outbound")), xusd: await balance(exchangeAccountId(Ledger.usd_micro)), chanB: pair.outboundMsat(pair.b) };
    first = await confirmed("ln-pay-1", amount);
    expect(await h.earnings(AUTHOR)).toEqual({ posted: before.earn.posted, available: before.earn.available - amount });
    startAdapter();
    await until("payout confirmed", async () => (await payoutState(first.payout.payoutId)).state === PayoutState.CONFIRMED);
    const p = await payoutState(first.payout.payoutId);
    const settled = pair.b.invoices.get(first.invoice.payment_hash_hex)!.settled!;
    expect(settled.amount_msat).toBe(msat(net));
    expect(p.preimage).toBe(settled.preimage_hex);
    expect(createHash("sha256").update(Buffer.from(p.preimage, "hex")).digest("hex")).toBe(first.invoice.payment_hash_hex);
    expect(p.txRef).toBe(first.invoice.payment_hash_hex);
    expect(p.networkFeeNative).toBe(0n); // direct channel: no routing fee
    // USD ledger: the author paid the net and the actual routing fee (0); the fee cap came back.
    expect(await h.earnings(AUTHOR)).toEqual({ posted: before.earn.posted - net, available: before.earn.available - net });
    expect((await balance(exchangeAccountId(Ledger.usd_micro))).credits_posted - before.xusd.credits_posted).toBe(net);
    // msat ledger: exactly the invoice's amount left, and the channel moved by exactly that.
    expect((await balance(msatRailAccountId("rail_outbound"))).credits_posted - before.out.credits_posted).toBe(msat(net));
    expect(pair.outboundMsat(pair.b) - before.chanB).toBe(msat(net));
    expect(sends()).toBe(1);
  }, 300_000);

  it("refuses at confirmation, nothing held: wrong amount, wrong network, an invoice already used", async () => {
    const a = await h.settlement("author", AUTHOR);
    const q = (await a.requestPayout({ rail: Rail.LIGHTNING, amount: { case: "amountMicro", value: 100_000n }, idempotencyKey: "ln-refusals" })).payout!;
    const want = q.quote!.netConversion!.amountMsat;
    const available = (await h.earnings(AUTHOR)).available;

    const wrongAmount = pair.createInvoice(pair.b, want + 1n, "wrong amount", 3600);
    const e1 = await expectStatus(a.confirmPayout({ payoutId: q.payoutId, bolt11Invoice: wrongAmount.payment_request }), Code.FailedPrecondition, "INVOICE_AMOUNT_MISMATCH");
    expect(e1.rawMessage).toMatch(new RegExp(`asks for ${want + 1n} msat but the quote is ${want} msat`));

    const mainnet = bolt11.sign(
      bolt11.encode({ network: { bech32: "bc", pubKeyHash: 0, scriptHash: 5, validWitnessVersions: [0] }, millisatoshis: want.toString(), timestamp: Math.floor(Date.now() / 1000), tags: [{ tagName: "payment_hash", data: "11".repeat(32) }, { tagName: "description", data: "x" }] }),
      randomBytes(32).toString("hex"),
    ).paymentRequest!;
    const e2 = await expectStatus(a.confirmPayout({ payoutId: q.payoutId, bolt11Invoice: mainnet }), Code.InvalidArgument, "INVALID_ARGUMENT");
    expect(e2.rawMessage).toMatch(/bolt11_invoice.*not for regtest/);

    await expectStatus(a.confirmPayout({ payoutId: q.payoutId, bolt11Invoice: first.invoice.payment_request }), Code.FailedPrecondition, "INVOICE_AMOUNT_MISMATCH");
    // The same hash with the right amount (node b re-issues the paid hash): refused as already used.
    const reused = pair.createInvoice(pair.b, want, "reused hash", 3600, Buffer.from(first.invoice.payment_hash_hex, "hex"));
    const e4 = await expectStatus(a.confirmPayout({ payoutId: q.payoutId, bolt11Invoice: reused.payment_request }), Code.FailedPrecondition, "INVOICE_ALREADY_USED");
    expect(e4.rawMessage).toMatch(/paid at most once/);

    expect((await h.earnings(AUTHOR)).available).toBe(available);
    expect((await payoutState(q.payoutId)).state).toBe(PayoutState.QUOTED);
    await a.cancelPayout({ payoutId: q.payoutId });
  });

  it("above channel capacity: no route, voided, the money back, the reason shown", async () => {
    const before = await h.earnings(AUTHOR);
    const sent0 = sends();
    const big = await confirmed("ln-too-big", 1_500_000n); // 1.49 USD = 1.49e9 msat > the 1e9-msat channel
    await until("payout failed", async () => (await payoutState(big.payout.payoutId)).state === PayoutState.FAILED);
    const p = await payoutState(big.payout.payoutId);
    expect(p.failureReason).toMatch(/no_route/);
    expect(await h.earnings(AUTHOR)).toEqual(before);
    expect(sends()).toBe(sent0 + 1);
    expect(pair.b.invoices.get(big.invoice.payment_hash_hex)!.settled).toBeNull();
  }, 300_000);
});

describe("the adapter SIGKILLed mid-payment, repeatedly", () => {
  it("each invoice is paid at most once and the ledger matches the channel", async () => {
    await killAdapter();
    const amount = 20_000n;
    const net = amount - fee(amount);
    const before = { earn: await h.earnings(AUTHOR), out: (await balance(msatRailAccountId("rail_outbound"))).credits_posted, chanB: pair.outboundMsat(pair.b) };
    const sent0 = sends();
    // Phase 1: the payee holds the HTLCs, so every payment stays in flight across the kills.
    pair.b.holding = true;
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await confirmed(`ln-held-${i}`, amount));
    startAdapter();
    await until("all held payments sent", () => sends() === sent0 + 4);
    await killAdapter();
    const tracked0 = tracks();
    startAdapter();
    // After the restart it asks the node about every recorded hash; nothing is sent again.
    await until("the restarted adapter tracked each payment", () => tracks() >= tracked0 + 4);
    await killAdapter();
    expect(sends()).toBe(sent0 + 4);
    for (const x of held) expect((await payoutState(x.payout.payoutId)).state).toBe(PayoutState.SUBMITTED);
    pair.releaseHeld(pair.b, "claim");
    // Phase 2: more payouts, and kills at arbitrary points while the adapter works.
    const more = [];
    for (let i = 0; i < 4; i++) more.push(await confirmed(`ln-kill-${i}`, amount));
    for (let k = 0; k < 3; k++) {
      // Kill as soon as the adapter touched the node (mid-round: claimed, recorded, sending...).
      const calls0 = totalCalls();
      startAdapter();
      await until("the adapter acted", () => totalCalls() > calls0);
      await killAdapter();
    }
    startAdapter();
    const all = [...held, ...more];
    await until("every payout confirmed", async () => {
      for (const x of all) if ((await payoutState(x.payout.payoutId)).state !== PayoutState.CONFIRMED) return false;
      return true;
    });
    await killAdapter();
    // Each invoice paid exactly once: one send per hash, each payee invoice settled once.
    expect(sends()).toBe(sent0 + all.length);
    for (const x of all) expect(pair.b.invoices.get(x.invoice.payment_hash_hex)!.settled?.amount_msat).toBe(msat(net));
    for (const x of all) expect(pair.a.payments.get(x.invoice.payment_hash_hex)?.status).toBe("SUCCEEDED");
    // Ledger matches the channel.
    const n = BigInt(all.length);
    expect(await h.earnings(AUTHOR)).toEqual({ posted: before.earn.posted - n * net, available: before.earn.available - n * net });
    expect((await balance(msatRailAccountId("rail_outbound"))).credits_posted - before.out).toBe(n * msat(net));
    expect(pair.outboundMsat(pair.b) - before.chanB).toBe(n * msat(net));
  }, 600_000);
});

describe("deposits", () => {
  it("an invoice paid is credited once at the quoted rate", async () => {
    const agent = await h.d.fundedAgent("ln-agent", 1_000_000n);
    void agent;
    const s = await h.settlement("agent", "ln-agent");
    syncChainClock();
    const inv0 = (await s.requestDepositInvoice({ amountMicro: 10_000n, idempotencyKey: "dep-1" })).invoice!;
    expect(inv0.state).toBe(DepositInvoiceState.REQUESTED);
    expect(inv0.conversion).toMatchObject({ amountMsat: msat(10_000n), rateMsatPerUsd: "1000000000", rateSource: "operator" });
    const inbound0 = (await balance(msatRailAccountId("rail_inbound"))).debits_posted;
    startAdapter();
    await until("invoice created", async () => (await s.getDepositInvoice({ depositInvoiceId: inv0.depositInvoiceId })).invoice!.state === DepositInvoiceState.OPEN);
    const open = (await s.getDepositInvoice({ depositInvoiceId: inv0.depositInvoiceId })).invoice!;
    expect(bolt11.decode(open.bolt11).millisatoshis).toBe(msat(10_000n).toString());
    const paid = pair.pay(pair.b, open.bolt11, { fee_limit_msat: 1_000n });
    expect(paid.status).toBe("SUCCEEDED");
    await until("credited", async () => (await s.getDepositInvoice({ depositInvoiceId: inv0.depositInvoiceId })).invoice!.state === DepositInvoiceState.CREDITED);
    expect(await h.d.available("ln-agent")).toBe(1_010_000n);
    expect((await balance(msatRailAccountId("rail_inbound"))).debits_posted - inbound0).toBe(msat(10_000n));
    // A replayed report credits nothing more.
    const rail = await h.settlement("rail", "lightning");
    await rail.reportDeposit({ chainId: "bip122:0f9188f13cb7b2c71f2a335e3a4fc328", txRef: open.paymentHash, eventIndex: 0, amountMicro: 10_000n, amountMsat: msat(10_000n), confirmations: 1 });
    expect(await h.d.available("ln-agent")).toBe(1_010_000n);
    // The same key is the same invoice.
    expect((await s.requestDepositInvoice({ amountMicro: 10_000n, idempotencyKey: "dep-1" })).invoice!.depositInvoiceId).toBe(inv0.depositInvoiceId);
    await expectStatus(s.requestDepositInvoice({ amountMicro: 20_000n, idempotencyKey: "dep-1" }), Code.AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
  }, 300_000);

});

describe("time: judged by the daemon's clock (runs last: it moves the clocks)", () => {
  it("a payout invoice expired by OUR clock is refused at confirmation, nothing held", async () => {
    const a = await h.settlement("author", AUTHOR);
    const q = (await a.requestPayout({ rail: Rail.LIGHTNING, amount: { case: "amountMicro", value: 100_000n }, idempotencyKey: "ln-expired" })).payout!;
    const available = (await h.earnings(AUTHOR)).available;
    syncChainClock();
    const short = pair.createInvoice(pair.b, q.quote!.netConversion!.amountMsat, "short", 120);
    advanceDaemon(200); // the nodes' block time has not moved: they would still take it
    const e = await expectStatus(a.confirmPayout({ payoutId: q.payoutId, bolt11Invoice: short.payment_request }), Code.FailedPrecondition, "INVOICE_EXPIRED");
    expect(e.rawMessage).toMatch(/invoice expired at/);
    expect((await h.earnings(AUTHOR)).available).toBe(available);
    expect((await payoutState(q.payoutId)).state).toBe(PayoutState.QUOTED);
  });

  it("an expired deposit invoice credits nothing", async () => {
    const s = await h.settlement("agent", "ln-agent");
    syncChainClock();
    const inv0 = (await s.requestDepositInvoice({ amountMicro: 10_000n, idempotencyKey: "dep-expired" })).invoice!;
    await until("invoice created", async () => (await s.getDepositInvoice({ depositInvoiceId: inv0.depositInvoiceId })).invoice!.state === DepositInvoiceState.OPEN);
    const open = (await s.getDepositInvoice({ depositInvoiceId: inv0.depositInvoiceId })).invoice!;
    await killAdapter();
    const before = await h.d.available("ln-agent");
    // Past its expiry for the nodes (chain clock) and for the daemon (its clock).
    pair.mineBlock({ advance_s: 3 * 3600 });
    advanceDaemon(400);
    const paid = pair.pay(pair.b, open.bolt11, { fee_limit_msat: 1_000n, ignore_expiry: true });
    expect(paid.status).toBe("FAILED");
    startAdapter();
    const tracked = lnd.calls.get("GET /v1/invoice") ?? 0;
    await until("the adapter looked at the invoice again", () => (lnd.calls.get("GET /v1/invoice") ?? 0) > tracked);
    expect((await s.getDepositInvoice({ depositInvoiceId: inv0.depositInvoiceId })).invoice!.state).toBe(DepositInvoiceState.EXPIRED);
    expect(await h.d.available("ln-agent")).toBe(before);
  }, 300_000);
});
