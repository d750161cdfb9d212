/**
 * Proof that whoever registers a Base address controls it (issue 13: payout destinations of
 * authors, deposit sources of agents). The daemon issues a challenge naming the purpose, the
 * principal, the chain and the address, with a random nonce and an expiry; the owner signs its
 * text with EIP-191 `personal_sign` (any wallet: MetaMask, `cast wallet sign`, viem
 * `signMessage`); the daemon recovers the signer with viem and compares. Pure functions: the
 * caller supplies the nonce (newChallengeNonce) and the clock, stores the issued challenge and
 * consumes it once. Only EOAs are supported: a smart-contract wallet (ERC-1271) cannot produce a
 * recoverable signature and is refused as a wrong signer (ADR 0080).
 */
import { randomBytes } from "node:crypto";
import { getAddress, isAddress, isAddressEqual, isHex, recoverMessageAddress, type Address, type Hex } from "viem";

export type OwnershipPurpose = "payout_destination" | "deposit_source";

/** A challenge as issued (store it; verify against the stored copy, never the client's). */
export interface OwnershipChallenge {
  readonly purpose: OwnershipPurpose;
  /** Principal that will own the binding, e.g. "author:alice" or "agent:bob". */
  readonly principal: string;
  readonly chain_id: number;
  /** EIP-55. */
  readonly address: Address;
  /** 32 random bytes, hex (newChallengeNonce). */
  readonly nonce: Hex;
  readonly issued_at_ms: number;
  readonly expires_at_ms: number;
  /** The exact text to sign (EIP-191 personal_sign). */
  readonly message: string;
}

export type OwnershipVerification =
  | { ok: true; address: Address }
  | { ok: false; kind: "expired" | "malformed_signature" | "wrong_signer"; reason: string };

/** 32 random bytes as 0x-hex, for OwnershipChallenge.nonce. */
export function newChallengeNonce(): Hex {
  return `0x${randomBytes(32).toString("hex")}`;
}

/** Upper bound on a challenge's lifetime. */
export const MAX_CHALLENGE_TTL_MS = 24 * 3600 * 1000;

/**
 * Build the challenge text. Throws RangeError naming the field for a bad address, principal,
 * nonce or lifetime (0 < ttl <= MAX_CHALLENGE_TTL_MS). The text is line-based and names every
 * field, so a wallet shows the user what they are proving.
 */
export function buildOwnershipChallenge(req: {
  purpose: OwnershipPurpose;
  principal: string;
  chain_id: number;
  address: string;
  nonce: Hex;
  now_ms: number;
  ttl_ms: number;
}): OwnershipChallenge {
  if (!isAddress(req.address)) throw new RangeError(`address: expected a 20-byte address with a valid EIP-55 checksum, got "${req.address}"`);
  if (!/^[A-Za-z0-9._:@-]{1,128}$/.test(req.principal)) throw new RangeError(`principal: expected 1-128 chars of [A-Za-z0-9._:@-], got "${req.principal}"`);
  if (!isHex(req.nonce) || req.nonce.length !== 66) throw new RangeError("nonce: expected 32 bytes as 0x + 64 hex digits");
  if (!Number.isSafeInteger(req.chain_id) || req.chain_id <= 0) throw new RangeError(`chain_id: expected a positive integer, got ${req.chain_id}`);
  if (!(req.ttl_ms > 0 && req.ttl_ms <= MAX_CHALLENGE_TTL_MS)) throw new RangeError(`ttl_ms: expected 1..${MAX_CHALLENGE_TTL_MS}, got ${req.ttl_ms}`);
  const address = getAddress(req.address);
  const expires_at_ms = req.now_ms + req.ttl_ms;
  const what = req.purpose === "payout_destination" ? "receive payouts of" : "send deposits for";
  const message = [
    "Masques Ledger: prove you control this address.",
    `I control ${address} and allow it to ${what} ${req.principal}.`,
    `Purpose: ${req.purpose}`,
    `Principal: ${req.principal}`,
    `Chain ID: ${req.chain_id}`,
    `Address: ${address}`,
    `Nonce: ${req.nonce}`,
    `Issued At: ${new Date(req.now_ms).toISOString()}`,
    `Expires At: ${new Date(expires_at_ms).toISOString()}`,
  ].join("\n");
  return { purpose: req.purpose, principal: req.principal, chain_id: req.chain_id, address, nonce: req.nonce, issued_at_ms: req.now_ms, expires_at_ms, message };
}

/**
 * Verify `signature` (65-byte EIP-191 personal_sign) over the STORED challenge's text: it must
 * recover to the challenge's address, and `now_ms` must be before its expiry. A signature over
 * any other text recovers to another address and is refused as wrong_signer.
 */
export async function verifyOwnershipProof(challenge: OwnershipChallenge, signature: string, now_ms: number): Promise<OwnershipVerification> {
  if (now_ms >= challenge.expires_at_ms) {
    return { ok: false, kind: "expired", reason: `the challenge expired at ${new Date(challenge.expires_at_ms).toISOString()}; ask for a new one` };
  }
  if (!isHex(signature) || signature.length !== 132) {
    return { ok: false, kind: "malformed_signature", reason: "signature: expected 65 bytes as 0x + 130 hex digits (EIP-191 personal_sign)" };
  }
  let signer: Address;
  try {
    signer = await recoverMessageAddress({ message: challenge.message, signature });
  } catch {
    return { ok: false, kind: "malformed_signature", reason: "signature: not a valid secp256k1 signature" };
  }
  if (!isAddressEqual(signer, challenge.address)) {
    return { ok: false, kind: "wrong_signer", reason: `the signature over the challenge was made by ${signer}, not by ${challenge.address}` };
  }
  return { ok: true, address: challenge.address };
}
