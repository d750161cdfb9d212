/**
 * What the daemon does with a rail adapter's deposit report (issue 13 "Deposits"; seed 004 §4.3:
 * never credit what was not verified on chain; docs/adr/0085).
 *
 * Pure: the service passes the report (already verified on chain by the adapter, the only holder
 * of chain credentials), the rail's configuration, the source binding, the wallet's state and the
 * earlier report of the same chain event (control plane); this returns one decision. Checks, in
 * order: the key is well formed for the rail and on the rail's configured chain (WRONG_CHAIN); the
 * amount is in range; the facts agree with an earlier report of the same event (from and amount;
 * block number and hash may change when a reorg re-includes the transaction); below finality →
 * record CONFIRMING, credit nothing; unbound source → HELD for an admin; wallet missing or closed
 * → HELD (submitting would burn the deposit id for ever, see ADR 0085); otherwise → credit.
 */
import type { Transfer } from "tigerbeetle-node";
import type { RailName } from "../codes.js";
import { AMOUNT_MAX_MICRO } from "../accounts.js";
import { canonicalDepositKey, DepositKeyError, type DepositKey } from "./ids.js";
import { depositCreditPlan } from "./plans.js";

/** The verified facts a rail adapter reports (ReportDepositRequest). */
export interface DepositReport {
  chain_id: string;
  tx_ref: string;
  event_index: number;
  /** Canonical source address (the rail's parser canonicalises it). */
  from_address: string;
  amount_micro: bigint;
  confirmations: number;
}

/** The facts recorded for an earlier report of the same event. */
export interface RecordedDepositFacts {
  from_address: string;
  amount_micro: bigint;
}

export type DepositDecision =
  | { action: "refuse"; reason: "INVALID_ARGUMENT"; field: string; rule: string }
  | { action: "refuse"; reason: "WRONG_CHAIN"; chain_id: string; expected_chain_id: string }
  | { action: "refuse"; reason: "DEPOSIT_FACTS_MISMATCH"; field: "from_address" | "amount_micro"; recorded: string; reported: string }
  | { action: "record_confirming"; key: DepositKey; confirmations: number; finality_depth: number }
  | { action: "hold"; key: DepositKey; why: "unbound_source" | "wallet_missing" | "wallet_closed" }
  | { action: "credit"; key: DepositKey; transfer: Transfer };

/**
 * Decides a deposit report. `binding` is the agent wallet the source address is bound to, with
 * the wallet's state as just read from the ledger (or null when the source is bound to nobody).
 */
export function decideDepositReport(args: {
  rail: RailName;
  /** The rail's configured CAIP-2 chain id, e.g. "eip155:8453". */
  chain_id: string;
  finality_depth: number;
  report: DepositReport;
  earlier: RecordedDepositFacts | null;
  binding: { wallet_id: bigint; wallet: "open" | "missing" | "closed" } | null;
}): DepositDecision {
  const { report } = args;
  let key: DepositKey;
  try {
    key = canonicalDepositKey(args.rail, report);
  } catch (e) {
    if (e instanceof DepositKeyError) return { action: "refuse", reason: "INVALID_ARGUMENT", field: e.field, rule: e.rule };
    throw e;
  }
  const expected = canonicalDepositKey(args.rail, { chain_id: args.chain_id, tx_ref: key.tx_ref, event_index: key.event_index }).chain_id;
  if (key.chain_id !== expected) return { action: "refuse", reason: "WRONG_CHAIN", chain_id: key.chain_id, expected_chain_id: expected };
  if (report.amount_micro <= 0n || report.amount_micro > AMOUNT_MAX_MICRO) {
    return { action: "refuse", reason: "INVALID_ARGUMENT", field: "amount_micro", rule: "must be > 0 and <= 2^63-1" };
  }
  if (!Number.isInteger(report.confirmations) || report.confirmations < 0) {
    return { action: "refuse", reason: "INVALID_ARGUMENT", field: "confirmations", rule: "must be an integer >= 0" };
  }
  if (args.earlier !== null) {
    if (args.earlier.from_address !== report.from_address) {
      return { action: "refuse", reason: "DEPOSIT_FACTS_MISMATCH", field: "from_address", recorded: args.earlier.from_address, reported: report.from_address };
    }
    if (args.earlier.amount_micro !== report.amount_micro) {
      return {
        action: "refuse",
        reason: "DEPOSIT_FACTS_MISMATCH",
        field: "amount_micro",
        recorded: String(args.earlier.amount_micro),
        reported: String(report.amount_micro),
      };
    }
  }
  if (report.confirmations < args.finality_depth) {
    return { action: "record_confirming", key, confirmations: report.confirmations, finality_depth: args.finality_depth };
  }
  if (args.binding === null) return { action: "hold", key, why: "unbound_source" };
  if (args.binding.wallet !== "open") return { action: "hold", key, why: args.binding.wallet === "missing" ? "wallet_missing" : "wallet_closed" };
  return { action: "credit", key, transfer: depositCreditPlan({ key, wallet_id: args.binding.wallet_id, amount_micro: report.amount_micro }) };
}
