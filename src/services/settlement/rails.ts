/**
 * What differs per rail on the service side of SettlementService (issues 13 and 14; docs/adr/0091):
 * whether the rail is enabled, its CAIP-2 chain id and finality depth, the canonical form of its
 * addresses, its ownership challenge and proof (Base: EIP-191; Solana: ed25519 over the challenge
 * bytes), how a signed transaction's reference is checked against its bytes, and what proves a
 * recorded transaction can never land before another may replace it. Handlers call a profile;
 * nothing else in the service branches on the rail.
 */
import { getBase58Decoder, isAddress as isSolanaAddress, type Address as SolanaAddress } from "@solana/kit";
import { keccak256, toHex, type Address as EvmAddress, type Hex } from "viem";
import type { Config } from "../../config.js";
import type { StoredChallenge } from "../../controlplane/settlement.js";
import { RAIL_NAMES, type RailName } from "../../domain/codes.js";
import { buildOwnershipChallenge, newChallengeNonce, verifyOwnershipProof, type OwnershipPurpose } from "../../rails/base/ownership.js";
import { buildSolanaOwnershipChallenge, newChallengeNonce as newSolanaNonce, verifySolanaOwnershipProof } from "../../rails/solana/ownership.js";
import { canonicalBaseAddress } from "./views.js";

/** The outcome of checking an ownership proof (the rails' verifiers share these kinds). */
export type ProofCheck = { ok: true } | { ok: false; kind: "expired" | "malformed_signature" | "wrong_signer"; reason: string };

/** A challenge to store (StoredChallenge without id, rail and use). */
export type IssuedChallenge = Omit<StoredChallenge, "challenge_id" | "rail" | "used_at_ms">;

/**
 * What proves a recorded transaction can never land, so a replacement may be recorded:
 * Base: the adapter names it in replaces_tx_ref after the chain showed its nonce taken by another
 * transaction (ADR 0080); Solana: additionally the observed block height is past the recorded
 * transaction's last valid block height (its replay_guard), i.e. its blockhash expired.
 */
export type ReplacementCheck = { ok: true } | { ok: false; rule: string };

export interface RailProfile {
  readonly rail: RailName;
  /** CAIP-2 chain id deposits must name. */
  readonly chain_id: string;
  /** Confirmations at which a payout is completed and a deposit credited. */
  readonly finality_depth: number;
  /** The rule canonicalAddress enforces, for error messages. */
  readonly address_rule: string;
  /** The address in canonical form, or null when malformed. */
  canonicalAddress(text: string): string | null;
  /** Canonical form of a transaction reference as reported (hex lowercased; base58 kept). */
  canonicalTxRef(text: string): string;
  /** Canonical form of a block hash (hex lowercased; base58 kept). */
  canonicalBlockHash(text: string): string;
  /** A challenge for `address` (canonical), valid `ttl_ms` from `now_ms`. */
  issueChallenge(args: { purpose: OwnershipPurpose; principal: string; address: string; now_ms: number; ttl_ms: number }): IssuedChallenge;
  /** Verifies `signature` over the STORED challenge. */
  verifyProof(c: StoredChallenge, signature: string, now_ms: number): Promise<ProofCheck>;
  /** Null when `tx_ref` is the reference of `signed` (and both are well formed), else the rule broken. */
  checkSignedTransaction(signed: Uint8Array, tx_ref: string): string | null;
  /** Whether the recorded transaction (replay_guard) is proven dead by `observed_block_height`. */
  checkReplacement(recorded_replay_guard: bigint | null, observed_block_height: bigint): ReplacementCheck;
}

const BASE_ADDRESS_RULE = "must be a 20-byte 0x-hex address (all lower/upper case, or with a valid EIP-55 checksum)";
const SOLANA_ADDRESS_RULE = "must be a base58 32-byte Solana address (the owner's wallet, not a token account)";

function baseProfile(config: Config): RailProfile {
  return {
    rail: "base",
    chain_id: `eip155:${config.SETTLEMENT_BASE_CHAIN_ID}`,
    finality_depth: config.SETTLEMENT_BASE_FINALITY_DEPTH,
    address_rule: BASE_ADDRESS_RULE,
    canonicalAddress: canonicalBaseAddress,
    canonicalTxRef: (t) => t.toLowerCase(),
    canonicalBlockHash: (t) => t.toLowerCase(),
    issueChallenge: (a) =>
      buildOwnershipChallenge({ ...a, chain_id: config.SETTLEMENT_BASE_CHAIN_ID, address: a.address, nonce: newChallengeNonce() }),
    async verifyProof(c, signature, now_ms) {
      const r = await verifyOwnershipProof({ ...c, address: c.address as EvmAddress, nonce: c.nonce as Hex }, signature, now_ms);
      return r.ok ? { ok: true } : r;
    },
    checkSignedTransaction(signed, tx_ref) {
      if (!/^0x[0-9a-f]{64}$/.test(tx_ref)) return "must be the transaction hash, 0x + 64 hex digits";
      if (signed.length > 0 && keccak256(toHex(signed)) !== tx_ref) return "must be keccak256 of signed_transaction (the Base transaction hash)";
      return null;
    },
    checkReplacement: (_guard, observed) => (observed === 0n ? { ok: true } : { ok: false, rule: "must be 0 on Base (a replacement is proven by the nonce, ADR 0080)" }),
  };
}

/**
 * The first signature of a Solana wire transaction (its id), base58, or null when the bytes are
 * not a wire transaction: a compact-u16 signature count (1-127 here, one byte), then the
 * 64-byte signatures, then the message.
 */
export function solanaTransactionSignature(wire: Uint8Array): string | null {
  const count = wire[0];
  if (count === undefined || count < 1 || count > 127 || wire.length < 1 + 64 * count + 4) return null;
  return getBase58Decoder().decode(wire.subarray(1, 65));
}

function solanaProfile(config: Config, chain_id: string): RailProfile {
  return {
    rail: "solana",
    chain_id,
    finality_depth: config.SETTLEMENT_SOLANA_FINALITY_DEPTH,
    address_rule: SOLANA_ADDRESS_RULE,
    canonicalAddress: (t) => (isSolanaAddress(t) ? t : null),
    canonicalTxRef: (t) => t,
    canonicalBlockHash: (t) => t,
    issueChallenge(a) {
      const c = buildSolanaOwnershipChallenge({ ...a, cluster: config.SETTLEMENT_SOLANA_CLUSTER, nonce: newSolanaNonce() });
      // chain_id is the EVM column; a Solana challenge names its cluster in the signed text.
      return { purpose: c.purpose, principal: c.principal, chain_id: 0, address: c.address as unknown as EvmAddress, nonce: c.nonce as Hex, issued_at_ms: c.issued_at_ms, expires_at_ms: c.expires_at_ms, message: c.message };
    },
    async verifyProof(c, signature, now_ms) {
      const r = await verifySolanaOwnershipProof(
        { purpose: c.purpose, principal: c.principal, cluster: config.SETTLEMENT_SOLANA_CLUSTER, address: c.address as string as SolanaAddress, nonce: c.nonce, issued_at_ms: c.issued_at_ms, expires_at_ms: c.expires_at_ms, message: c.message },
        signature,
        now_ms,
      );
      return r.ok ? { ok: true } : r;
    },
    checkSignedTransaction(signed, tx_ref) {
      if (!/^[1-9A-HJ-NP-Za-km-z]{64,88}$/.test(tx_ref)) return "must be the transaction signature, base58 (64-88 characters)";
      if (signed.length > 0 && solanaTransactionSignature(signed) !== tx_ref) return "must be the first signature of signed_transaction (the Solana transaction id)";
      return null;
    },
    checkReplacement(guard, observed) {
      if (guard === null) return { ok: false, rule: "no recorded transaction to replace" };
      if (observed <= guard) {
        return { ok: false, rule: `must be greater than the recorded transaction's last valid block height ${guard}: until then it can still land; re-send it instead` };
      }
      return { ok: true };
    },
  };
}

/** The rails enabled on this daemon: Base always, Solana when SETTLEMENT_SOLANA_CHAIN_ID is set. */
export function enabledRails(config: Config): RailName[] {
  return RAIL_NAMES.filter((r) => r === "base" || (r === "solana" && config.SETTLEMENT_SOLANA_CHAIN_ID !== undefined));
}

/** The profile of an enabled rail; throws for a rail that is not enabled (a programming error). */
export function railProfile(config: Config, rail: RailName): RailProfile {
  if (rail === "base") return baseProfile(config);
  if (rail === "solana" && config.SETTLEMENT_SOLANA_CHAIN_ID !== undefined) return solanaProfile(config, config.SETTLEMENT_SOLANA_CHAIN_ID);
  throw new Error(`rail ${rail} is not enabled`);
}
