/**
 * The Lightning rail's node port in production: a client for LND's REST API (ADR 0093).
 *
 * Endpoints used (LND's REST gateway over its gRPC services; JSON with snake_case names, int64 as
 * strings, enums as names, bytes as base64):
 * - GET  /v1/getinfo                         identity, block height, sync, chains[].network
 * - POST /v1/invoices                        AddInvoice {value_msat, memo, expiry}
 * - GET  /v1/invoice/{r_hash_str}            LookupInvoice by hex payment hash
 * - POST /v2/router/send                     SendPaymentV2, a stream of Payment updates
 * - GET  /v2/router/track/{payment_hash}     TrackPaymentV2 (hash base64url), a stream of Payment
 * Streams arrive as newline-delimited JSON objects `{"result": …}` or `{"error": …}`.
 * Authentication: the macaroon, hex, in the `Grpc-Metadata-macaroon` header; TLS is verified
 * against LND's own certificate (LND_TLS_CERT_FILE).
 *
 * Never pay twice: `payInvoiceOnce` checks the invoice (./invoice.ts), then asks LND for the
 * payment hash's state and sends only if LND has never seen it; otherwise it reports what LND
 * knows (succeeded with its preimage, failed, or still in flight). After a crash the caller runs
 * the same call again, or `trackPayment`, before anything else.
 *
 * TESTED AGAINST A STAND-IN, NOT LND: this client's tests run it against
 * tests/support/lnd-rest-server.ts, a small server speaking the subset of LND's REST API above in
 * front of two real LDK nodes (real channel, real HTLCs). The paths, JSON shapes and header are
 * those of LND's API reference; it has not been run against LND itself.
 *
 * Expected outcomes are typed values; transport and protocol failures throw LndRestError.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { z } from "zod";
import type { LightningNetwork, LightningRailConfig, LndCredentials } from "./config.js";
import { checkPayoutInvoice, type CheckedInvoice, type InvoiceRefusal } from "./invoice.js";

/** Largest response body, and largest single stream line, accepted (bytes). */
export const RESPONSE_MAX_BYTES = 4 * 1024 * 1024;
/** Most stream updates read from one SendPaymentV2 call before giving up. */
export const STREAM_UPDATES_MAX = 10_000;

/** gRPC status codes LND returns that the rail acts on. */
const GRPC_NOT_FOUND = 5;
const GRPC_ALREADY_EXISTS = 6;
const GRPC_UNAUTHENTICATED = 16;
/** LND refuses a bad or missing macaroon with gRPC code 2 (UNKNOWN) and one of these messages. */
const MACAROON_REFUSED = /verification failed|macaroon/i;

export type LndErrorKind = "unauthenticated" | "not_found" | "already_exists" | "rejected" | "unavailable" | "protocol";

/** A failure talking to LND. `kind` says what the caller can do; `message` is LND's own text. */
export class LndRestError extends Error {
  constructor(
    readonly kind: LndErrorKind,
    message: string,
    readonly http_status: number | undefined,
    readonly grpc_code: number | undefined,
  ) {
    super(message);
    this.name = "LndRestError";
  }
}

// ---- wire shapes (parsed at the edge) ----

const int64 = z.union([z.string().regex(/^-?\d+$/), z.number().int()]).transform((v) => BigInt(v));
const b64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/);

const grpcError = z.object({ code: z.number().int().optional(), message: z.string().default(""), http_code: z.number().int().optional() });

const getInfoWire = z.object({
  identity_pubkey: z.string(),
  alias: z.string().default(""),
  block_height: z.number().int(),
  synced_to_chain: z.boolean().default(false),
  chains: z.array(z.object({ chain: z.string(), network: z.string() })).default([]),
});

const addInvoiceWire = z.object({
  r_hash: b64,
  payment_request: z.string(),
  add_index: int64,
});

const INVOICE_STATES = ["OPEN", "SETTLED", "CANCELED", "ACCEPTED"] as const;
const invoiceWire = z.object({
  memo: z.string().default(""),
  r_preimage: b64.default(""),
  r_hash: b64,
  value_msat: int64,
  settled: z.boolean().default(false),
  creation_date: int64,
  settle_date: int64.default(0n),
  payment_request: z.string(),
  expiry: int64,
  amt_paid_msat: int64.default(0n),
  state: z.enum(INVOICE_STATES),
});

const PAYMENT_STATUSES = ["UNKNOWN", "IN_FLIGHT", "SUCCEEDED", "FAILED", "INITIATED"] as const;
const paymentWire = z.object({
  payment_hash: z.string().regex(/^[0-9a-f]{64}$/),
  value_msat: int64,
  payment_preimage: z.string().default(""),
  payment_request: z.string().default(""),
  status: z.enum(PAYMENT_STATUSES),
  fee_msat: int64.default(0n),
  creation_time_ns: int64.default(0n),
  payment_index: int64.default(0n),
  failure_reason: z.string().default("FAILURE_REASON_NONE"),
});

// ---- typed results ----

/** GetInfo, reduced to what the rail checks. */
export interface LndInfo {
  readonly identity_pubkey: string;
  readonly alias: string;
  readonly block_height: number;
  readonly synced_to_chain: boolean;
  /** chains[0].network as LND reports it ("mainnet", "regtest", …). */
  readonly network: string;
}

/** A deposit invoice LND created. */
export interface CreatedInvoice {
  readonly payment_hash_hex: string;
  readonly payment_request: string;
  readonly add_index: bigint;
}

export type InvoiceState = (typeof INVOICE_STATES)[number];

/** An invoice as LND knows it. SETTLED is the only state that credits a deposit. */
export interface LndInvoice {
  readonly payment_hash_hex: string;
  readonly payment_request: string;
  readonly memo: string;
  readonly state: InvoiceState;
  readonly value_msat: bigint;
  /** What was actually received (msat); meaningful once SETTLED. */
  readonly amt_paid_msat: bigint;
  /** Hex, present once SETTLED (LND returns it for invoices it created). */
  readonly preimage_hex: string | null;
  readonly creation_date_s: number;
  readonly expiry_s: number;
  readonly settle_date_s: number | null;
}

/** Why LND failed a payment (its PaymentFailureReason without the prefix, lower-case). */
export type PaymentFailure = "timeout" | "no_route" | "error" | "incorrect_payment_details" | "insufficient_balance" | "canceled" | "unknown";

/** An outgoing payment as LND knows it. */
export type LndPayment =
  | { status: "in_flight"; payment_hash_hex: string; value_msat: bigint }
  | { status: "succeeded"; payment_hash_hex: string; value_msat: bigint; preimage_hex: string; fee_msat: bigint }
  | { status: "failed"; payment_hash_hex: string; value_msat: bigint; failure: PaymentFailure };

/** Outcome of {@link LndRestClient.payInvoiceOnce}. `already` = LND had this hash before this call (nothing was sent). */
export type PayoutOutcome =
  | { kind: "refused"; refusal: InvoiceRefusal }
  | { kind: "succeeded"; invoice: CheckedInvoice; preimage_hex: string; fee_msat: bigint; fee_limit_msat: bigint; already: boolean }
  | { kind: "failed"; invoice: CheckedInvoice; failure: PaymentFailure; already: boolean }
  | { kind: "in_flight"; invoice: CheckedInvoice; already: boolean };

export interface LndRestDeps {
  readonly config: LightningRailConfig;
  readonly credentials: LndCredentials;
}

// ---- transport ----

function lndErrorFrom(http_status: number | undefined, body: unknown): LndRestError {
  const parsed = grpcError.safeParse(body);
  const code = parsed.success ? parsed.data.code : undefined;
  const message = parsed.success && parsed.data.message ? parsed.data.message : `HTTP ${http_status ?? "?"}`;
  const kind: LndErrorKind =
    code === GRPC_NOT_FOUND || http_status === 404
      ? "not_found"
      : code === GRPC_ALREADY_EXISTS || http_status === 409
        ? "already_exists"
        : code === GRPC_UNAUTHENTICATED || http_status === 401 || http_status === 403 || MACAROON_REFUSED.test(message)
          ? "unauthenticated"
          : http_status !== undefined && http_status >= 500 && code === undefined
            ? "unavailable"
            : "rejected";
  return new LndRestError(kind, message, http_status, code);
}

function open(deps: LndRestDeps, method: "GET" | "POST", path: string, body?: unknown): Promise<IncomingMessage> {
  const url = new URL(path, deps.config.rest_url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { "Grpc-Metadata-macaroon": deps.credentials.macaroon_hex, accept: "application/json" };
  if (payload) {
    headers["content-type"] = "application/json";
    headers["content-length"] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const opts = { method, headers, timeout: (deps.config.payment_timeout_s + 30) * 1000 };
    const req =
      url.protocol === "https:"
        ? httpsRequest(url, { ...opts, ca: deps.credentials.tls_cert_pem }, resolve)
        : httpRequest(url, opts, resolve);
    req.on("timeout", () => req.destroy(new LndRestError("unavailable", `no response from LND within ${opts.timeout} ms`, undefined, undefined)));
    req.on("error", (e) => reject(e instanceof LndRestError ? e : new LndRestError("unavailable", `cannot reach LND: ${e.message}`, undefined, undefined)));
    if (payload) req.write(payload);
    req.end();
  });
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new LndRestError("protocol", `${what}: response is not JSON`, undefined, undefined);
  }
}

async function readAll(res: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > RESPONSE_MAX_BYTES) {
      res.destroy();
      throw new LndRestError("protocol", `response larger than ${RESPONSE_MAX_BYTES} bytes`, res.statusCode, undefined);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

async function unary<T extends z.ZodType>(deps: LndRestDeps, method: "GET" | "POST", path: string, shape: T, body?: unknown): Promise<z.output<T>> {
  const res = await open(deps, method, path, body);
  const text = await readAll(res);
  const json = text.length ? parseJson(text, path) : {};
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) throw lndErrorFrom(status, json);
  const parsed = shape.safeParse(json);
  if (!parsed.success) throw new LndRestError("protocol", `${path}: unexpected response shape: ${parsed.error.issues[0]?.message ?? ""}`, status, undefined);
  return parsed.data;
}

/**
 * Read a newline-delimited JSON stream of `{result}` / `{error}` objects, calling `onResult` for
 * each result until it returns true (then the stream is closed) or the stream ends.
 */
async function stream(deps: LndRestDeps, method: "GET" | "POST", path: string, body: unknown, onResult: (r: unknown) => boolean): Promise<void> {
  const res = await open(deps, method, path, body);
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) {
    const text = await readAll(res);
    throw lndErrorFrom(status, text.length ? parseJson(text, path) : {});
  }
  let buffered = "";
  let updates = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      buffered += chunk.toString("utf8");
      if (buffered.length > RESPONSE_MAX_BYTES) throw new LndRestError("protocol", `${path}: stream line longer than ${RESPONSE_MAX_BYTES} bytes`, status, undefined);
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        if (++updates > STREAM_UPDATES_MAX) throw new LndRestError("protocol", `${path}: more than ${STREAM_UPDATES_MAX} stream updates`, status, undefined);
        const msg = parseJson(line, path) as { result?: unknown; error?: unknown };
        if (msg.error !== undefined) {
          const e = grpcError.safeParse(msg.error);
          throw lndErrorFrom(e.success ? e.data.http_code : undefined, msg.error);
        }
        if (onResult(msg.result)) return;
      }
    }
  } finally {
    res.destroy();
  }
}

function toPayment(wire: unknown, path: string): LndPayment {
  const parsed = paymentWire.safeParse(wire);
  if (!parsed.success) throw new LndRestError("protocol", `${path}: unexpected payment shape: ${parsed.error.issues[0]?.message ?? ""}`, undefined, undefined);
  const p = parsed.data;
  if (p.status === "SUCCEEDED") {
    if (!/^[0-9a-f]{64}$/.test(p.payment_preimage)) throw new LndRestError("protocol", `${path}: SUCCEEDED payment without a preimage`, undefined, undefined);
    return { status: "succeeded", payment_hash_hex: p.payment_hash, value_msat: p.value_msat, preimage_hex: p.payment_preimage, fee_msat: p.fee_msat };
  }
  if (p.status === "FAILED") {
    const reason = p.failure_reason.replace(/^FAILURE_REASON_/, "").toLowerCase();
    const known: PaymentFailure[] = ["timeout", "no_route", "error", "incorrect_payment_details", "insufficient_balance", "canceled"];
    return { status: "failed", payment_hash_hex: p.payment_hash, value_msat: p.value_msat, failure: known.find((k) => k === reason) ?? "unknown" };
  }
  return { status: "in_flight", payment_hash_hex: p.payment_hash, value_msat: p.value_msat };
}

const HEX32 = /^[0-9a-f]{64}$/;
function assertHash(payment_hash_hex: string): void {
  if (!HEX32.test(payment_hash_hex)) throw new RangeError(`payment_hash_hex must be 64 lowercase hex digits, got "${payment_hash_hex}"`);
}

// ---- operations (exported functions taking (deps, request); the client binds them) ----

/** GetInfo. */
export async function getInfo(deps: LndRestDeps): Promise<LndInfo> {
  const w = await unary(deps, "GET", "/v1/getinfo", getInfoWire);
  return {
    identity_pubkey: w.identity_pubkey,
    alias: w.alias,
    block_height: w.block_height,
    synced_to_chain: w.synced_to_chain,
    network: w.chains[0]?.network ?? "unknown",
  };
}

/** AddInvoice for a deposit: `value_msat` exactly, expiring `expiry_s` after creation. */
export async function addInvoice(deps: LndRestDeps, req: { value_msat: bigint; memo: string; expiry_s: number }): Promise<CreatedInvoice> {
  if (req.value_msat <= 0n) throw new RangeError("value_msat must be > 0");
  if (!Number.isInteger(req.expiry_s) || req.expiry_s < 1) throw new RangeError("expiry_s must be a positive integer");
  if (Buffer.byteLength(req.memo) > 639) throw new RangeError("memo must be at most 639 bytes (BOLT11 description limit)");
  const w = await unary(deps, "POST", "/v1/invoices", addInvoiceWire, {
    value_msat: req.value_msat.toString(),
    memo: req.memo,
    expiry: String(req.expiry_s),
  });
  return { payment_hash_hex: Buffer.from(w.r_hash, "base64").toString("hex"), payment_request: w.payment_request, add_index: w.add_index };
}

/** LookupInvoice by payment hash; null when LND has no such invoice. */
export async function lookupInvoice(deps: LndRestDeps, payment_hash_hex: string): Promise<LndInvoice | null> {
  assertHash(payment_hash_hex);
  let w: z.output<typeof invoiceWire>;
  try {
    w = await unary(deps, "GET", `/v1/invoice/${payment_hash_hex}`, invoiceWire);
  } catch (e) {
    if (e instanceof LndRestError && e.kind === "not_found") return null;
    throw e;
  }
  const hash = Buffer.from(w.r_hash, "base64").toString("hex");
  if (hash !== payment_hash_hex) throw new LndRestError("protocol", `LookupInvoice returned hash ${hash} for ${payment_hash_hex}`, undefined, undefined);
  const preimage = w.r_preimage ? Buffer.from(w.r_preimage, "base64").toString("hex") : "";
  return {
    payment_hash_hex: hash,
    payment_request: w.payment_request,
    memo: w.memo,
    state: w.state,
    value_msat: w.value_msat,
    amt_paid_msat: w.amt_paid_msat,
    preimage_hex: w.state === "SETTLED" && preimage.length === 64 ? preimage : null,
    creation_date_s: Number(w.creation_date),
    expiry_s: Number(w.expiry),
    settle_date_s: w.state === "SETTLED" ? Number(w.settle_date) : null,
  };
}

/** TrackPaymentV2's first update: LND's current state of the payment; null if LND never saw the hash. */
export async function trackPayment(deps: LndRestDeps, payment_hash_hex: string): Promise<LndPayment | null> {
  assertHash(payment_hash_hex);
  const path = `/v2/router/track/${Buffer.from(payment_hash_hex, "hex").toString("base64url")}`;
  let first: LndPayment | null = null;
  try {
    await stream(deps, "GET", path, undefined, (r) => {
      first = toPayment(r, path);
      return true;
    });
  } catch (e) {
    if (e instanceof LndRestError && e.kind === "not_found") return null;
    throw e;
  }
  if (first === null) throw new LndRestError("protocol", `${path}: stream ended without an update`, undefined, undefined);
  return first;
}

/**
 * SendPaymentV2 and follow its stream to a final state (or the stream's end: then the last
 * state, possibly in_flight). Low level: it does NOT check whether the hash was paid before;
 * use payInvoiceOnce. LND refuses a hash it already paid or is paying (kind already_exists).
 */
export async function sendPayment(deps: LndRestDeps, req: { payment_request: string; fee_limit_msat: bigint; timeout_s: number }): Promise<LndPayment> {
  if (req.fee_limit_msat < 0n) throw new RangeError("fee_limit_msat must be >= 0");
  const path = "/v2/router/send";
  let last: LndPayment | null = null;
  await stream(deps, "POST", path, { payment_request: req.payment_request, fee_limit_msat: req.fee_limit_msat.toString(), timeout_seconds: req.timeout_s, no_inflight_updates: false }, (r) => {
    last = toPayment(r, path);
    return last.status !== "in_flight";
  });
  if (last === null) throw new LndRestError("protocol", `${path}: stream ended without an update`, undefined, undefined);
  return last;
}

/** Routing fee limit for a payout: the lower of ppm × amount and the absolute cap (msat). */
export function feeLimitMsat(config: Pick<LightningRailConfig, "max_routing_fee_ppm" | "max_routing_fee_msat">, amount_msat: bigint): bigint {
  const by_ppm = (amount_msat * BigInt(config.max_routing_fee_ppm)) / 1_000_000n;
  return by_ppm < config.max_routing_fee_msat ? by_ppm : config.max_routing_fee_msat;
}

/**
 * Pay a payout invoice at most once. Order: check the invoice against the quote and OUR clock
 * (refused → nothing sent); ask LND for the hash (known → report its state, send nothing);
 * send with the fee limit and follow the stream. A send that LND refuses because the hash is
 * already paid or in flight (a race with another caller) is answered by tracking again.
 */
export async function payInvoiceOnce(
  deps: LndRestDeps,
  req: { payment_request: string; amount_msat: bigint; now_s: number; max_fee_limit_msat?: bigint },
): Promise<PayoutOutcome> {
  const check = checkPayoutInvoice(req.payment_request, {
    network: deps.config.network,
    amount_msat: req.amount_msat,
    now_s: req.now_s,
    min_remaining_s: deps.config.min_invoice_remaining_s,
  });
  if (!check.ok) return { kind: "refused", refusal: check.refusal };
  const invoice = check.invoice;
  const configured = feeLimitMsat(deps.config, invoice.amount_msat);
  // The daemon's cap (the fee held from the author, in msat) lowers the configured limit, never raises it.
  const fee_limit_msat = req.max_fee_limit_msat !== undefined && req.max_fee_limit_msat < configured ? req.max_fee_limit_msat : configured;
  const known = await trackPayment(deps, invoice.payment_hash_hex);
  if (known) return outcome(invoice, known, fee_limit_msat, true);
  let result: LndPayment;
  try {
    result = await sendPayment(deps, { payment_request: invoice.payment_request, fee_limit_msat, timeout_s: deps.config.payment_timeout_s });
  } catch (e) {
    if (!(e instanceof LndRestError && e.kind === "already_exists")) throw e;
    const raced = await trackPayment(deps, invoice.payment_hash_hex);
    if (!raced) throw e;
    return outcome(invoice, raced, fee_limit_msat, true);
  }
  if (result.payment_hash_hex !== invoice.payment_hash_hex) {
    throw new LndRestError("protocol", `LND reported hash ${result.payment_hash_hex} for invoice hash ${invoice.payment_hash_hex}`, undefined, undefined);
  }
  return outcome(invoice, result, fee_limit_msat, false);
}

function outcome(invoice: CheckedInvoice, p: LndPayment, fee_limit_msat: bigint, already: boolean): PayoutOutcome {
  switch (p.status) {
    case "succeeded":
      return { kind: "succeeded", invoice, preimage_hex: p.preimage_hex, fee_msat: p.fee_msat, fee_limit_msat, already };
    case "failed":
      return { kind: "failed", invoice, failure: p.failure, already };
    case "in_flight":
      return { kind: "in_flight", invoice, already };
  }
}

/** The client: the operations above bound to one LND. */
export interface LndRestClient {
  readonly info: LndInfo;
  getInfo(): Promise<LndInfo>;
  addInvoice(req: { value_msat: bigint; memo: string; expiry_s: number }): Promise<CreatedInvoice>;
  lookupInvoice(payment_hash_hex: string): Promise<LndInvoice | null>;
  trackPayment(payment_hash_hex: string): Promise<LndPayment | null>;
  sendPayment(req: { payment_request: string; fee_limit_msat: bigint; timeout_s: number }): Promise<LndPayment>;
  payInvoiceOnce(req: { payment_request: string; amount_msat: bigint; now_s: number; max_fee_limit_msat?: bigint }): Promise<PayoutOutcome>;
}

/** LND is on another network than LND_NETWORK says. */
export class LndNetworkMismatchError extends Error {
  constructor(readonly expected: LightningNetwork, readonly actual: string) {
    super(`LND reports network "${actual}" but LND_NETWORK is "${expected}"`);
    this.name = "LndNetworkMismatchError";
  }
}

/**
 * Connect: GetInfo, and refuse a node whose network differs from LND_NETWORK (throws
 * LndNetworkMismatchError; LndRestError if LND is unreachable or the macaroon is refused).
 */
export async function connectLnd(deps: LndRestDeps): Promise<LndRestClient> {
  const info = await getInfo(deps);
  if (info.network !== deps.config.network) throw new LndNetworkMismatchError(deps.config.network, info.network);
  return {
    info,
    getInfo: () => getInfo(deps),
    addInvoice: (req) => addInvoice(deps, req),
    lookupInvoice: (h) => lookupInvoice(deps, h),
    trackPayment: (h) => trackPayment(deps, h),
    sendPayment: (req) => sendPayment(deps, req),
    payInvoiceOnce: (req) => payInvoiceOnce(deps, req),
  };
}
