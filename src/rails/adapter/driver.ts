/**
 * The rail driver port (ADR 0081): what the rail-agnostic adapter runner (runner.ts) asks of one
 * rail. Each rail (Base, Solana, Lightning) implements it over its chain/node port; the runner
 * owns the order of steps and every call to the daemon, the driver owns the chain.
 *
 * Never pay twice: the runner records `SignedPayout.bytes` through the daemon BEFORE it calls
 * `broadcast`, and after a crash it hands the recorded bytes back to `fate` / `broadcast`. A driver
 * must therefore make `broadcast` idempotent for the same bytes and make `fate` tell apart
 * "can still land" (pending, unknown → re-broadcast the SAME bytes) from "can never land"
 * (`never_lands`: only then may the runner sign anew or fail the payout).
 *
 * How the three rails fit:
 * - Base (EVM): bytes = a signed EIP-1559 tx, tx_ref = its hash, replay_guard = its nonce; fate
 *   from the receipt at finality depth; `never_lands` when the nonce was consumed at depth by
 *   another transaction.
 * - Solana: bytes = the wire transaction, tx_ref = its signature, replay_guard = the last valid
 *   block height; `never_lands` (re-sign allowed) only once the blockhash expired and the
 *   signature is not on chain.
 * - Lightning: bytes = the invoice to pay, tx_ref = its payment hash; `broadcast` pays it at most
 *   once per payment hash (the node refuses a second payment), `fate` asks the node for the
 *   payment by hash first (also after a crash); `never_lands` when the node says it failed.
 *
 * Amounts are bigint base units of the rail's ledger (`_micro` = micro-USD); `fee_native` is in
 * the rail's native unit (wei, lamports, msat). Expected failures are values; transport failures
 * are thrown (the runner logs them and retries on the next tick).
 */
import type { Rail } from "../../../clients/gen/masques/ledger/v1/common_pb.js";
import type { RailName } from "../../domain/codes.js";

/** A payout the daemon leased to this rail, in the driver's terms. */
export interface PayoutOrder {
  /** 32 hex digits (the ledger hold id). */
  readonly payout_id: string;
  /** The destination fixed at confirmation (rail's address form; a BOLT11 invoice on Lightning). */
  readonly destination: string;
  /** What must arrive: the quote's net, in micro-USD. */
  readonly net_micro: bigint;
}

/** Signed (or otherwise prepared) payout bytes: recorded through the daemon before broadcast. */
export interface SignedPayout {
  readonly bytes: Uint8Array;
  /** Rail reference the daemon keys by: tx hash, signature or payment hash. */
  readonly tx_ref: string;
  /** Rail replay guard (EVM nonce, Solana last valid block height, 0 on Lightning). */
  readonly replay_guard: bigint;
}

/**
 * Payouts already signed and recorded but not yet settled. `landed`: the chain already holds the
 * transaction (its funds already left the hot wallet), so a driver reserves funds only for the
 * others, and takes replay guards (nonces) from all.
 */
export type InFlight = readonly { readonly order: PayoutOrder; readonly tx: SignedPayout; readonly landed: boolean }[];

/**
 * `definite`: the hot wallet cannot pay this payout even with nothing else in flight (fail it);
 * otherwise it is short only because of in-flight payouts (keep it leased and try again).
 */
export type Preflight = { ok: true } | { ok: false; definite: boolean; reason: string };

export type BroadcastOutcome = { ok: true; detail: string } | { ok: false; reason: string };

/** What the chain / node says about a recorded payout. */
export type PayoutFate =
  /** In the pool / in flight: wait. */
  | { kind: "pending" }
  /** Not known: re-broadcast the same recorded bytes. */
  | { kind: "unknown" }
  /** Landed; `final` at the rail's finality depth. Only a final success completes the payout. */
  | {
      kind: "landed";
      success: boolean;
      final: boolean;
      confirmations: number;
      block_number: bigint;
      block_ref: string;
      fee_native: bigint;
      reason: string;
      /** Solana: the payout created the destination's token account (CompletePayout.account_created). */
      account_created?: boolean;
    }
  /**
   * The recorded bytes can never land (nonce used, blockhash expired, payment failed).
   * `observed_block_height` (Solana): the block height seen past the recorded replay guard, the
   * proof RecordSignedTransaction asks of a replacement (ADR 0091).
   */
  | { kind: "never_lands"; reason: string; observed_block_height?: bigint };

/** A deposit event as the scan found it; the runner passes it to `verifyDeposit` before reporting. */
export interface DepositCandidate {
  readonly tx_ref: string;
  readonly event_index: number;
  /** What the reporter believes; every field given must equal the chain's. */
  readonly from_address?: string;
  readonly amount_micro?: bigint;
}

/** Facts re-read from the chain: what the runner reports through `ReportDeposit`. */
export interface VerifiedDeposit {
  /** CAIP-2 chain id, e.g. "eip155:8453". */
  readonly chain_id: string;
  readonly tx_ref: string;
  readonly event_index: number;
  readonly from_address: string;
  readonly amount_micro: bigint;
  readonly block_number: bigint;
  readonly block_ref: string;
  readonly confirmations: number;
}

export type DepositCheck = { ok: true; deposit: VerifiedDeposit } | { ok: false; kind: string; reason: string };

export interface DepositScan {
  /** Text form of the cursor to persist once every `final` candidate was reported. */
  readonly cursor: string;
  /** Candidates at finality depth, in chain order: verify, then report. */
  readonly final: readonly DepositCandidate[];
  /** Below finality depth: reported as progress (the daemon never credits them). */
  readonly tentative: readonly VerifiedDeposit[];
  /** False: the range was cut at a bound; scan again right away. */
  readonly caught_up: boolean;
  /** A reorg deeper than the finality depth was seen (operators must look): the description. */
  readonly reorg: string | null;
}

/** One rail, as the runner sees it. */
export interface RailDriver {
  readonly rail: RailName;
  readonly proto_rail: Rail;
  /** Can the hot wallet pay `order` on top of what `in_flight` already promised? */
  preflight(order: PayoutOrder, in_flight: InFlight): Promise<Preflight>;
  /** Sign (no chain side effect). `in_flight` lets the rail pick a free replay guard (nonce). */
  sign(order: PayoutOrder, in_flight: InFlight): Promise<SignedPayout>;
  /** The recorded bytes as returned by ClaimPayouts, parsed back (throws on bytes it did not make). */
  decode(bytes: Uint8Array): SignedPayout;
  /** Send recorded bytes; idempotent for the same bytes. */
  broadcast(tx: SignedPayout): Promise<BroadcastOutcome>;
  fate(tx: SignedPayout): Promise<PayoutFate>;
  /** First cursor when none was persisted yet. */
  initialCursor(): Promise<string>;
  scanDeposits(cursor: string): Promise<DepositScan>;
  /** Re-read one deposit from the chain (seed 004 §4.3); refusals name the failed check. */
  verifyDeposit(candidate: DepositCandidate): Promise<DepositCheck>;
  /** Hot-wallet balances by unit name (for logs and reconciliation). */
  balances(): Promise<Record<string, bigint>>;
}
