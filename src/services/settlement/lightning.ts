/**
 * SettlementService, the Lightning rail (issue 15; docs/adr/0094, 0095, 0096). Wraps the generic
 * handlers (./service.ts, ./deposits.ts): a request on the Lightning rail is served here, every
 * other request is passed to the wrapped handler unchanged.
 *
 * Payouts: RequestPayout quotes net_micro in msat at the rate provider's rate (rounded down);
 * ConfirmPayout takes the author's BOLT11 invoice, checks it by the daemon's clock (network, exact
 * amount, expiry, payment hash not used by any payout before — a unique column), then holds as on
 * every rail. The adapter claims it (the invoice comes back in `signed_transaction`), records the
 * payment hash as its tx_ref BEFORE sending (SUBMITTED = the HTLC may be in flight), then
 * CompletePayout with the preimage (sha256(preimage) must be the hash) and the routing fee in
 * msat posts the hold and the conversion in ONE linked chain across both ledgers, or FailPayout
 * voids it on a definite failure.
 *
 * Deposits: RequestDepositInvoice quotes amount_micro in msat (rounded up) with an expiry;
 * ClaimDepositInvoices hands the adapter the invoices to create (leased) and the open ones to
 * watch; RecordDepositInvoice checks the node's invoice against the quote; ReportDeposit with
 * the payment hash of a SETTLED invoice credits the wallet amount_micro once (the credit id is
 * the deposit id of (bip122 chain, payment hash, 0)), with the conversion in the same chain.
 */
import { submitPayoutVoid } from "./void.js";
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { AccountFlags, CreateTransferStatus, type Client } from "tigerbeetle-node";
import { Rail as ProtoRail } from "../../../clients/gen/masques/ledger/v1/common_pb.js";
import {
  ClaimDepositInvoicesResponseSchema,
  ClaimedPayoutSchema,
  ClaimPayoutsResponseSchema,
  CompletePayoutResponseSchema,
  ConfirmPayoutResponseSchema,
  FailPayoutResponseSchema,
  ConversionSchema,
  DepositInvoiceSchema,
  DepositInvoiceState,
  DepositSchema,
  DepositState,
  GetDepositInvoiceResponseSchema,
  RecordDepositInvoiceResponseSchema,
  RecordSignedTransactionResponseSchema,
  ReportDepositResponseSchema,
  RequestDepositInvoiceResponseSchema,
  RequestPayoutResponseSchema,
  type Conversion,
  type DepositInvoice,
  type Payout,
  type SettlementService,
} from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import type { Config } from "../../config.js";
import type { DepositInvoiceRow, LightningPayoutRow, LightningStore } from "../../controlplane/lightning.js";
import type { PayoutRow, SettlementStore } from "../../controlplane/settlement.js";
import { AMOUNT_MAX_MICRO, IDEMPOTENCY_KEY_RE, OWNER_ID_RULE, agentWalletId, authorEarningsId, availableMicro } from "../../domain/accounts.js";
import { deterministicId, idToHex } from "../../domain/ids.js";
import {
  formatRateE6,
  lightningDepositCreditPlan,
  lightningPayoutPostPlan,
  linkedChainOutcome,
  parseRateE6,
  operatorRateProvider,
  quoteConversion,
  routingFeeMicro,
  type RateProvider,
} from "../../domain/settlement/conversion.js";
import { canonicalDepositKey, payoutId, payoutTransferIds } from "../../domain/settlement/ids.js";
import { holdOutcome, payoutHoldPlan, readPayoutHold, settleOutcome } from "../../domain/settlement/plans.js";
import { computePayoutQuote, isQuoteUsable } from "../../domain/settlement/quote.js";
import { derivePayoutState, readPayoutLedgerFacts, type PayoutLedgerFacts, type PayoutState } from "../../domain/settlement/state.js";
import { BIP122_CHAIN_ID, checkPayoutInvoice } from "../../rails/lightning/invoice.js";
import { requestLogger } from "../../server/context.js";
import { authorizeAuthorPayouts, authorizeRailAdapter, isAdmin, principalOf, requireScope } from "../authz.js";
import {
  accountNotFound,
  failedPrecondition,
  idempotencyKeyReused,
  insufficientFunds,
  invalidArgument,
  ledgerRejected,
  permissionDenied,
  statusError,
  type Violation,
} from "../errors.js";
import { parseHexId, timestampFromNs, transferView } from "../views.js";
import { feeSchedule } from "./fees.js";
import { payoutView } from "./views.js";

type Impl = Partial<ServiceImpl<typeof SettlementService>>;

export interface LightningDeps {
  ledger: Client;
  store: SettlementStore;
  lightning: LightningStore;
  config: Config;
  /** ns since the epoch (injectable). */
  clock: () => bigint;
  /** null when LIGHTNING_RATE_MSAT_PER_USD is unset: the rail is not enabled. */
  rates: RateProvider | null;
}

const NS_PER_S = 1_000_000_000n;
const MAX_CLAIM = 100;
/** Open deposit invoices stay on the adapter's watch list this long past their expiry (late SETTLED reports). */
const WATCH_GRACE_NS = 600n * NS_PER_S;
/** A recorded deposit invoice may outlive its quote by at most this (node and daemon clocks differ). */
const INVOICE_EXPIRY_SLACK_S = 60;

/** The rate provider configured for this daemon (the operator's rate), or null when Lightning is off. */
export function configuredRateProvider(config: Config): RateProvider | null {
  return config.LIGHTNING_RATE_MSAT_PER_USD === undefined ? null : operatorRateProvider(parseRateE6(config.LIGHTNING_RATE_MSAT_PER_USD), config.LIGHTNING_RATE_SOURCE);
}

/** The deposit invoice id for (agent, idempotency key). */
export function depositInvoiceId(agent_id: string, idempotency_key: string): string {
  return idToHex(deterministicId("lightning_deposit_invoice", agent_id, idempotency_key));
}

function conversionView(c: { amount_msat: bigint; rate_e6: bigint; rate_source: string; rate_time_ns: bigint }): Conversion {
  return create(ConversionSchema, { amountMsat: c.amount_msat, rateMsatPerUsd: formatRateE6(c.rate_e6), rateSource: c.rate_source, rateTime: timestampFromNs(c.rate_time_ns) });
}

function invoiceState(r: DepositInvoiceRow, now_ns: bigint): DepositInvoiceState {
  if (r.credit_time_ns !== null) return DepositInvoiceState.CREDITED;
  if (now_ns >= r.expire_time_ns) return DepositInvoiceState.EXPIRED;
  return r.bolt11 === null ? DepositInvoiceState.REQUESTED : DepositInvoiceState.OPEN;
}

function invoiceView(r: DepositInvoiceRow, now_ns: bigint): DepositInvoice {
  return create(DepositInvoiceSchema, {
    depositInvoiceId: r.deposit_invoice_id,
    agentId: r.agent_id,
    amountMicro: r.amount_micro,
    conversion: conversionView(r),
    bolt11: r.bolt11 ?? "",
    paymentHash: r.payment_hash ?? "",
    state: invoiceState(r, now_ns),
    expireTime: timestampFromNs(r.expire_time_ns),
    createTime: timestampFromNs(r.create_time_ns),
  });
}

const TRANSFER_STATUS = CreateTransferStatus as unknown as Record<number, string>;

/**
 * The SettlementService implementation with the Lightning rail served: `inner` is the generic
 * implementation (all rails but Lightning), used for every request not on the Lightning rail.
 */
export function withLightning(inner: Impl, deps: LightningDeps): Impl {
  const { ledger, store, lightning, config } = deps;
  const schedule = feeSchedule(config);
  const network = config.LIGHTNING_NETWORK;
  const chain_id = BIP122_CHAIN_ID[network];

  function rates(): RateProvider {
    if (deps.rates === null) {
      throw failedPrecondition("RAIL_NOT_ENABLED", "the Lightning rail is not enabled on this daemon (LIGHTNING_RATE_MSAT_PER_USD is unset)", { rail: "lightning" });
    }
    return deps.rates;
  }
  const throwIf = (v: Violation[]) => {
    if (v.length > 0) throw invalidArgument(v);
  };
  const payoutNotFound = (id: string) => statusError(Code.NotFound, "PAYOUT_NOT_FOUND", `payout ${id} does not exist (or is not yours)`, { payout_id: id });

  async function facts(id: string): Promise<PayoutLedgerFacts> {
    const ids = payoutTransferIds(BigInt(`0x${id}`));
    return readPayoutLedgerFacts(ids.hold, await ledger.lookupTransfers([ids.hold, ids.post, ids.void]));
  }
  function stateOf(row: PayoutRow, f: PayoutLedgerFacts, now: bigint): PayoutState {
    return derivePayoutState(
      {
        ledger: f,
        control: { quote_expire_time_ns: row.quote_expire_time_ns, quote_cancelled: row.quote_cancelled, confirm_refused: row.confirm_refused, claimed: row.claimed, signed_recorded: row.tx_ref !== null },
      },
      now,
    );
  }
  /** A Lightning payout, fresh (row synced to the ledger), or null when the id is not a Lightning payout. */
  async function loadLn(text: string): Promise<{ row: PayoutRow; ln: LightningPayoutRow; facts: PayoutLedgerFacts; state: PayoutState } | null> {
    if (!/^[0-9a-f]{32}$/.test(text)) return null;
    let row = await store.getPayout(text);
    if (row === null || row.rail !== "lightning") return null;
    const ln = await lightning.getPayout(text);
    if (ln === null) throw new Error(`Lightning payout ${text} has no lightning_payout row`);
    const f = await facts(text);
    const now = deps.clock();
    if (f.held && !row.held) await store.markHeld(text, now);
    if (f.posted && row.settled !== "posted") await store.markSettled(text, "posted", now, null);
    if (f.voided !== null && row.settled !== "voided") await store.markSettled(text, "voided", now, null);
    row = (await store.getPayout(text))!;
    return { row, ln, facts: f, state: stateOf(row, f, now) };
  }
  function view(l: { row: PayoutRow; ln: LightningPayoutRow; state: PayoutState }): Payout {
    const p = payoutView(l.row, l.state);
    p.quote!.netConversion = conversionView(l.ln);
    if (l.state === "confirmed" && l.ln.preimage !== null) p.preimage = l.ln.preimage;
    return p;
  }
  async function viewOf(id: string): Promise<Payout> {
    const l = await loadLn(id);
    if (l === null) throw new Error(`Lightning payout ${id} vanished`);
    return view(l);
  }
  /** Shows a Lightning payout another handler returned with its conversion (read fresh). */
  async function decorate<T extends object>(res: T): Promise<T> {
    const p = (res as { payout?: { rail?: number; payoutId?: string } }).payout;
    if (p?.rail === ProtoRail.LIGHTNING && p.payoutId) return { ...res, payout: await viewOf(p.payoutId) };
    return res;
  }
  function railCaller(ctx: HandlerContext, action: string): void {
    const p = principalOf(ctx);
    if (p.kind !== "rail") throw permissionDenied(`${p.kind} ${JSON.stringify(p.id)} may not ${action}: rail adapters only`, { principal_kind: p.kind });
    authorizeRailAdapter(p, "lightning", action);
  }

  return {
    ...inner,

    // ---- payouts (authors) ----

    async requestPayout(req, ctx) {
      if (req.rail !== ProtoRail.LIGHTNING) return inner.requestPayout!(req, ctx);
      const author = authorizeAuthorPayouts(principalOf(ctx), "request a payout");
      const provider = rates();
      const v: Violation[] = [];
      if (!IDEMPOTENCY_KEY_RE.test(req.idempotencyKey)) v.push({ field: "idempotency_key", description: OWNER_ID_RULE });
      let request = "";
      if (req.amount.case === "amountMicro") request = `amount:${req.amount.value}`;
      else if (req.amount.case === "allAvailable" && req.amount.value) request = "all_available";
      else v.push({ field: "amount", description: "exactly one of amount_micro or all_available (true) must be set" });
      throwIf(v);
      const id = idToHex(payoutId(author, req.idempotencyKey));
      const existing = await store.getPayout(id);
      if (existing !== null) {
        if (existing.rail !== "lightning" || existing.request !== request) throw idempotencyKeyReused(req.idempotencyKey, id, "payout");
        return create(RequestPayoutResponseSchema, { payout: await viewOf(id) });
      }
      const now = deps.clock();
      const [earn] = await ledger.lookupAccounts([authorEarningsId(author)]);
      const available = earn === undefined ? 0n : availableMicro(earn);
      const quoted = computePayoutQuote(req.amount.case === "amountMicro" ? { amount_micro: req.amount.value } : { all_available: true }, available, schedule, now);
      if (!quoted.ok) {
        const r = quoted.refusal;
        switch (r.reason) {
          case "INVALID_ARGUMENT":
            throw invalidArgument([{ field: r.field, description: r.rule }]);
          case "INSUFFICIENT_FUNDS":
            throw insufficientFunds(idToHex(authorEarningsId(author)), r.available_micro, r.required_micro);
          case "FEE_EXCEEDS_AMOUNT":
            throw failedPrecondition("FEE_EXCEEDS_AMOUNT", `amount_micro ${r.amount_micro} does not cover the payout fee ${r.fee_micro}`);
          case "AMOUNT_BELOW_MINIMUM":
            throw failedPrecondition("AMOUNT_BELOW_MINIMUM", `the net payout ${r.net_micro} micro-USD is below the minimum ${r.minimum_net_micro}`);
        }
      }
      const q = quoted.quote;
      const rate = await provider.currentRate(now);
      const conv = quoteConversion({ amount_micro: q.net_micro, rate, now_ns: now, ttl_s: schedule.quote_ttl_s, direction: "payout" });
      if (!conv.ok) throw invalidArgument([{ field: "amount_micro", description: `net ${q.net_micro} micro-USD ${conv.rule}` }]);
      const row = await store.insertPayout({
        payout_id: id,
        author_id: author,
        idempotency_key: req.idempotencyKey,
        rail: "lightning",
        request,
        amount_micro: q.amount_micro,
        fee_micro: q.fee_micro,
        net_micro: q.net_micro,
        quote_expire_time_ns: q.expire_time_ns,
        create_time_ns: now,
      });
      if (row.rail !== "lightning" || row.request !== request) throw idempotencyKeyReused(req.idempotencyKey, id, "payout");
      await lightning.insertPayoutQuote({ payout_id: id, amount_msat: conv.quote.amount_msat, rate_e6: rate.rate_e6, rate_source: rate.source, rate_time_ns: rate.observed_at_ns });
      return create(RequestPayoutResponseSchema, { payout: await viewOf(id) });
    },

    async confirmPayout(req, ctx) {
      const l = await loadLn(req.payoutId);
      if (l === null) return inner.confirmPayout!(req, ctx);
      const author = authorizeAuthorPayouts(principalOf(ctx), "confirm a payout");
      const { row, ln } = l;
      if (row.author_id !== author) throw payoutNotFound(row.payout_id);
      const bolt11 = req.bolt11Invoice.trim().toLowerCase();
      if (l.facts.held) {
        if (bolt11 === "" || bolt11 === ln.bolt11) return create(ConfirmPayoutResponseSchema, { payout: view(l) });
        throw failedPrecondition("INVOICE_ALREADY_SET", `payout ${row.payout_id} was confirmed with another invoice (payment hash ${ln.payment_hash})`, { payout_id: row.payout_id });
      }
      if (l.state === "cancelled") throw failedPrecondition("QUOTE_CANCELLED", `payout ${row.payout_id} was cancelled before it was confirmed; request a new payout`);
      if (l.state === "failed") throw failedPrecondition("IDEMPOTENCY_KEY_FAILED", `payout ${row.payout_id} was refused by the ledger when it was confirmed; request a new payout with a new idempotency key`);
      const now = deps.clock();
      if (l.state === "expired" || !isQuoteUsable({ expire_time_ns: row.quote_expire_time_ns }, now)) {
        throw failedPrecondition("QUOTE_EXPIRED", `the quote of payout ${row.payout_id} expired; request a new payout (a new idempotency key)`, { payout_id: row.payout_id });
      }
      if (bolt11 === "") throw invalidArgument([{ field: "bolt11_invoice", description: `must be a BOLT11 invoice for exactly ${ln.amount_msat} msat (the quote's net_conversion.amount_msat)` }]);
      const check = checkPayoutInvoice(bolt11, { network, amount_msat: ln.amount_msat, now_s: Number(now / NS_PER_S), min_remaining_s: config.LIGHTNING_MIN_INVOICE_REMAINING_S });
      if (!check.ok) {
        const { code, reason } = check.refusal;
        if (code === "malformed" || code === "wrong_network" || code === "no_amount" || code === "missing_payment_hash") {
          throw invalidArgument([{ field: "bolt11_invoice", description: reason }]);
        }
        throw failedPrecondition(`INVOICE_${code.toUpperCase()}`, `bolt11_invoice refused: ${reason}; nothing was held`, { payout_id: row.payout_id });
      }
      const inv = check.invoice;
      const attached = await lightning.attachInvoice({
        payout_id: row.payout_id,
        bolt11: inv.payment_request,
        payment_hash: inv.payment_hash_hex,
        payee: inv.payee_node_key_hex,
        invoice_expire_time_s: inv.expires_at_s,
      });
      if (!attached.ok) {
        if (attached.why === "hash_used") {
          throw failedPrecondition("INVOICE_ALREADY_USED", `payment hash ${inv.payment_hash_hex} was already given for a payout: an invoice is paid at most once; ask the payee for a new invoice`, { payment_hash: inv.payment_hash_hex });
        }
        throw failedPrecondition("INVOICE_ALREADY_SET", `payout ${row.payout_id} is being confirmed with another invoice (payment hash ${attached.row?.payment_hash ?? "?"})`, { payout_id: row.payout_id });
      }
      const fixed = await store.fixDestination(row.payout_id, inv.payee_node_key_hex, now);
      if (fixed === null) throw failedPrecondition("QUOTE_CANCELLED", `payout ${row.payout_id} was cancelled before it was confirmed`);
      const plan = payoutHoldPlan({ author_id: author, idempotency_key: row.idempotency_key, rail: "lightning", net_micro: row.net_micro, fee_micro: row.fee_micro });
      if (idToHex(plan.hold.payout_id) !== row.payout_id) throw new Error("payout id does not match its (author, key)");
      const outcome = holdOutcome(await ledger.createTransfers(plan.transfers));
      switch (outcome.kind) {
        case "held":
        case "exists":
          await store.markHeld(row.payout_id, now);
          return create(ConfirmPayoutResponseSchema, { payout: await viewOf(row.payout_id) });
        case "insufficient_funds": {
          await store.markConfirmRefused(row.payout_id, now);
          const [earn] = await ledger.lookupAccounts([authorEarningsId(author)]);
          throw insufficientFunds(idToHex(authorEarningsId(author)), earn === undefined ? 0n : availableMicro(earn), row.amount_micro);
        }
        case "idempotency_key_failed":
          await store.markConfirmRefused(row.payout_id, now);
          throw failedPrecondition("IDEMPOTENCY_KEY_FAILED", `payout ${row.payout_id} can no longer be held (an earlier attempt was refused); request a new payout with a new idempotency key`);
        case "earnings_not_found":
          await store.markConfirmRefused(row.payout_id, now);
          throw accountNotFound(idToHex(authorEarningsId(author)));
        case "idempotency_key_reused":
        case "rejected":
          throw ledgerRejected("payout hold", outcome.statuses.join(","));
      }
    },

    async getPayout(req, ctx) {
      return decorate(await inner.getPayout!(req, ctx));
    },
    async cancelPayout(req, ctx) {
      return decorate(await inner.cancelPayout!(req, ctx));
    },
    async failPayout(req, ctx) {
      const l = await loadLn(req.payoutId);
      if (l === null) return inner.failPayout!(req, ctx);
      railCaller(ctx, "fail a payout");
      const { row } = l;
      const v: Violation[] = [];
      const reason = req.reason.trim();
      if (reason === "" || reason.length > 1000) v.push({ field: "reason", description: "must be a sentence of 1-1000 characters" });
      const hash = req.txRef.toLowerCase();
      if (row.tx_ref === null && hash !== "") v.push({ field: "tx_ref", description: "must be empty: no payment is recorded for this payout" });
      if (row.tx_ref !== null && hash !== row.tx_ref) v.push({ field: "tx_ref", description: `must be the recorded payment hash ${row.tx_ref}, which the node reported failed` });
      throwIf(v);
      if (l.state === "failed" || l.state === "cancelled") return create(FailPayoutResponseSchema, { payout: view(l) });
      const posted = () => failedPrecondition("PAYOUT_ALREADY_POSTED", `payout ${row.payout_id} was already completed`, { payout_id: row.payout_id });
      if (l.state === "confirmed") throw posted();
      const intent = await store.setVoidIntent(row.payout_id, "failed", reason, deps.clock());
      if (intent === null) {
        const cur = (await loadLn(row.payout_id))!;
        if (cur.state === "confirmed") throw posted();
        if (cur.row.void_intent !== "cancelled") throw ledgerRejected("payout void", `unexpected state ${cur.state}`);
      }
      const outcome = settleOutcome(await submitPayoutVoid(ledger, row.payout_id, row.author_id, intent === null ? "cancelled" : "failed"));
      switch (outcome.kind) {
        case "applied":
        case "exists":
        case "voided_with_other_cause":
          await store.markSettled(row.payout_id, "voided", deps.clock(), null);
          return create(FailPayoutResponseSchema, { payout: await viewOf(row.payout_id) });
        case "already_posted":
          throw posted();
        case "already_voided":
        case "hold_not_found":
          throw ledgerRejected("payout void", outcome.kind);
        case "rejected":
          throw ledgerRejected("payout void", outcome.statuses.join(","));
      }
    },

    // ---- the Lightning adapter: payouts ----

    async claimPayouts(req, ctx) {
      if (req.rail !== ProtoRail.LIGHTNING) return inner.claimPayouts!(req, ctx);
      railCaller(ctx, "claim payouts");
      rates();
      if (!(req.maxPayouts >= 1 && req.maxPayouts <= MAX_CLAIM)) throw invalidArgument([{ field: "max_payouts", description: `must be 1-${MAX_CLAIM}` }]);
      const lease_s = Math.min(req.leaseS === 0 ? config.PAYOUT_LEASE_S : req.leaseS, config.PAYOUT_LEASE_MAX_S);
      const now = deps.clock();
      await store.claim("lightning", now, now + BigInt(lease_s) * NS_PER_S, req.maxPayouts);
      const payouts = [];
      for (const leased of await store.leased("lightning", now)) {
        const l = await loadLn(leased.payout_id);
        if (l === null || !l.facts.held || l.facts.posted || l.facts.voided !== null || l.ln.bolt11 === null) continue;
        payouts.push(
          create(ClaimedPayoutSchema, {
            payout: view(l),
            leaseExpireTime: timestampFromNs(l.row.lease_expire_time_ns!),
            // Lightning: the author's BOLT11 invoice (UTF-8), the only thing that may be paid for this payout.
            signedTransaction: new TextEncoder().encode(l.ln.bolt11),
          }),
        );
      }
      return create(ClaimPayoutsResponseSchema, { payouts });
    },

    async recordSignedTransaction(req, ctx) {
      const l = await loadLn(req.payoutId);
      if (l === null) return inner.recordSignedTransaction!(req, ctx);
      railCaller(ctx, "record a payment");
      const { row, ln } = l;
      const v: Violation[] = [];
      const hash = req.txRef.toLowerCase();
      if (hash !== ln.payment_hash) v.push({ field: "tx_ref", description: `must be the payout invoice's payment hash ${ln.payment_hash}` });
      if (new TextDecoder().decode(req.signedTransaction) !== ln.bolt11) v.push({ field: "signed_transaction", description: "must be the payout's BOLT11 invoice (UTF-8) as ClaimPayouts returned it" });
      if (req.replacesTxRef !== "") v.push({ field: "replaces_tx_ref", description: "must be empty on Lightning: a payout has exactly one invoice" });
      throwIf(v);
      if (row.tx_ref === hash) return create(RecordSignedTransactionResponseSchema, { payout: view(l) });
      if (l.state !== "claimed") {
        throw failedPrecondition(l.state === "confirmed" ? "PAYOUT_ALREADY_POSTED" : "PAYOUT_ALREADY_VOIDED", `payout ${row.payout_id} is ${l.state}: it may not be paid`, { payout_id: row.payout_id, state: l.state });
      }
      const r = await store.recordSigned({ payout_id: row.payout_id, now_ns: deps.clock(), signed_transaction: req.signedTransaction, tx_ref: hash, replay_guard: 0n, replaces_tx_ref: "" });
      if (r.ok || r.row?.tx_ref === hash) return create(RecordSignedTransactionResponseSchema, { payout: await viewOf(row.payout_id) });
      if (r.row?.void_intent) throw failedPrecondition("PAYOUT_ALREADY_VOIDED", `payout ${row.payout_id} is being ${r.row.void_intent}: it may not be paid`);
      throw failedPrecondition("LEASE_NOT_HELD", `payout ${row.payout_id} is not leased to you (the lease expired or it was never claimed): claim it again`, { payout_id: row.payout_id });
    },

    async completePayout(req, ctx) {
      const l = await loadLn(req.payoutId);
      if (l === null) return inner.completePayout!(req, ctx);
      railCaller(ctx, "complete a payout");
      const { row, ln } = l;
      const v: Violation[] = [];
      const hash = req.txRef.toLowerCase();
      const preimage = req.preimage.toLowerCase();
      if (row.tx_ref === null) v.push({ field: "tx_ref", description: "no payment is recorded for this payout: record it (RecordSignedTransaction) before sending" });
      else if (hash !== row.tx_ref) v.push({ field: "tx_ref", description: `must be the recorded payment hash ${row.tx_ref}` });
      if (!/^[0-9a-f]{64}$/.test(preimage)) v.push({ field: "preimage", description: "must be the 32-byte payment preimage, 64 hex digits" });
      else if (createHash("sha256").update(Buffer.from(preimage, "hex")).digest("hex") !== ln.payment_hash) {
        v.push({ field: "preimage", description: `sha256(preimage) must be the invoice's payment hash ${ln.payment_hash}` });
      }
      throwIf(v);
      if (l.state === "confirmed" && ln.preimage !== null) return create(CompletePayoutResponseSchema, { payout: view(l) });
      // The node's facts first (the preimage proves payment; harmless if the post below fails),
      // then the ledger: a crash between them is finished by the adapter's retry.
      await lightning.recordPaid(row.payout_id, preimage, req.networkFeeNative);
      if (l.state === "confirmed") return create(CompletePayoutResponseSchema, { payout: await viewOf(row.payout_id) });
      const ids = payoutTransferIds(BigInt(`0x${row.payout_id}`));
      const found = await ledger.lookupTransfers([ids.hold, ids.fee_hold]);
      const hold = found.find((t) => t.id === ids.hold);
      const feeHold = found.find((t) => t.id === ids.fee_hold);
      if (!hold || !feeHold) throw ledgerRejected("payout post", "hold_not_found");
      const fee_msat = req.networkFeeNative;
      const fee = routingFeeMicro(fee_msat, ln.rate_e6, row.fee_micro);
      if (!fee.within_cap) {
        requestLogger(ctx).error({ event: "lightning_routing_fee_over_cap", payout_id: row.payout_id, fee_msat: String(fee_msat) }, "ALARM: the routing fee paid exceeds the cap held; the platform absorbs the excess");
      }
      const plan = lightningPayoutPostPlan(readPayoutHold(hold, feeHold), { fee_posted_micro: fee.fee_posted_micro, amount_msat: ln.amount_msat, fee_msat, rate_e6: ln.rate_e6 });
      const outcome = linkedChainOutcome(await ledger.createTransfers(plan), plan.length, TRANSFER_STATUS);
      if (outcome.kind === "failed") {
        if (outcome.statuses.includes("pending_transfer_already_voided")) {
          requestLogger(ctx).error({ event: "payout_paid_after_void", payout_id: row.payout_id, payment_hash: hash }, "ALARM: a voided Lightning payout was paid: money left while the ledger returned it");
          throw failedPrecondition("PAYOUT_ALREADY_VOIDED", `payout ${row.payout_id} was already voided in the ledger; the node reports it paid (alarm raised)`, { payout_id: row.payout_id });
        }
        throw ledgerRejected("payout post", outcome.statuses.join(","));
      }
      await store.markSettled(row.payout_id, "posted", deps.clock(), fee_msat);
      return create(CompletePayoutResponseSchema, { payout: await viewOf(row.payout_id) });
    },

    // ---- deposits (agents) ----

    async requestDepositInvoice(req, ctx) {
      const p = principalOf(ctx);
      if (p.kind !== "agent") throw permissionDenied(`${p.kind} ${JSON.stringify(p.id)} may not request a deposit invoice: agents only`, { principal_kind: p.kind });
      requireScope(p, ["ledger:write"], "request a deposit invoice");
      const provider = rates();
      const v: Violation[] = [];
      if (!IDEMPOTENCY_KEY_RE.test(req.idempotencyKey)) v.push({ field: "idempotency_key", description: OWNER_ID_RULE });
      if (req.amountMicro <= 0n || req.amountMicro > AMOUNT_MAX_MICRO) v.push({ field: "amount_micro", description: "must be in [1, 2^63-1]" });
      throwIf(v);
      const id = depositInvoiceId(p.id, req.idempotencyKey);
      const now = deps.clock();
      const existing = await lightning.getDepositInvoice(id);
      if (existing !== null) {
        if (existing.amount_micro !== req.amountMicro) throw idempotencyKeyReused(req.idempotencyKey, id, "deposit invoice");
        return create(RequestDepositInvoiceResponseSchema, { invoice: invoiceView(existing, now) });
      }
      // The wallet must exist before anything can be paid: a credit to a missing account would
      // burn the deposit id forever (ADR 0085 "Burned ids").
      const [w] = await ledger.lookupAccounts([agentWalletId(p.id)]);
      if (w === undefined || w.flags & AccountFlags.closed) throw accountNotFound(idToHex(agentWalletId(p.id)));
      const rate = await provider.currentRate(now);
      const conv = quoteConversion({ amount_micro: req.amountMicro, rate, now_ns: now, ttl_s: config.LIGHTNING_QUOTE_TTL_S, direction: "deposit" });
      if (!conv.ok) throw invalidArgument([{ field: conv.field, description: conv.rule }]);
      const row = await lightning.insertDepositInvoice({
        deposit_invoice_id: id,
        agent_id: p.id,
        idempotency_key: req.idempotencyKey,
        amount_micro: req.amountMicro,
        amount_msat: conv.quote.amount_msat,
        rate_e6: rate.rate_e6,
        rate_source: rate.source,
        rate_time_ns: rate.observed_at_ns,
        expire_time_ns: conv.quote.expire_time_ns,
        create_time_ns: now,
      });
      if (row.amount_micro !== req.amountMicro || row.agent_id !== p.id) throw idempotencyKeyReused(req.idempotencyKey, id, "deposit invoice");
      return create(RequestDepositInvoiceResponseSchema, { invoice: invoiceView(row, now) });
    },

    async getDepositInvoice(req, ctx) {
      const p = principalOf(ctx);
      const v: Violation[] = [];
      parseHexId(req.depositInvoiceId, "deposit_invoice_id", v);
      throwIf(v);
      const row = await lightning.getDepositInvoice(req.depositInvoiceId);
      const visible = row !== null && (isAdmin(p) || (p.kind === "agent" && p.id === row.agent_id) || (p.kind === "rail" && p.id === "lightning"));
      if (!visible) throw statusError(Code.NotFound, "DEPOSIT_INVOICE_NOT_FOUND", `deposit invoice ${req.depositInvoiceId} does not exist (or is not yours)`);
      return create(GetDepositInvoiceResponseSchema, { invoice: invoiceView(row, deps.clock()) });
    },

    // ---- the Lightning adapter: deposits ----

    async claimDepositInvoices(req, ctx) {
      railCaller(ctx, "claim deposit invoices");
      if (req.rail !== ProtoRail.LIGHTNING) throw invalidArgument([{ field: "rail", description: "must be RAIL_LIGHTNING" }]);
      rates();
      if (!(req.maxInvoices >= 1 && req.maxInvoices <= MAX_CLAIM)) throw invalidArgument([{ field: "max_invoices", description: `must be 1-${MAX_CLAIM}` }]);
      const lease_s = Math.min(req.leaseS === 0 ? config.PAYOUT_LEASE_S : req.leaseS, config.PAYOUT_LEASE_MAX_S);
      const now = deps.clock();
      const rows = await lightning.claimDepositInvoices(now, now + BigInt(lease_s) * NS_PER_S, req.maxInvoices, WATCH_GRACE_NS);
      return create(ClaimDepositInvoicesResponseSchema, { invoices: rows.map((r) => invoiceView(r, now)) });
    },

    async recordDepositInvoice(req, ctx) {
      railCaller(ctx, "record a deposit invoice");
      const v: Violation[] = [];
      parseHexId(req.depositInvoiceId, "deposit_invoice_id", v);
      throwIf(v);
      const row = await lightning.getDepositInvoice(req.depositInvoiceId);
      if (row === null) throw statusError(Code.NotFound, "DEPOSIT_INVOICE_NOT_FOUND", `deposit invoice ${req.depositInvoiceId} does not exist`);
      const now = deps.clock();
      const bolt11 = req.bolt11.trim().toLowerCase();
      if (row.bolt11 !== null && row.bolt11 === bolt11) return create(RecordDepositInvoiceResponseSchema, { invoice: invoiceView(row, now) });
      if (row.bolt11 !== null) throw failedPrecondition("INVOICE_ALREADY_SET", `deposit invoice ${row.deposit_invoice_id} already has invoice ${row.payment_hash}`);
      if (now >= row.expire_time_ns) throw failedPrecondition("QUOTE_EXPIRED", `deposit invoice ${row.deposit_invoice_id} expired before its invoice was recorded`);
      const check = checkPayoutInvoice(bolt11, { network, amount_msat: row.amount_msat, now_s: Number(now / NS_PER_S), min_remaining_s: 0 });
      if (!check.ok) throw invalidArgument([{ field: "bolt11", description: check.refusal.reason }]);
      if (check.invoice.expires_at_s > Number(row.expire_time_ns / NS_PER_S) + INVOICE_EXPIRY_SLACK_S) {
        throw invalidArgument([{ field: "bolt11", description: `expires ${check.invoice.expires_at_s}, after the quote (${row.expire_time_ns / NS_PER_S}): the invoice may not outlive its rate` }]);
      }
      const rec = await lightning.recordDepositInvoice(row.deposit_invoice_id, check.invoice.payment_request, check.invoice.payment_hash_hex);
      if (rec === null) throw failedPrecondition("INVOICE_ALREADY_SET", `deposit invoice ${row.deposit_invoice_id} already has another invoice`);
      return create(RecordDepositInvoiceResponseSchema, { invoice: invoiceView(rec, now) });
    },

    async reportDeposit(req, ctx) {
      const p = principalOf(ctx);
      if (p.kind !== "rail" || p.id !== "lightning") return inner.reportDeposit!(req, ctx);
      railCaller(ctx, "report deposits");
      rates();
      const v: Violation[] = [];
      if (req.chainId.toLowerCase() !== chain_id) v.push({ field: "chain_id", description: `must be ${chain_id} (LIGHTNING_NETWORK ${network})` });
      if (!/^[0-9a-fA-F]{64}$/.test(req.txRef)) v.push({ field: "tx_ref", description: "must be the settled invoice's payment hash, 64 hex digits" });
      if (req.eventIndex !== 0) v.push({ field: "event_index", description: "must be 0 on Lightning" });
      throwIf(v);
      const hash = req.txRef.toLowerCase();
      const row = await lightning.byPaymentHash(hash);
      if (row === null) throw failedPrecondition("DEPOSIT_INVOICE_NOT_FOUND", `no deposit invoice has payment hash ${hash}: nothing credited`, { payment_hash: hash });
      if (req.amountMicro !== row.amount_micro) {
        throw failedPrecondition("DEPOSIT_FACTS_MISMATCH", `amount_micro ${req.amountMicro} is not the invoice's quoted ${row.amount_micro}: the daemon credits its own quote; nothing credited`);
      }
      if (req.amountMsat < row.amount_msat) {
        throw failedPrecondition("DEPOSIT_FACTS_MISMATCH", `amount_msat ${req.amountMsat} received is below the invoice's ${row.amount_msat}; nothing credited`);
      }
      const key = canonicalDepositKey("lightning", { chain_id, tx_ref: hash, event_index: 0 });
      const plan = lightningDepositCreditPlan({ key, wallet_id: agentWalletId(row.agent_id), amount_micro: row.amount_micro, amount_msat: req.amountMsat, rate_e6: row.rate_e6 });
      const outcome = linkedChainOutcome(await ledger.createTransfers(plan), plan.length, TRANSFER_STATUS);
      if (outcome.kind === "failed") {
        if (outcome.statuses.some((s) => s.startsWith("exists_with_different_"))) {
          throw failedPrecondition("DEPOSIT_FACTS_MISMATCH", `the ledger already credited this payment with other facts (${outcome.statuses.join(",")}); nothing credited`);
        }
        requestLogger(ctx).error({ event: "deposit_credit_refused", deposit_invoice_id: row.deposit_invoice_id, statuses: outcome.statuses }, "ALARM: a settled Lightning deposit could not be credited");
        throw ledgerRejected("deposit credit", outcome.statuses.join(","));
      }
      const deposit_id = idToHex(plan[0]!.id);
      const now = deps.clock();
      await lightning.markDepositCredited(row.deposit_invoice_id, deposit_id, req.amountMsat, now);
      const [t] = await ledger.lookupTransfers([plan[0]!.id]);
      const credited = (await lightning.getDepositInvoice(row.deposit_invoice_id))!;
      return create(ReportDepositResponseSchema, {
        deposit: create(DepositSchema, {
          depositId: deposit_id,
          rail: ProtoRail.LIGHTNING,
          chainId: chain_id,
          txRef: hash,
          eventIndex: 0,
          fromAddress: "",
          amountMicro: row.amount_micro,
          confirmations: 1,
          finalityDepth: 1,
          state: DepositState.CREDITED,
          agentId: row.agent_id,
          conversion: conversionView({ ...row, amount_msat: credited.amount_paid_msat ?? req.amountMsat }),
          createTime: timestampFromNs(credited.credit_time_ns ?? now),
        }),
        transfer: t ? transferView(t) : undefined,
      });
    },
  };
}
