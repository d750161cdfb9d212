/**
 * Proof of control of a Solana address (payout destinations, deposit sources): a daemon-issued
 * challenge whose UTF-8 bytes are signed with the address's ed25519 key, verified with WebCrypto
 * through @solana/kit. Real keys, no mocks.
 */
import { describe, expect, test } from "vitest";
import { generateKeyPair, getAddressFromPublicKey, getBase58Decoder, getUtf8Encoder, signBytes } from "@solana/kit";
import { buildSolanaOwnershipChallenge, newChallengeNonce, verifySolanaOwnershipProof } from "../../src/rails/solana/ownership.js";

const NOW = Date.UTC(2026, 10, 30, 2, 0, 0);
const b58 = getBase58Decoder();

async function wallet() {
  const keys = await generateKeyPair();
  const address = await getAddressFromPublicKey(keys.publicKey);
  const sign = async (text: string) => b58.decode(await signBytes(keys.privateKey, getUtf8Encoder().encode(text)));
  return { address, sign };
}

const challengeFor = (address: string) =>
  buildSolanaOwnershipChallenge({ purpose: "payout_destination", principal: "author:alice", cluster: "mainnet-beta", address, nonce: newChallengeNonce(), now_ms: NOW, ttl_ms: 600_000 });

describe("Solana ownership proof (ed25519 over a daemon-issued challenge)", () => {
  test("the owner's signature over the issued challenge proves the address", async () => {
    const owner = await wallet();
    const c = challengeFor(owner.address);
    expect(c.message).toContain(`Address: ${owner.address}`);
    expect(c.message).toContain("Cluster: mainnet-beta");
    expect(await verifySolanaOwnershipProof(c, await owner.sign(c.message), NOW + 1_000)).toEqual({ ok: true, address: owner.address });
  });

  test("a signature by another key is refused as wrong_signer", async () => {
    const [owner, other] = [await wallet(), await wallet()];
    const c = challengeFor(owner.address);
    expect(await verifySolanaOwnershipProof(c, await other.sign(c.message), NOW)).toMatchObject({ ok: false, kind: "wrong_signer" });
  });

  test("the owner's signature over another message (or another challenge) is refused", async () => {
    const owner = await wallet();
    const c = challengeFor(owner.address);
    const otherChallenge = challengeFor(owner.address); // new nonce
    expect(await verifySolanaOwnershipProof(c, await owner.sign(c.message.replace("author:alice", "author:mallory")), NOW)).toMatchObject({ ok: false, kind: "wrong_signer" });
    expect(await verifySolanaOwnershipProof(c, await owner.sign(otherChallenge.message), NOW)).toMatchObject({ ok: false, kind: "wrong_signer" });
  });

  test("expired challenges and malformed signatures are refused; bad inputs name the field", async () => {
    const owner = await wallet();
    const c = challengeFor(owner.address);
    const sig = await owner.sign(c.message);
    expect(await verifySolanaOwnershipProof(c, sig, NOW + 600_000)).toMatchObject({ ok: false, kind: "expired" });
    expect(await verifySolanaOwnershipProof(c, sig.slice(0, 40), NOW)).toMatchObject({ ok: false, kind: "malformed_signature" });
    expect(await verifySolanaOwnershipProof(c, "0OIl", NOW)).toMatchObject({ ok: false, kind: "malformed_signature" });
    expect(() => challengeFor("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")).toThrow(/^address: expected a base58/);
    expect(() => buildSolanaOwnershipChallenge({ purpose: "deposit_source", principal: "agent:bob", cluster: "devnet", address: owner.address, nonce: "xyz", now_ms: NOW, ttl_ms: 1 })).toThrow(/^nonce:/);
  });
});
