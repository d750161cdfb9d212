/**
 * Anchoring the audit chain's head in the ledger (ADR 0101): a zero-amount transfer (TigerBeetle
 * 0.17 accepts amount 0) from the platform operator account to platform revenue, so no balance
 * moves. `user_data_128` = the first 128 bits of the head's hash, `user_data_64` = its position,
 * `code` = audit_anchor. Its id is deterministic in the position: anchoring the same head twice
 * answers `exists`; a different hash at an anchored position answers exists_with_different_*.
 */
import { TransferFlags, type Transfer } from "tigerbeetle-node";
import { platformAccountId } from "./accounts.js";
import type { AuditAnchor } from "./audit-chain.js";
import { Ledger, TransferCode } from "./codes.js";
import { deterministicId } from "./ids.js";
import { newTransfer } from "./records.js";

/** The anchor transfer of chain position `seq` whose hash is `hash` (64 hex digits). */
export function auditAnchorTransfer(seq: bigint, hash: string): Transfer {
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new RangeError("audit hash must be 64 lowercase hex digits");
  if (seq < 1n || seq >= 1n << 64n) throw new RangeError("audit seq must be 1..2^64-1");
  return newTransfer({
    id: deterministicId("transfer", "audit_anchor", seq),
    debit_account_id: platformAccountId("platform_operator"),
    credit_account_id: platformAccountId("platform_revenue"),
    amount: 0n,
    ledger: Ledger.usd_micro,
    code: TransferCode.audit_anchor,
    flags: TransferFlags.none,
    user_data_128: BigInt(`0x${hash.slice(0, 32)}`),
    user_data_64: seq,
  });
}

/** An anchor transfer read back from the ledger, as the chain verifier takes it. */
export function anchorOf(t: Transfer): AuditAnchor {
  return { seq: t.user_data_64, hash_prefix: t.user_data_128.toString(16).padStart(32, "0") };
}
