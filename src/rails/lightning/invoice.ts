/**
 * BOLT11 payout invoices: decode (npm `bolt11`, which also recovers the payee key from the
 * signature) and check them BEFORE anything is paid (ADR 0093):
 * - the invoice is for the expected network (its human-readable prefix, `lnbc`, `lntb`, ...);
 * - it names an amount, and that amount equals the quoted amount in msat exactly;
 * - it is not expired, and stays valid at least `min_remaining_s` more, by OUR clock (`now_s`
 *   is injected): a Lightning node judges expiry by block time, which may lag by hours;
 * - it carries a 32-byte payment hash, which is what "never pay twice" keys on.
 * Refusals are values with a code and a sentence naming the rule; nothing here throws on bad
 * input. Pure: no I/O, no clock.
 */
import bolt11 from "bolt11";
import type { LightningNetwork } from "./config.js";

/** Longest payment request accepted (characters). BOLT11 sets none; real ones are < 2 KiB. */
export const PAYMENT_REQUEST_MAX_CHARS = 4_096;

/** Expiry of an invoice that names none (BOLT11 `x` field default), seconds. */
export const BOLT11_DEFAULT_EXPIRY_S = 3_600;

/** Bech32 currency prefix of each network's invoices (BOLT11 §Human-Readable Part). */
export const INVOICE_PREFIX: Readonly<Record<LightningNetwork, string>> = {
  mainnet: "bc",
  testnet: "tb",
  testnet4: "tb",
  signet: "tbs",
  regtest: "bcrt",
  simnet: "sb",
};

/**
 * CAIP-2 chain id of each network (namespace bip122: the first 32 hex digits of the genesis block
 * hash), as deposits on the Lightning rail are keyed (ADR 0085: `bip122:<genesis>` / payment hash / 0).
 */
export const BIP122_CHAIN_ID: Readonly<Record<LightningNetwork, string>> = {
  mainnet: "bip122:000000000019d6689c085ae165831e93",
  testnet: "bip122:000000000933ea01ad0ee984209779ba",
  testnet4: "bip122:00000000da84f2bafbbc53dee25a72ae",
  signet: "bip122:00000008819873e925422c1ff0f99f7c",
  regtest: "bip122:0f9188f13cb7b2c71f2a335e3a4fc328",
  simnet: "bip122:683e86bd5c6d110d91b94b97137ba6bf",
};

/** A payout invoice that passed every check. */
export interface CheckedInvoice {
  readonly payment_request: string;
  /** 64 lowercase hex digits. */
  readonly payment_hash_hex: string;
  readonly amount_msat: bigint;
  /** Invoice creation time and expiry time, unix seconds. */
  readonly timestamp_s: number;
  readonly expires_at_s: number;
  /** Compressed secp256k1 key (hex) recovered from the signature. */
  readonly payee_node_key_hex: string;
  readonly description: string | undefined;
}

export type InvoiceRefusalCode =
  | "malformed"
  | "wrong_network"
  | "no_amount"
  | "amount_mismatch"
  | "expired"
  | "expiring"
  | "missing_payment_hash";

/** Why an invoice was refused; `reason` is a sentence for the author and the operator. */
export interface InvoiceRefusal {
  readonly code: InvoiceRefusalCode;
  readonly reason: string;
}

export type InvoiceCheck = { ok: true; invoice: CheckedInvoice } | { ok: false; refusal: InvoiceRefusal };

/** What the invoice must match. */
export interface InvoiceExpectation {
  readonly network: LightningNetwork;
  /** The quoted amount; the invoice must ask for exactly this. */
  readonly amount_msat: bigint;
  /** Our clock, unix seconds. */
  readonly now_s: number;
  /** The invoice must stay valid at least this long after now_s (0 = only "not expired"). */
  readonly min_remaining_s: number;
}

const refuse = (code: InvoiceRefusalCode, reason: string): InvoiceCheck => ({ ok: false, refusal: { code, reason } });

/** The bech32 human-readable part of an invoice: everything before the last "1". */
function humanReadablePart(pr: string): string {
  return pr.slice(0, pr.lastIndexOf("1"));
}

/**
 * Check a BOLT11 payout invoice against the quote. Returns the decoded facts or a refusal;
 * checks run in this order: size and charset, network, signature/decoding, payment hash,
 * amount, expiry.
 */
export function checkPayoutInvoice(payment_request: string, expect: InvoiceExpectation): InvoiceCheck {
  if (expect.amount_msat <= 0n) throw new RangeError("expected amount_msat must be > 0");
  const pr = payment_request.trim().toLowerCase();
  if (pr.length === 0 || pr.length > PAYMENT_REQUEST_MAX_CHARS) {
    return refuse("malformed", `payment_request must be 1 to ${PAYMENT_REQUEST_MAX_CHARS} characters`);
  }
  if (!/^ln[a-z0-9]+1[02-9ac-hj-np-z]+$/.test(pr)) {
    return refuse("malformed", "payment_request is not a bech32 BOLT11 invoice (ln… followed by bech32 data)");
  }
  const prefix = INVOICE_PREFIX[expect.network];
  const hrp = humanReadablePart(pr);
  // ln + currency prefix + optional amount (digits and an optional multiplier m/u/n/p).
  if (!new RegExp(`^ln${prefix}(\\d+[munp]?)?$`).test(hrp)) {
    return refuse("wrong_network", `invoice prefix "${hrp.replace(/\d+[munp]?$/, "")}" is not for ${expect.network} (expected "ln${prefix}")`);
  }
  let decoded: ReturnType<typeof bolt11.decode>;
  try {
    decoded = bolt11.decode(pr, { bech32: prefix, pubKeyHash: 0, scriptHash: 0, validWitnessVersions: [0, 1] });
  } catch (e) {
    return refuse("malformed", `payment_request does not decode as BOLT11: ${(e as Error).message}`);
  }
  const hash = decoded.tagsObject.payment_hash;
  if (typeof hash !== "string" || !/^[0-9a-f]{64}$/.test(hash)) {
    return refuse("missing_payment_hash", "invoice has no 32-byte payment hash");
  }
  if (decoded.millisatoshis === null || decoded.millisatoshis === undefined) {
    return refuse("no_amount", `invoice names no amount; it must ask for exactly the quoted ${expect.amount_msat} msat`);
  }
  const amount_msat = BigInt(decoded.millisatoshis);
  if (amount_msat !== expect.amount_msat) {
    return refuse("amount_mismatch", `invoice asks for ${amount_msat} msat but the quote is ${expect.amount_msat} msat`);
  }
  const timestamp_s = decoded.timestamp;
  if (timestamp_s === undefined || decoded.payeeNodeKey === undefined) {
    return refuse("malformed", "invoice lacks a timestamp or a signature");
  }
  // BOLT11: without an `x` (expiry) field the invoice expires 3600 s after its timestamp.
  const expires_at_s = timestamp_s + (decoded.tagsObject.expire_time ?? BOLT11_DEFAULT_EXPIRY_S);
  if (expires_at_s <= expect.now_s) {
    return refuse("expired", `invoice expired at ${new Date(expires_at_s * 1000).toISOString()} (now ${new Date(expect.now_s * 1000).toISOString()})`);
  }
  if (expires_at_s - expect.now_s < expect.min_remaining_s) {
    return refuse(
      "expiring",
      `invoice expires in ${expires_at_s - expect.now_s} s, less than the ${expect.min_remaining_s} s a payout needs (LND_MIN_INVOICE_REMAINING_S)`,
    );
  }
  return {
    ok: true,
    invoice: {
      payment_request: pr,
      payment_hash_hex: hash,
      amount_msat,
      timestamp_s,
      expires_at_s,
      payee_node_key_hex: decoded.payeeNodeKey,
      description: decoded.tagsObject.description,
    },
  };
}
