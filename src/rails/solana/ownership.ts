/**
 * Proof that whoever registers a Solana address controls it (issue 14: payout destinations of
 * authors, deposit sources of agents), the Solana twin of src/rails/base/ownership.ts. The
 * daemon issues a challenge naming the purpose, the principal, the cluster and the address, with
 * a random nonce and an expiry; the owner signs the challenge text's UTF-8 bytes with the
 * address's ed25519 key (a wallet's `signMessage`, `solana sign-offchain-message` is NOT this
 * format); the daemon verifies the 64-byte signature with WebCrypto through @solana/kit against
 * the public key that IS the address. Pure functions: the caller supplies the nonce
 * (newChallengeNonce) and the clock, stores the issued challenge and consumes it once.
 */
import { randomBytes } from "node:crypto";
import { getBase58Encoder, getPublicKeyFromAddress, getUtf8Encoder, isAddress, verifySignature, type Address, type SignatureBytes } from "@solana/kit";

export type OwnershipPurpose = "payout_destination" | "deposit_source";

/** A challenge as issued (store it; verify against the stored copy, never the client's). */
export interface SolanaOwnershipChallenge {
  readonly purpose: OwnershipPurpose;
  /** Principal that will own the binding, e.g. "author:alice" or "agent:bob". */
  readonly principal: string;
  /** Cluster name the binding is for (e.g. "mainnet-beta", "devnet"). */
  readonly cluster: string;
  /** Base58 ed25519 public key. */
  readonly address: Address;
  /** 32 random bytes, hex (newChallengeNonce). */
  readonly nonce: string;
  readonly issued_at_ms: number;
  readonly expires_at_ms: number;
  /** The exact text whose UTF-8 bytes are signed. */
  readonly message: string;
}

export type SolanaOwnershipVerification =
  | { ok: true; address: Address }
  | { ok: false; kind: "expired" | "malformed_signature" | "wrong_signer"; reason: string };

/** 32 random bytes as hex, for the challenge nonce. */
export function newChallengeNonce(): string {
  return randomBytes(32).toString("hex");
}

/** Upper bound on a challenge's lifetime. */
export const MAX_CHALLENGE_TTL_MS = 24 * 3600 * 1000;

/**
 * Build the challenge text. Throws RangeError naming the field for a bad address, principal,
 * cluster, nonce or lifetime (0 < ttl <= MAX_CHALLENGE_TTL_MS).
 */
export function buildSolanaOwnershipChallenge(req: {
  purpose: OwnershipPurpose;
  principal: string;
  cluster: string;
  address: string;
  nonce: string;
  now_ms: number;
  ttl_ms: number;
}): SolanaOwnershipChallenge {
  if (!isAddress(req.address)) throw new RangeError(`address: expected a base58 32-byte Solana address, got "${req.address}"`);
  if (!/^[A-Za-z0-9._:@-]{1,128}$/.test(req.principal)) throw new RangeError(`principal: expected 1-128 chars of [A-Za-z0-9._:@-], got "${req.principal}"`);
  if (!/^[a-z0-9-]{1,32}$/.test(req.cluster)) throw new RangeError(`cluster: expected 1-32 chars of [a-z0-9-], got "${req.cluster}"`);
  if (!/^[0-9a-f]{64}$/.test(req.nonce)) throw new RangeError("nonce: expected 32 bytes as 64 lowercase hex digits");
  if (!(req.ttl_ms > 0 && req.ttl_ms <= MAX_CHALLENGE_TTL_MS)) throw new RangeError(`ttl_ms: expected 1..${MAX_CHALLENGE_TTL_MS}, got ${req.ttl_ms}`);
  const expires_at_ms = req.now_ms + req.ttl_ms;
  const what = req.purpose === "payout_destination" ? "receive payouts of" : "send deposits for";
  const message = [
    "Masques Ledger: prove you control this Solana address.",
    `I control ${req.address} and allow it to ${what} ${req.principal}.`,
    `Purpose: ${req.purpose}`,
    `Principal: ${req.principal}`,
    `Cluster: ${req.cluster}`,
    `Address: ${req.address}`,
    `Nonce: ${req.nonce}`,
    `Issued At: ${new Date(req.now_ms).toISOString()}`,
    `Expires At: ${new Date(expires_at_ms).toISOString()}`,
  ].join("\n");
  return { purpose: req.purpose, principal: req.principal, cluster: req.cluster, address: req.address, nonce: req.nonce, issued_at_ms: req.now_ms, expires_at_ms, message };
}

/**
 * Verify `signature_base58` (64-byte ed25519 signature, base58) over the STORED challenge's
 * UTF-8 text with the challenge's address as public key, before its expiry. A signature by any
 * other key or over any other text fails verification and is refused as wrong_signer.
 */
export async function verifySolanaOwnershipProof(
  challenge: SolanaOwnershipChallenge,
  signature_base58: string,
  now_ms: number,
): Promise<SolanaOwnershipVerification> {
  if (now_ms >= challenge.expires_at_ms) {
    return { ok: false, kind: "expired", reason: `the challenge expired at ${new Date(challenge.expires_at_ms).toISOString()}; ask for a new one` };
  }
  let sig: Uint8Array;
  try {
    sig = Uint8Array.from(getBase58Encoder().encode(signature_base58));
  } catch {
    return { ok: false, kind: "malformed_signature", reason: "signature: expected base58 text" };
  }
  if (sig.length !== 64) {
    return { ok: false, kind: "malformed_signature", reason: `signature: expected 64 bytes (ed25519), got ${sig.length}` };
  }
  const key = await getPublicKeyFromAddress(challenge.address);
  const ok = await verifySignature(key, sig as SignatureBytes, getUtf8Encoder().encode(challenge.message));
  if (!ok) {
    return { ok: false, kind: "wrong_signer", reason: `the signature does not verify with ${challenge.address}'s key over the issued challenge` };
  }
  return { ok: true, address: challenge.address };
}
