/**
 * The production LND REST client, end to end over real HTTP, against the LND stand-in
 * (tests/support/lnd-rest-server.ts) in front of two real LDK nodes with a real channel: real
 * BOLT11 invoices, HTLCs and preimages. NOT against LND itself (ADR 0093).
 *
 * Node a is the daemon's node (payouts leave it, deposits arrive at it); node b is the rest of
 * the world. One pair of nodes for the whole file (setting up takes a while); tests that move the
 * chain clock run last.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bolt11 from "bolt11";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { loadLightningRailConfig, loadLndCredentials } from "../../src/rails/lightning/config.js";
import { connectLnd, LndNetworkMismatchError, LndRestError, type LndRestClient } from "../../src/rails/lightning/lnd-rest.js";
import { LdkPair, LDK_HEADER_TIME_SLOP_S } from "../support/ldk-nodes.js";
import { startLndStandIn, type LndStandIn } from "../support/lnd-rest-server.js";

const CAPACITY_SAT = 1_000_000n;
const PUSH_MSAT = 100_000_000n; // b starts with 100k sat so it can pay a (deposits)

let pair: LdkPair;
let dir: string;
let lndA: LndStandIn;
let lndB: LndStandIn;
let a: LndRestClient;
let b: LndRestClient;

const sha256hex = (hex: string) => createHash("sha256").update(Buffer.from(hex, "hex")).digest("hex");

function env(url: string, macaroonFile: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { LND_REST_URL: url, LND_MACAROON_FILE: macaroonFile, LND_NETWORK: "regtest", ...extra };
}

async function client(stand: LndStandIn, macaroonFile: string, extra: Record<string, string> = {}): Promise<LndRestClient> {
  const config = loadLightningRailConfig(env(stand.url, macaroonFile, extra));
  return connectLnd({ config, credentials: loadLndCredentials(config) });
}

/** The adapter's clock in these tests: the chain clock (the nodes' only clock). */
const now_s = () => pair.chain_time_s;

beforeAll(async () => {
  pair = await LdkPair.open({ capacity_sat: CAPACITY_SAT, push_msat: PUSH_MSAT });
  dir = mkdtempSync(join(tmpdir(), "ln-rail-"));
  const macA = randomBytes(40);
  const macB = randomBytes(40);
  writeFileSync(join(dir, "a.macaroon"), macA);
  writeFileSync(join(dir, "b.macaroon"), macB);
  lndA = await startLndStandIn(pair, pair.a, macA.toString("hex"));
  lndB = await startLndStandIn(pair, pair.b, macB.toString("hex"));
  a = await client(lndA, join(dir, "a.macaroon"));
  b = await client(lndB, join(dir, "b.macaroon"));
}, 120_000);

afterAll(async () => {
  await lndA?.close();
  await lndB?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("connect", () => {
  test("GetInfo identifies each node on regtest", () => {
    expect(a.info.network).toBe("regtest");
    expect(a.info.identity_pubkey).toBe(pair.a.node_id_hex);
    expect(b.info.identity_pubkey).toBe(pair.b.node_id_hex);
  });

  test("a node on another network than LND_NETWORK is refused at start-up", async () => {
    await expect(client(lndA, join(dir, "a.macaroon"), { LND_NETWORK: "mainnet" })).rejects.toThrow(LndNetworkMismatchError);
  });

  test("a wrong macaroon is refused by the node, with its message", async () => {
    writeFileSync(join(dir, "wrong.macaroon"), randomBytes(40));
    const err = await client(lndA, join(dir, "wrong.macaroon")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LndRestError);
    expect((err as LndRestError).message).toMatch(/verification failed/);
    expect((err as LndRestError).kind).toBe("unauthenticated");
  });
});

describe("payout", () => {
  test("pays a BOLT11 invoice: preimage hashes to the payment hash, balances move by the amount exactly", async () => {
    const amount_msat = 12_345_678n;
    const before = { a: pair.outboundMsat(pair.a), b: pair.outboundMsat(pair.b) };
    const inv = await b.addInvoice({ value_msat: amount_msat, memo: "masque payout", expiry_s: 3600 });

    const out = await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat, now_s: now_s() });

    expect(out.kind).toBe("succeeded");
    if (out.kind !== "succeeded") return;
    expect(out.already).toBe(false);
    expect(out.invoice.payment_hash_hex).toBe(inv.payment_hash_hex);
    expect(sha256hex(out.preimage_hex)).toBe(inv.payment_hash_hex);
    expect(out.fee_msat).toBe(0n); // direct channel: no routing fee
    expect(out.fee_limit_msat).toBe((amount_msat * 5_000n) / 1_000_000n);
    expect(pair.outboundMsat(pair.a)).toBe(before.a - amount_msat);
    expect(pair.outboundMsat(pair.b)).toBe(before.b + amount_msat);
    const settled = await b.lookupInvoice(inv.payment_hash_hex);
    expect(settled).toMatchObject({ state: "SETTLED", amt_paid_msat: amount_msat, preimage_hex: out.preimage_hex });
    expect(await a.trackPayment(inv.payment_hash_hex)).toMatchObject({ status: "succeeded", preimage_hex: out.preimage_hex });
  });

  test("paying the same hash again sends nothing and returns the first payment's preimage", async () => {
    const amount_msat = 2_000_000n;
    const inv = await b.addInvoice({ value_msat: amount_msat, memo: "once", expiry_s: 3600 });
    const first = await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat, now_s: now_s() });
    expect(first.kind).toBe("succeeded");
    const balances = { a: pair.outboundMsat(pair.a), b: pair.outboundMsat(pair.b) };
    const sends = lndA.calls.get("POST /v2/router/send");

    const again = await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat, now_s: now_s() });

    expect(again).toMatchObject({ kind: "succeeded", already: true });
    expect(again.kind === "succeeded" && first.kind === "succeeded" && again.preimage_hex === first.preimage_hex).toBe(true);
    expect(lndA.calls.get("POST /v2/router/send")).toBe(sends); // no second send reached the node
    expect(pair.outboundMsat(pair.a)).toBe(balances.a);
    expect(pair.outboundMsat(pair.b)).toBe(balances.b);
    // And the node itself refuses a raw second send of a paid hash (LND's own guard).
    const raw = await a.sendPayment({ payment_request: inv.payment_request, fee_limit_msat: 0n, timeout_s: 10 }).catch((e: unknown) => e);
    expect(raw).toBeInstanceOf(LndRestError);
    expect((raw as LndRestError).kind).toBe("already_exists");
    expect(pair.outboundMsat(pair.a)).toBe(balances.a);
  });

  test("an invoice expired by our clock is refused before anything is sent", async () => {
    const inv = await b.addInvoice({ value_msat: 10_000n, memo: "late", expiry_s: 600 });
    const sends = lndA.calls.get("POST /v2/router/send") ?? 0;
    const tracks = lndA.calls.get("GET /v2/router/track") ?? 0;
    const decoded = bolt11.decode(inv.payment_request);
    const expiresAt = decoded.timeExpireDate!;

    const late = await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat: 10_000n, now_s: expiresAt + 1 });
    expect(late).toMatchObject({ kind: "refused", refusal: { code: "expired" } });
    const close = await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat: 10_000n, now_s: expiresAt - 30 });
    expect(close).toMatchObject({ kind: "refused", refusal: { code: "expiring" } });
    if (close.kind === "refused") expect(close.refusal.reason).toMatch(/expires in 30 s, less than the 60 s/);

    expect(lndA.calls.get("POST /v2/router/send") ?? 0).toBe(sends);
    expect(lndA.calls.get("GET /v2/router/track") ?? 0).toBe(tracks);
    expect((await b.lookupInvoice(inv.payment_hash_hex))?.state).toBe("OPEN");
  });

  test("an invoice for another network is refused with the prefix named", async () => {
    const key = randomBytes(32);
    const mainnet = bolt11.sign(
      bolt11.encode({
        network: { bech32: "bc", pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] },
        millisatoshis: "10000",
        timestamp: now_s(),
        tags: [
          { tagName: "payment_hash", data: randomBytes(32).toString("hex") },
          { tagName: "payment_secret", data: randomBytes(32).toString("hex") },
          { tagName: "description", data: "mainnet" },
        ],
      }),
      key,
    ).paymentRequest!;
    const out = await a.payInvoiceOnce({ payment_request: mainnet, amount_msat: 10_000n, now_s: now_s() });
    expect(out).toMatchObject({ kind: "refused", refusal: { code: "wrong_network" } });
    if (out.kind === "refused") expect(out.refusal.reason).toBe('invoice prefix "lnbc" is not for regtest (expected "lnbcrt")');
  });

  test("an invoice for another amount than the quote is refused, nothing moves", async () => {
    const inv = await b.addInvoice({ value_msat: 1_000n, memo: "cheap", expiry_s: 3600 });
    const before = pair.outboundMsat(pair.a);
    const out = await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat: 2_000n, now_s: now_s() });
    expect(out).toMatchObject({ kind: "refused", refusal: { code: "amount_mismatch", reason: "invoice asks for 1000 msat but the quote is 2000 msat" } });
    expect(pair.outboundMsat(pair.a)).toBe(before);
    expect((await b.lookupInvoice(inv.payment_hash_hex))?.state).toBe("OPEN");
  });

  test("an amount above the channel's capacity fails with no_route and moves nothing", async () => {
    const amount_msat = (CAPACITY_SAT + 1n) * 1000n;
    const inv = await b.addInvoice({ value_msat: amount_msat, memo: "too big", expiry_s: 3600 });
    const before = { a: pair.outboundMsat(pair.a), b: pair.outboundMsat(pair.b) };
    const out = await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat, now_s: now_s() });
    expect(out).toMatchObject({ kind: "failed", failure: "no_route", already: false });
    expect(pair.outboundMsat(pair.a)).toBe(before.a);
    expect(pair.outboundMsat(pair.b)).toBe(before.b);
    expect(await a.trackPayment(inv.payment_hash_hex)).toMatchObject({ status: "failed", failure: "no_route" });
    expect((await b.lookupInvoice(inv.payment_hash_hex))?.state).toBe("OPEN");
  });

  test("a payment still in flight when the adapter lost its stream is tracked, never sent again, and settles once", async () => {
    const amount_msat = 3_000_000n;
    const inv = await b.addInvoice({ value_msat: amount_msat, memo: "in flight", expiry_s: 3600 });
    const before = { a: pair.outboundMsat(pair.a), b: pair.outboundMsat(pair.b) };
    pair.b.holding = true; // the recipient holds the HTLC: the payment stays in flight
    const first = await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat, now_s: now_s() });
    expect(first).toMatchObject({ kind: "in_flight", already: false });
    expect(pair.outboundMsat(pair.a)).toBe(before.a - amount_msat); // locked in the HTLC
    const sends = lndA.calls.get("POST /v2/router/send");

    // The adapter restarts and asks again, twice: the node's state is reported, nothing is sent.
    for (let i = 0; i < 2; i++) {
      expect(await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat, now_s: now_s() })).toMatchObject({ kind: "in_flight", already: true });
    }
    expect(lndA.calls.get("POST /v2/router/send")).toBe(sends);
    expect((await b.lookupInvoice(inv.payment_hash_hex))?.state).toBe("OPEN");

    pair.releaseHeld(pair.b, "claim");
    const done = await a.trackPayment(inv.payment_hash_hex);
    expect(done?.status).toBe("succeeded");
    const after = await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat, now_s: now_s() });
    expect(after).toMatchObject({ kind: "succeeded", already: true });
    expect(after.kind === "succeeded" && sha256hex(after.preimage_hex)).toBe(inv.payment_hash_hex);
    expect(pair.outboundMsat(pair.a)).toBe(before.a - amount_msat);
    expect(pair.outboundMsat(pair.b)).toBe(before.b + amount_msat);
    expect(lndA.calls.get("POST /v2/router/send")).toBe(sends);
  });

  test("an in-flight payment the recipient fails back ends failed, the money back on our side", async () => {
    const amount_msat = 4_000_000n;
    const inv = await b.addInvoice({ value_msat: amount_msat, memo: "failed back", expiry_s: 3600 });
    const before = pair.outboundMsat(pair.a);
    pair.b.holding = true;
    expect(await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat, now_s: now_s() })).toMatchObject({ kind: "in_flight" });
    pair.releaseHeld(pair.b, "fail");
    expect(await a.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat, now_s: now_s() })).toMatchObject({
      kind: "failed",
      failure: "incorrect_payment_details",
      already: true,
    });
    expect(pair.outboundMsat(pair.a)).toBe(before);
  });

  test("a hash the node never saw tracks as null; an unknown invoice looks up as null", async () => {
    const h = randomBytes(32).toString("hex");
    expect(await a.trackPayment(h)).toBeNull();
    expect(await a.lookupInvoice(h)).toBeNull();
  });
});

describe("deposit", () => {
  test("an invoice our node creates settles when paid: amount received and preimage reported", async () => {
    const value_msat = 5_000_000n;
    const before = pair.outboundMsat(pair.a);
    const inv = await a.addInvoice({ value_msat, memo: "deposit", expiry_s: 900 });
    expect(await a.lookupInvoice(inv.payment_hash_hex)).toMatchObject({ state: "OPEN", value_msat, amt_paid_msat: 0n, preimage_hex: null });

    const paid = await b.payInvoiceOnce({ payment_request: inv.payment_request, amount_msat: value_msat, now_s: now_s() });
    expect(paid.kind).toBe("succeeded");

    const settled = await a.lookupInvoice(inv.payment_hash_hex);
    expect(settled).toMatchObject({ state: "SETTLED", amt_paid_msat: value_msat });
    expect(sha256hex(settled!.preimage_hex!)).toBe(inv.payment_hash_hex);
    expect(pair.outboundMsat(pair.a)).toBe(before + value_msat);
  });

  // Moves the chain clock two hours ahead: keep last.
  test("an expired deposit invoice never settles: the node rejects the HTLC and nothing arrives", async () => {
    const inv = await a.addInvoice({ value_msat: 7_000n, memo: "deposit, too late", expiry_s: 60 });
    const before = { a: pair.outboundMsat(pair.a), b: pair.outboundMsat(pair.b) };
    // LDK judges expiry by block-header time and allows two hours of header-time slop.
    pair.mineBlock({ advance_s: LDK_HEADER_TIME_SLOP_S + 120 });
    // The payer does not check expiry itself, so it is our node (the recipient) that refuses.
    const p = pair.pay(pair.b, inv.payment_request, { fee_limit_msat: 0n, ignore_expiry: true });
    expect(p.status).toBe("FAILED");
    expect(p.failure).toMatch(/RecipientRejected/);
    expect(await a.lookupInvoice(inv.payment_hash_hex)).toMatchObject({ state: "CANCELED", amt_paid_msat: 0n, preimage_hex: null });
    expect(pair.outboundMsat(pair.a)).toBe(before.a);
    expect(pair.outboundMsat(pair.b)).toBe(before.b);
  });
});
