/**
 * The rail-agnostic adapter runner (ADR 0081): one loop per rail adapter process, over a
 * RailDriver (driver.ts) and the daemon's SettlementService (daemon-client.ts). Each `tick`:
 *
 * 1. ClaimPayouts: the daemon returns every payout of this rail under a live lease — the ones
 *    this rail claimed earlier (with their recorded signed bytes, if any) and up to `claim_max`
 *    new ones.
 * 2. Recovery first: every payout with recorded bytes is settled from the chain's answer BEFORE
 *    anything new is signed: final success → CompletePayout (with confirmations and network fee);
 *    final revert or "never lands" after `resign_max` new signatures → FailPayout naming the
 *    recorded tx; never lands → sign anew with `replaces_tx_ref`; unknown → re-broadcast the
 *    SAME bytes; pending / not final → wait. So a crash anywhere is recovered on the next start.
 * 3. New payouts: pre-flight (hot wallet short → FailPayout with the reason, nothing signed) →
 *    sign → RecordSignedTransaction (the daemon holds the bytes) → broadcast. A crash between
 *    sign and record loses only bytes nobody ever saw; after record, step 2 takes over.
 * 4. Deposits: scan from the durable cursor; each final candidate is re-verified on chain and
 *    reported (the daemon credits once per chain event); tentative ones are reported as progress;
 *    the cursor is saved only after every final candidate of the scan was reported.
 *
 * Bounds: `claim_max` payouts per claim, `resign_max` new signatures per payout (per process
 * life), `SCAN_ROUNDS_MAX` scans per tick. Transport failures abort the tick (logged) and the next
 * tick starts over; every daemon call is idempotent.
 */
import type { Logger } from "../../log.js";
import type { ClaimedPayout } from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { errorReason, type SettlementClient } from "./daemon-client.js";
import type { CursorStore } from "./cursor.js";
import type { DepositCandidate, InFlight, PayoutFate, PayoutOrder, RailDriver, SignedPayout, VerifiedDeposit } from "./driver.js";

/** Scans per tick while the scanner says it is not caught up. */
export const SCAN_ROUNDS_MAX = 20;
/** Tentative deposits remembered (to report progress once per confirmation count). */
export const TENTATIVE_MEMORY_MAX = 10_000;

/** Where a test may stop the process to prove crash recovery (fault injection, never in production). */
export type FaultPoint = "after_sign" | "after_record" | "after_broadcast";

export interface AdapterDeps {
  readonly settlement: SettlementClient;
  readonly driver: RailDriver;
  readonly cursor: CursorStore;
  readonly log: Logger;
  readonly claim_max: number;
  readonly resign_max: number;
  /** Called at each fault point; the CLI kills the process there when told to (tests only). */
  readonly fault?: (point: FaultPoint) => void;
}

/** What one tick did (for logs and tests). */
export interface TickReport {
  completed: number;
  failed: number;
  signed: number;
  rebroadcast: number;
  deposits_reported: number;
  deposits_refused: number;
}

/** A candidate's fate: reported, or why not (`kind`: the driver's refusal kind or the daemon's ErrorInfo reason). */
export type DepositOutcome = { reported: true } | { reported: false; kind: string; reason: string };

export interface RailAdapter {
  /** One round of payouts then deposits. Throws transport failures (the caller retries). */
  tick(): Promise<TickReport>;
  /** Verify one candidate on chain and report it only if it checks out (also used by tests). */
  verifyAndReport(c: DepositCandidate): Promise<DepositOutcome>;
  /** Tick every `interval_ms` until `signal` aborts; resolves after the tick in progress ends. */
  run(interval_ms: number, signal: AbortSignal): Promise<void>;
}

function orderOf(c: ClaimedPayout): PayoutOrder {
  const p = c.payout;
  if (!p || !p.quote) throw new Error("ClaimPayouts returned a payout without its quote");
  return { payout_id: p.payoutId, destination: p.destinationAddress, net_micro: p.quote.netMicro };
}

/** Create the runner for one rail. */
export function createRailAdapter(deps: AdapterDeps): RailAdapter {
  const { settlement, driver, log } = deps;
  const rail = driver.proto_rail;
  const resigns = new Map<string, number>();
  const tentativeSeen = new Map<string, number>();

  async function complete(order: PayoutOrder, tx: SignedPayout, confirmations: number, fee_native: bigint, block_number: bigint, r: TickReport, account_created = false) {
    await settlement.completePayout({ payoutId: order.payout_id, txRef: tx.tx_ref, confirmations, networkFeeNative: fee_native, blockNumber: block_number, accountCreated: account_created });
    resigns.delete(order.payout_id);
    r.completed += 1;
    log.info({ event: "payout_completed", payout_id: order.payout_id, tx_ref: tx.tx_ref, block_number: String(block_number), confirmations, fee_native: String(fee_native) }, "payout confirmed at finality depth");
  }

  async function fail(order: PayoutOrder, tx_ref: string, reason: string, r: TickReport) {
    try {
      await settlement.failPayout({ payoutId: order.payout_id, reason, txRef: tx_ref });
    } catch (e) {
      if (errorReason(e) !== "PAYOUT_ALREADY_POSTED") throw e;
      log.error({ event: "payout_fail_refused", payout_id: order.payout_id, tx_ref }, "the daemon says this payout was already completed");
      return;
    }
    resigns.delete(order.payout_id);
    r.failed += 1;
    log.warn({ event: "payout_failed", payout_id: order.payout_id, tx_ref, reason }, "payout failed and voided: the money returns to the author");
  }

  /** Sign, record (before anything leaves), broadcast. `replaces` names a recorded tx that can never land. */
  async function signRecordBroadcast(order: PayoutOrder, in_flight: InFlight, replaces: string, r: TickReport, observed_block_height = 0n): Promise<SignedPayout | null> {
    const pre = await driver.preflight(order, in_flight);
    if (!pre.ok && !pre.definite) {
      log.info({ event: "payout_deferred", payout_id: order.payout_id, reason: pre.reason }, "hot wallet short only because of in-flight payouts: trying again next tick");
      return null;
    }
    if (!pre.ok) {
      await fail(order, replaces, pre.reason, r);
      return null;
    }
    const tx = await driver.sign(order, in_flight);
    deps.fault?.("after_sign");
    try {
      await settlement.recordSignedTransaction({ payoutId: order.payout_id, signedTransaction: tx.bytes, txRef: tx.tx_ref, replayGuard: tx.replay_guard, replacesTxRef: replaces, observedBlockHeight: observed_block_height });
    } catch (e) {
      const reason = errorReason(e);
      if (reason === null) throw e;
      // Lost the lease, cancelled, or another process recorded first: nothing was broadcast.
      log.warn({ event: "payout_record_refused", payout_id: order.payout_id, reason }, "the daemon refused the signed transaction; it is discarded unsent");
      return null;
    }
    deps.fault?.("after_record");
    r.signed += 1;
    const b = await driver.broadcast(tx);
    deps.fault?.("after_broadcast");
    log.info({ event: "payout_broadcast", payout_id: order.payout_id, tx_ref: tx.tx_ref, ok: b.ok, detail: b.ok ? b.detail : b.reason }, "payout transaction sent");
    return tx;
  }

  /** Step 2: a payout whose bytes are recorded. Returns what is still in flight, or null. */
  async function settleRecorded(order: PayoutOrder, tx: SignedPayout, fate: PayoutFate, in_flight: InFlight, r: TickReport): Promise<{ tx: SignedPayout; landed: boolean } | null> {
    switch (fate.kind) {
      case "pending":
        return { tx, landed: false };
      case "unknown": {
        const b = await driver.broadcast(tx);
        r.rebroadcast += 1;
        log.info({ event: "payout_rebroadcast", payout_id: order.payout_id, tx_ref: tx.tx_ref, ok: b.ok, detail: b.ok ? b.detail : b.reason }, "recorded transaction sent again");
        return { tx, landed: false };
      }
      case "landed":
        if (!fate.final) return { tx, landed: true };
        if (fate.success) await complete(order, tx, fate.confirmations, fate.fee_native, fate.block_number, r, fate.account_created ?? false);
        else await fail(order, tx.tx_ref, fate.reason, r);
        return null;
      case "never_lands": {
        const n = resigns.get(order.payout_id) ?? 0;
        if (n >= deps.resign_max) {
          await fail(order, tx.tx_ref, `${fate.reason} (gave up after ${n} new signatures)`, r);
          return null;
        }
        resigns.set(order.payout_id, n + 1);
        log.warn({ event: "payout_resign", payout_id: order.payout_id, replaces: tx.tx_ref, reason: fate.reason }, "recorded transaction can never land: signing anew");
        const next = await signRecordBroadcast(order, in_flight, tx.tx_ref, r, fate.observed_block_height ?? 0n);
        // Not re-signed (deferred or refused): the old bytes stay the recorded ones.
        return next === null ? { tx, landed: false } : { tx: next, landed: false };
      }
    }
  }

  async function payouts(r: TickReport): Promise<void> {
    const claimed = (await settlement.claimPayouts({ rail, maxPayouts: deps.claim_max })).payouts;
    const recorded = claimed.filter((c) => c.signedTransaction.length > 0);
    const fresh = claimed.filter((c) => c.signedTransaction.length === 0);
    const in_flight: { order: PayoutOrder; tx: SignedPayout; landed: boolean }[] = [];
    const examined = recorded.map((c) => {
      const order = orderOf(c);
      const tx = driver.decode(c.signedTransaction);
      if (tx.tx_ref !== c.payout!.txRef.toLowerCase() && tx.tx_ref !== c.payout!.txRef) {
        throw new Error(`payout ${order.payout_id}: recorded bytes hash to ${tx.tx_ref}, the daemon recorded ${c.payout!.txRef}`);
      }
      return { order, tx };
    });
    // Reading fates has no side effect: ask the chain about all of them at once, then act in order.
    const fates = await Promise.all(examined.map((e) => driver.fate(e.tx)));
    for (const [i, { order, tx }] of examined.entries()) {
      const still = await settleRecorded(order, tx, fates[i]!, in_flight, r);
      if (still) in_flight.push({ order, ...still });
    }
    for (const c of fresh) {
      const order = orderOf(c);
      const tx = await signRecordBroadcast(order, in_flight, "", r);
      if (tx) in_flight.push({ order, tx, landed: false });
    }
  }

  async function report(d: VerifiedDeposit): Promise<void> {
    await settlement.reportDeposit({
      chainId: d.chain_id,
      txRef: d.tx_ref,
      eventIndex: d.event_index,
      fromAddress: d.from_address,
      amountMicro: d.amount_micro,
      blockNumber: d.block_number,
      blockHash: d.block_ref,
      confirmations: d.confirmations,
    });
  }

  async function verifyAndReport(c: DepositCandidate): Promise<DepositOutcome> {
    const v = await driver.verifyDeposit(c);
    if (!v.ok) {
      log.warn({ event: "deposit_refused", tx_ref: c.tx_ref, event_index: c.event_index, kind: v.kind, reason: v.reason }, "deposit not verified on chain: not reported");
      return { reported: false, kind: v.kind, reason: v.reason };
    }
    try {
      await report(v.deposit);
    } catch (e) {
      const reason = errorReason(e);
      if (reason === null) throw e;
      log.error({ event: "deposit_report_refused", tx_ref: c.tx_ref, event_index: c.event_index, reason }, "the daemon refused a verified deposit");
      return { reported: false, kind: reason, reason: e instanceof Error ? e.message : reason };
    }
    log.info({ event: "deposit_reported", tx_ref: v.deposit.tx_ref, event_index: v.deposit.event_index, amount_micro: String(v.deposit.amount_micro), confirmations: v.deposit.confirmations }, "verified deposit reported");
    return { reported: true };
  }

  async function deposits(r: TickReport): Promise<void> {
    let cursor = await deps.cursor.load();
    if (cursor === null) {
      // Persist the starting point at once: a restart must not move it to a later head.
      cursor = await driver.initialCursor();
      await deps.cursor.save(cursor);
      log.info({ event: "deposit_cursor", cursor, initial: true }, "deposit scan starts here");
    }
    for (let round = 0; round < SCAN_ROUNDS_MAX; round++) {
      const scan = await driver.scanDeposits(cursor);
      if (scan.reorg !== null) log.error({ event: "deposit_scan_reorg", detail: scan.reorg }, "ALARM: reorg deeper than the finality depth; cursor rewound");
      for (const c of scan.final) {
        const out = await verifyAndReport(c);
        if (out.reported) r.deposits_reported += 1;
        else r.deposits_refused += 1;
      }
      for (const t of scan.tentative) {
        const key = `${t.tx_ref}:${t.event_index}`;
        if (tentativeSeen.get(key) === t.confirmations) continue;
        if (tentativeSeen.size >= TENTATIVE_MEMORY_MAX) tentativeSeen.clear();
        tentativeSeen.set(key, t.confirmations);
        try {
          await report(t);
          log.info({ event: "deposit_progress", tx_ref: t.tx_ref, event_index: t.event_index, confirmations: t.confirmations }, "deposit below finality depth reported (not credited)");
        } catch (e) {
          if (errorReason(e) === null) throw e;
          log.warn({ event: "deposit_progress_refused", tx_ref: t.tx_ref, reason: errorReason(e) }, "the daemon refused a progress report");
        }
      }
      if (scan.cursor !== cursor) {
        await deps.cursor.save(scan.cursor);
        log.info({ event: "deposit_cursor", cursor: scan.cursor }, "deposit scan cursor saved");
        cursor = scan.cursor;
      }
      if (scan.caught_up) return;
    }
  }

  async function tick(): Promise<TickReport> {
    const r: TickReport = { completed: 0, failed: 0, signed: 0, rebroadcast: 0, deposits_reported: 0, deposits_refused: 0 };
    await payouts(r);
    await deposits(r);
    return r;
  }

  async function run(interval_ms: number, signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await tick();
        failures = 0;
      } catch (e) {
        failures += 1;
        log.error({ event: "tick_failed", err: e instanceof Error ? e.message : String(e), failures }, "adapter tick failed; retrying next tick");
      }
      if (signal.aborted) break;
      // Back off on repeated failures (bounded at 30 s), otherwise poll at the configured interval.
      const wait_ms = Math.min(interval_ms * 2 ** Math.min(failures, 5), Math.max(interval_ms, 30_000));
      await new Promise<void>((resolve) => {
        const onAbort = () => {
          clearTimeout(t);
          resolve();
        };
        const t = setTimeout(() => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        }, wait_ms);
        signal.addEventListener("abort", onAbort, { once: true });
      });
    }
  }

  return { tick, verifyAndReport, run };
}
