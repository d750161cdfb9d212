/**
 * Settlement ids: accounts per rail, payout transfer ids, deposit keys and credit ids.
 *
 * Pure. Every id is deterministic (src/domain/ids.ts), so a retried call rebuilds the same ledger
 * events and the ledger answers `exists` instead of moving money twice (issue 13; seed 004 §4.3;
 * docs/adr/0085-settlement-framework.md).
 *
 * - Payout: id = hold id = deterministicId("transfer", "payout_hold", author_id, idempotency_key).
 *   Its other transfers (fee hold, posts, voids) are the hold id XOR a tag in the top byte, as the
 *   session ids are (ADR 0032), so the whole payout is found from its id alone.
 * - Deposit: credit id = deterministicId("transfer", "rail_deposit", chain_id, tx_ref,
 *   event_index) over the CANONICAL key, so one chain event is credited at most once whatever
 *   spelling (hex case) a report uses.
 */
import { deterministicId, ID_MAX } from "../ids.js";
import { Rail, type RailName } from "../codes.js";

/** The account that collects one rail's payout fees (code rail_fees, ADR 0085). */
export function railFeesAccountId(rail: RailName): bigint {
  return deterministicId("account", "rail_fees", rail);
}

// ---- payouts -----------------------------------------------------------------------------------

/** Ledger ids of one payout's transfers. */
export interface PayoutTransferIds {
  /** Pending earnings → rail outbound for the net amount. Also the payout id. */
  hold: bigint;
  /** Pending earnings → rail fees for the fee (linked with `hold`). */
  fee_hold: bigint;
  /** Post of `hold` on confirmation. */
  post: bigint;
  /** Post of `fee_hold` on confirmation. */
  fee_post: bigint;
  /** Void of `hold` on failure or cancel. */
  void: bigint;
  /** Void of `fee_hold` on failure or cancel. */
  fee_void: bigint;
}

/** Top-byte tags XORed into the hold id to name a payout's other transfers (ADR 0085). */
export const PAYOUT_ID_TAG = {
  fee_hold: 0x11n << 120n,
  post: 0x12n << 120n,
  fee_post: 0x13n << 120n,
  void: 0x14n << 120n,
  fee_void: 0x15n << 120n,
} as const;

function derived(hold: bigint, tag: bigint, name: string): bigint {
  const id = hold ^ tag;
  return id === 0n || id === ID_MAX ? deterministicId("transfer", name, hold) : id;
}

/**
 * The payout id (= its hold's transfer id) for an author's idempotency key. The key is scoped by
 * author, so two authors may use the same key; the rail and amounts are not part of the id, so the
 * same key for another payout collides in the ledger (exists_with_different_*) instead of paying
 * twice.
 */
export function payoutId(author_id: string, idempotency_key: string): bigint {
  return deterministicId("transfer", "payout_hold", author_id, idempotency_key);
}

/** Every transfer id of a payout, from its id. */
export function payoutTransferIds(payout_id: bigint): PayoutTransferIds {
  return {
    hold: payout_id,
    fee_hold: derived(payout_id, PAYOUT_ID_TAG.fee_hold, "payout_fee_hold"),
    post: derived(payout_id, PAYOUT_ID_TAG.post, "payout_post"),
    fee_post: derived(payout_id, PAYOUT_ID_TAG.fee_post, "payout_fee_post"),
    void: derived(payout_id, PAYOUT_ID_TAG.void, "payout_void"),
    fee_void: derived(payout_id, PAYOUT_ID_TAG.fee_void, "payout_fee_void"),
  };
}

// ---- deposits ----------------------------------------------------------------------------------

/** A chain event's identity, canonical: equal keys name the same event, and only then. */
export interface DepositKey {
  rail: RailName;
  /** CAIP-2 chain id, e.g. "eip155:8453". */
  chain_id: string;
  /** Base: lowercase 0x tx hash; Solana: base58 signature (case kept); Lightning: lowercase payment hash. */
  tx_ref: string;
  /** Base: log index; Solana: instruction index; Lightning: 0. */
  event_index: number;
}

/** Thrown for a deposit key that is not well formed for its rail; names the field and the rule. */
export class DepositKeyError extends Error {
  constructor(
    readonly field: "chain_id" | "tx_ref" | "event_index",
    readonly rule: string,
  ) {
    super(`${field}: ${rule}`);
    this.name = "DepositKeyError";
  }
}

const BASE58 = "[1-9A-HJ-NP-Za-km-z]";
/** Per rail: the CAIP-2 namespace of its chains and the shape of a transaction reference. */
const RAIL_KEY_RULES: Record<RailName, { chain: RegExp; chain_rule: string; tx: RegExp; tx_rule: string; lower: boolean }> = {
  base: {
    chain: /^eip155:[1-9][0-9]{0,18}$/,
    chain_rule: 'must be a CAIP-2 EVM chain id "eip155:<decimal chain id>"',
    tx: /^0x[0-9a-f]{64}$/,
    tx_rule: "must be a 0x-prefixed 32-byte hex transaction hash",
    lower: true,
  },
  solana: {
    chain: new RegExp(`^solana:${BASE58}{32}$`),
    chain_rule: 'must be a CAIP-2 Solana chain id "solana:<32 base58 characters of the genesis hash>"',
    tx: new RegExp(`^${BASE58}{64,88}$`),
    tx_rule: "must be a base58 transaction signature (64-88 characters)",
    lower: false,
  },
  lightning: {
    chain: /^bip122:[0-9a-f]{32}$/,
    chain_rule: 'must be a CAIP-2 Bitcoin chain id "bip122:<32 hex of the genesis hash>"',
    tx: /^[0-9a-f]{64}$/,
    tx_rule: "must be a 32-byte hex payment hash",
    lower: true,
  },
};

/**
 * Validates a reported (chain id, tx ref, event index) for a rail and returns its canonical form
 * (hex lowercased; base58 kept as is, it is case-sensitive). Throws DepositKeyError naming the
 * field. A chain id of another rail's namespace is refused: a rail reports only its own chain.
 */
export function canonicalDepositKey(
  rail: RailName,
  report: { chain_id: string; tx_ref: string; event_index: number },
): DepositKey {
  const rules = RAIL_KEY_RULES[rail];
  const chain_id = rules.lower ? report.chain_id.toLowerCase() : report.chain_id;
  if (!rules.chain.test(chain_id)) throw new DepositKeyError("chain_id", rules.chain_rule);
  const tx_ref = rules.lower ? report.tx_ref.toLowerCase() : report.tx_ref;
  if (!rules.tx.test(tx_ref)) throw new DepositKeyError("tx_ref", rules.tx_rule);
  const max = rail === "lightning" ? 0 : 0xffff_ffff;
  if (!Number.isInteger(report.event_index) || report.event_index < 0 || report.event_index > max) {
    throw new DepositKeyError("event_index", rail === "lightning" ? "must be 0 on Lightning" : "must be an integer in [0, 2^32-1]");
  }
  return { rail, chain_id, tx_ref, event_index: report.event_index };
}

/** The credit transfer id of a deposit (also the deposit id): one per canonical chain event. */
export function depositCreditId(key: DepositKey): bigint {
  return deterministicId("transfer", "rail_deposit", key.chain_id, key.tx_ref, key.event_index);
}

/** The rail number stored in `user_data_32` of rail transfers. */
export function railNumber(rail: RailName): number {
  return Rail[rail];
}
