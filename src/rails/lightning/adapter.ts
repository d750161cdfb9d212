/**
 * The Lightning rail adapter's loop (`masques-ledger rail lightning`, issue 15; ADR 0096). It talks
 * to the daemon only through the generated SettlementService client, as the `rail` principal
 * "lightning", and to LND only through the REST port (./lnd-rest.ts). It holds no state of its
 * own: everything it needs after a crash is in the daemon (claimed payouts, recorded payment
 * hashes, open deposit invoices) or in the node (the payment's state by hash).
 *
 * Order, per payout (never pay twice):
 *   1. ClaimPayouts returns the author's invoice (in `signed_transaction`) and, after a crash,
 *      every payout still leased to this rail.
 *   2. A payout with a recorded payment hash is first ASKED of the node (TrackPaymentV2) before
 *      anything else; payInvoiceOnce sends only for a hash the node never saw.
 *   3. Before the first send, RecordSignedTransaction records the payment hash (SUBMITTED: the
 *      HTLC may be in flight from now on; the payout can no longer be cancelled).
 *   4. succeeded → CompletePayout (preimage, routing fee msat); failed or refused → FailPayout
 *      (the daemon voids: the author's money comes back); in_flight → left for the next round.
 * Deposits: invoices to create are created (memo = the deposit invoice id, expiry = what is left
 * of the quote) and recorded; open invoices are looked up and SETTLED ones reported once.
 */
import type { Logger } from "pino";
import { Rail } from "../../../clients/gen/masques/ledger/v1/common_pb.js";
import { DepositInvoiceState, type ClaimedPayout, type DepositInvoice } from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import type { SettlementClient } from "../adapter/daemon-client.js";
import type { LightningRailConfig } from "./config.js";
import { BIP122_CHAIN_ID, checkPayoutInvoice } from "./invoice.js";
import type { LndRestClient, PayoutOutcome } from "./lnd-rest.js";

export interface LightningAdapterDeps {
  readonly settlement: SettlementClient;
  readonly lnd: LndRestClient;
  readonly config: LightningRailConfig;
  readonly log: Logger;
  /** Our clock, unix seconds (invoice expiry is judged by it, never by the node's block time). */
  readonly now_s: () => number;
}

/** What one round did (counts). */
export interface RoundReport {
  completed: number;
  failed: number;
  in_flight: number;
  invoices_created: number;
  deposits_reported: number;
}

/** Payouts and invoices handled per round (bounds every loop; the daemon caps at 100). */
export const ROUND_MAX = 100;

const E12 = 1_000_000_000_000n;

/** The routing fee cap the daemon held for this payout, in msat (fee_micro at the quote's rate, rounded down). */
export function heldFeeCapMsat(p: ClaimedPayout): bigint {
  const q = p.payout?.quote;
  const conv = q?.netConversion;
  if (!q || !conv) throw new Error(`payout ${p.payout?.payoutId}: no quote or conversion`);
  const m = /^(\d+)(?:\.(\d{1,6}))?$/.exec(conv.rateMsatPerUsd);
  if (!m) throw new Error(`payout ${p.payout?.payoutId}: rate ${JSON.stringify(conv.rateMsatPerUsd)} is not a decimal`);
  const rate_e6 = BigInt(m[1]!) * 1_000_000n + BigInt((m[2] ?? "").padEnd(6, "0"));
  return (q.feeMicro * rate_e6) / E12;
}

/** What the node says about a payout's payment, reduced to what the daemon is told. */
type Fate = { kind: "succeeded"; preimage_hex: string; fee_msat: bigint } | { kind: "failed"; reason: string } | { kind: "in_flight" };

function fateOf(o: PayoutOutcome): Fate {
  switch (o.kind) {
    case "succeeded":
      return { kind: "succeeded", preimage_hex: o.preimage_hex, fee_msat: o.fee_msat };
    case "failed":
      return { kind: "failed", reason: `Lightning payment failed: ${o.failure}` };
    case "refused":
      return { kind: "failed", reason: `invoice refused before paying: ${o.refusal.reason}` };
    case "in_flight":
      return { kind: "in_flight" };
  }
}

async function settlePayout(deps: LightningAdapterDeps, id: string, hash: string, fate: Fate, r: RoundReport): Promise<void> {
  switch (fate.kind) {
    case "succeeded":
      await deps.settlement.completePayout({ payoutId: id, txRef: hash, confirmations: 1, networkFeeNative: fate.fee_msat, preimage: fate.preimage_hex });
      deps.log.info({ event: "payout_completed", payout_id: id, payment_hash: hash, fee_msat: String(fate.fee_msat) }, "Lightning payout completed");
      r.completed++;
      return;
    case "failed":
      await deps.settlement.failPayout({ payoutId: id, txRef: hash, reason: fate.reason });
      deps.log.warn({ event: "payout_failed", payout_id: id, payment_hash: hash, reason: fate.reason }, "Lightning payout failed; voided");
      r.failed++;
      return;
    case "in_flight":
      r.in_flight++;
      return;
  }
}

/** Pays (or learns the fate of) one claimed payout. */
async function handlePayout(deps: LightningAdapterDeps, c: ClaimedPayout, r: RoundReport): Promise<void> {
  const p = c.payout!;
  const bolt11 = new TextDecoder().decode(c.signedTransaction);
  const amount_msat = p.quote?.netConversion?.amountMsat ?? 0n;
  const cap = heldFeeCapMsat(c);
  if (p.txRef !== "") {
    // Recorded before (a crash, or still in flight): the HTLC may be out there. Ask the node
    // FIRST; only a hash it never saw may be sent (payInvoiceOnce), and only while the invoice is
    // still valid by our clock.
    const known = await deps.lnd.trackPayment(p.txRef);
    if (known !== null) {
      const fate: Fate =
        known.status === "succeeded"
          ? { kind: "succeeded", preimage_hex: known.preimage_hex, fee_msat: known.fee_msat }
          : known.status === "failed"
            ? { kind: "failed", reason: `Lightning payment failed: ${known.failure}` }
            : { kind: "in_flight" };
      return settlePayout(deps, p.payoutId, p.txRef, fate, r);
    }
    const outcome = await deps.lnd.payInvoiceOnce({ payment_request: bolt11, amount_msat, now_s: deps.now_s(), max_fee_limit_msat: cap });
    return settlePayout(deps, p.payoutId, p.txRef, fateOf(outcome), r);
  }
  const check = checkPayoutInvoice(bolt11, { network: deps.config.network, amount_msat, now_s: deps.now_s(), min_remaining_s: deps.config.min_invoice_remaining_s });
  if (!check.ok) {
    await deps.settlement.failPayout({ payoutId: p.payoutId, txRef: "", reason: `invoice refused before paying: ${check.refusal.reason}` });
    deps.log.warn({ event: "payout_refused", payout_id: p.payoutId, code: check.refusal.code }, "Lightning payout invoice refused; voided");
    r.failed++;
    return;
  }
  const hash = check.invoice.payment_hash_hex;
  await deps.settlement.recordSignedTransaction({ payoutId: p.payoutId, signedTransaction: c.signedTransaction, txRef: hash, replayGuard: 0n });
  const outcome = await deps.lnd.payInvoiceOnce({ payment_request: bolt11, amount_msat, now_s: deps.now_s(), max_fee_limit_msat: cap });
  return settlePayout(deps, p.payoutId, hash, fateOf(outcome), r);
}

async function handleDepositInvoice(deps: LightningAdapterDeps, inv: DepositInvoice, r: RoundReport): Promise<void> {
  if (inv.state === DepositInvoiceState.REQUESTED) {
    const expire_s = Number(inv.expireTime?.seconds ?? 0n);
    const expiry_s = expire_s - deps.now_s();
    if (expiry_s < 1) return;
    const created = await deps.lnd.addInvoice({ value_msat: inv.conversion!.amountMsat, memo: `masques deposit ${inv.depositInvoiceId}`, expiry_s });
    await deps.settlement.recordDepositInvoice({ depositInvoiceId: inv.depositInvoiceId, bolt11: created.payment_request });
    deps.log.info({ event: "deposit_invoice_created", deposit_invoice_id: inv.depositInvoiceId, payment_hash: created.payment_hash_hex }, "deposit invoice created");
    r.invoices_created++;
    return;
  }
  if (inv.paymentHash === "") return;
  const state = await deps.lnd.lookupInvoice(inv.paymentHash);
  if (state === null || state.state !== "SETTLED") return;
  await deps.settlement.reportDeposit({
    chainId: BIP122_CHAIN_ID[deps.config.network],
    txRef: inv.paymentHash,
    eventIndex: 0,
    amountMicro: inv.amountMicro,
    amountMsat: state.amt_paid_msat,
    confirmations: 1,
  });
  deps.log.info({ event: "deposit_reported", deposit_invoice_id: inv.depositInvoiceId, payment_hash: inv.paymentHash, amt_paid_msat: String(state.amt_paid_msat) }, "deposit invoice settled; reported");
  r.deposits_reported++;
}

/**
 * One round: claim and pay payouts, then create / watch deposit invoices. A failure on one item
 * is logged and the item is retried next round (every step is idempotent in the daemon and keyed
 * by payment hash in the node). Returns what was done.
 */
export async function runRound(deps: LightningAdapterDeps, opts: { lease_s?: number } = {}): Promise<RoundReport> {
  const r: RoundReport = { completed: 0, failed: 0, in_flight: 0, invoices_created: 0, deposits_reported: 0 };
  const { payouts } = await deps.settlement.claimPayouts({ rail: Rail.LIGHTNING, maxPayouts: ROUND_MAX, leaseS: opts.lease_s ?? 0 });
  for (const c of payouts.slice(0, ROUND_MAX)) {
    try {
      await handlePayout(deps, c, r);
    } catch (e) {
      deps.log.error({ event: "payout_round_error", payout_id: c.payout?.payoutId, err: (e as Error).message }, "Lightning payout step failed; retried next round");
    }
  }
  const { invoices } = await deps.settlement.claimDepositInvoices({ rail: Rail.LIGHTNING, maxInvoices: ROUND_MAX, leaseS: opts.lease_s ?? 0 });
  for (const inv of invoices.slice(0, 1000)) {
    try {
      await handleDepositInvoice(deps, inv, r);
    } catch (e) {
      deps.log.error({ event: "deposit_round_error", deposit_invoice_id: inv.depositInvoiceId, err: (e as Error).message }, "Lightning deposit step failed; retried next round");
    }
  }
  return r;
}

/**
 * Runs rounds every `config.poll_interval_ms` until `signal` aborts. The first round is the
 * recovery: every payout still leased to this rail with a recorded hash is asked of the node
 * before anything is sent (handlePayout does that for every such payout, in every round).
 */
export async function runAdapter(deps: LightningAdapterDeps, signal: AbortSignal): Promise<void> {
  deps.log.info({ event: "lightning_adapter_started", node: deps.lnd.info.identity_pubkey, network: deps.config.network }, "Lightning adapter started");
  while (!signal.aborted) {
    try {
      const r = await runRound(deps);
      if (r.completed + r.failed + r.invoices_created + r.deposits_reported > 0) deps.log.info({ event: "lightning_round", ...r }, "round");
    } catch (e) {
      deps.log.error({ event: "lightning_round_error", err: (e as Error).message }, "round failed (daemon or node unreachable?); retrying");
    }
    await new Promise<void>((resolve) => {
      const onAbort = () => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, deps.config.poll_interval_ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}
