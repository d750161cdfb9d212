/**
 * BOLT11 payout checks (src/rails/lightning/invoice.ts), on invoices signed here with npm
 * `bolt11` for each network: every refusal has its code and a sentence naming the rule, and
 * expiry is judged by the clock we pass in.
 */
import { randomBytes } from "node:crypto";
import bolt11, { type TagData } from "bolt11";
import { describe, expect, test } from "vitest";
import { checkPayoutInvoice, PAYMENT_REQUEST_MAX_CHARS } from "../../src/rails/lightning/invoice.js";

const NOW_S = 1_800_000_000;
const KEY = Buffer.alloc(32, 7);

function make(opts: { bech32?: string; msat?: string | null; timestamp?: number; expiry_s?: number; hash?: string | null } = {}): string {
  const tags: { tagName: string; data: TagData }[] = [
    { tagName: "payment_secret", data: randomBytes(32).toString("hex") },
    { tagName: "feature_bits", data: { word_length: 4, var_onion_optin: { required: true }, payment_secret: { required: true } } },
    { tagName: "description", data: "payout" },
  ];
  if (opts.hash !== null) tags.push({ tagName: "payment_hash", data: opts.hash ?? randomBytes(32).toString("hex") });
  if (opts.expiry_s !== undefined) tags.push({ tagName: "expire_time", data: opts.expiry_s });
  const encoded = bolt11.encode(
    {
      network: { bech32: opts.bech32 ?? "bcrt", pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1] },
      ...(opts.msat === null ? {} : { millisatoshis: opts.msat ?? "12345678" }),
      timestamp: opts.timestamp ?? NOW_S - 10,
      tags,
    },
    false,
  );
  return bolt11.sign(encoded, KEY).paymentRequest!;
}

const expect_ = { network: "regtest" as const, amount_msat: 12_345_678n, now_s: NOW_S, min_remaining_s: 60 };

describe("checkPayoutInvoice", () => {
  test("a good invoice yields its hash, amount, expiry and the signer's key", () => {
    const hash = randomBytes(32).toString("hex");
    const r = checkPayoutInvoice(make({ hash, expiry_s: 900 }), expect_);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.invoice.payment_hash_hex).toBe(hash);
    expect(r.invoice.amount_msat).toBe(12_345_678n);
    expect(r.invoice.expires_at_s).toBe(NOW_S - 10 + 900);
    expect(r.invoice.payee_node_key_hex).toMatch(/^0[23][0-9a-f]{64}$/);
    expect(r.invoice.description).toBe("payout");
  });

  test.each([
    ["mainnet", "bc", "lnbc"],
    ["testnet", "tb", "lntb"],
    ["signet", "tbs", "lntbs"],
  ] as const)("a %s invoice is refused on regtest, and accepted on its own network", (network, bech32, prefix) => {
    const pr = make({ bech32 });
    const r = checkPayoutInvoice(pr, expect_);
    expect(r).toEqual({ ok: false, refusal: { code: "wrong_network", reason: `invoice prefix "${prefix}" is not for regtest (expected "lnbcrt")` } });
    expect(checkPayoutInvoice(pr, { ...expect_, network }).ok).toBe(true);
  });

  test("a testnet check does not accept a signet invoice (lntbs is not lntb)", () => {
    expect(checkPayoutInvoice(make({ bech32: "tbs" }), { ...expect_, network: "testnet" })).toMatchObject({ ok: false, refusal: { code: "wrong_network" } });
  });

  test("the amount must equal the quote to the msat", () => {
    const r = checkPayoutInvoice(make({ msat: "12345679" }), expect_);
    expect(r).toEqual({ ok: false, refusal: { code: "amount_mismatch", reason: "invoice asks for 12345679 msat but the quote is 12345678 msat" } });
  });

  test("an invoice without an amount is refused", () => {
    expect(checkPayoutInvoice(make({ msat: null }), expect_)).toMatchObject({ ok: false, refusal: { code: "no_amount" } });
  });

  test("expiry is judged by the clock passed in: expired, expiring, then fine", () => {
    const pr = make({ timestamp: NOW_S - 1000, expiry_s: 1000 }); // expires exactly at NOW_S
    expect(checkPayoutInvoice(pr, expect_)).toMatchObject({ ok: false, refusal: { code: "expired" } });
    expect(checkPayoutInvoice(pr, { ...expect_, now_s: NOW_S - 59 })).toMatchObject({ ok: false, refusal: { code: "expiring" } });
    expect(checkPayoutInvoice(pr, { ...expect_, now_s: NOW_S - 60 }).ok).toBe(true);
  });

  test("the BOLT11 default expiry (3600 s) applies when the invoice names none", () => {
    const pr = make({ timestamp: NOW_S - 3600 });
    expect(checkPayoutInvoice(pr, expect_)).toMatchObject({ ok: false, refusal: { code: "expired" } });
    expect(checkPayoutInvoice(pr, { ...expect_, now_s: NOW_S - 61 }).ok).toBe(true);
  });

  test("garbage, a broken checksum and an oversized string are malformed", () => {
    expect(checkPayoutInvoice("", expect_)).toMatchObject({ ok: false, refusal: { code: "malformed" } });
    expect(checkPayoutInvoice("hello world", expect_)).toMatchObject({ ok: false, refusal: { code: "malformed" } });
    const pr = make();
    const flipped = pr.slice(0, -1) + (pr.endsWith("q") ? "p" : "q");
    expect(checkPayoutInvoice(flipped, expect_)).toMatchObject({ ok: false, refusal: { code: "malformed" } });
    expect(checkPayoutInvoice("lnbcrt1" + "q".repeat(PAYMENT_REQUEST_MAX_CHARS), expect_)).toMatchObject({ ok: false, refusal: { code: "malformed" } });
  });

  test("upper-case invoices (as in QR codes) are accepted", () => {
    expect(checkPayoutInvoice(make().toUpperCase(), expect_).ok).toBe(true);
  });
});
