/**
 * Proof of control of a Base address (payout destinations, deposit sources): a daemon-issued
 * challenge signed with EIP-191 personal_sign, verified with viem. Real secp256k1 keys.
 */
import { describe, expect, test } from "vitest";
import { privateKeyToAccount } from "viem/accounts";
import { buildOwnershipChallenge, newChallengeNonce, verifyOwnershipProof } from "../../src/rails/base/ownership.js";

const owner = privateKeyToAccount(`0x${"a1".repeat(32)}`);
const other = privateKeyToAccount(`0x${"b2".repeat(32)}`);
const NOW = Date.UTC(2026, 10, 30, 2, 0, 0);

function challengeFor(address: string, nonce = newChallengeNonce()) {
  return buildOwnershipChallenge({ purpose: "payout_destination", principal: "author:alice", chain_id: 8453, address, nonce, now_ms: NOW, ttl_ms: 600_000 });
}

describe("ownership proof (EIP-191 personal_sign over a daemon-issued challenge)", () => {
  test("the owner's signature over the issued challenge proves the address (stored EIP-55)", async () => {
    const c = challengeFor(owner.address.toLowerCase());
    expect(c.address).toBe(owner.address); // checksummed
    expect(c.message).toContain(`Address: ${owner.address}`);
    expect(c.message).toContain("Principal: author:alice");
    expect(c.message).toContain("Chain ID: 8453");
    const signature = await owner.signMessage({ message: c.message });
    expect(await verifyOwnershipProof(c, signature, NOW + 1_000)).toEqual({ ok: true, address: owner.address });
  });

  test("a signature by another key is refused as wrong_signer, naming the actual signer", async () => {
    const c = challengeFor(owner.address);
    const signature = await other.signMessage({ message: c.message });
    const r = await verifyOwnershipProof(c, signature, NOW + 1_000);
    expect(r).toMatchObject({ ok: false, kind: "wrong_signer" });
    expect(r.ok ? "" : r.reason).toContain(other.address);
  });

  test("the owner's signature over another message (an older challenge, or edited text) is refused", async () => {
    const issued = challengeFor(owner.address);
    const older = challengeFor(owner.address); // same address, other nonce
    const overOlder = await owner.signMessage({ message: older.message });
    expect(await verifyOwnershipProof(issued, overOlder, NOW + 1_000)).toMatchObject({ ok: false, kind: "wrong_signer" });
    const edited = issued.message.replace("author:alice", "author:mallory");
    const overEdited = await owner.signMessage({ message: edited });
    expect(await verifyOwnershipProof(issued, overEdited, NOW + 1_000)).toMatchObject({ ok: false, kind: "wrong_signer" });
  });

  test("an expired challenge and a malformed signature are refused with their reason", async () => {
    const c = challengeFor(owner.address);
    const signature = await owner.signMessage({ message: c.message });
    expect(await verifyOwnershipProof(c, signature, c.expires_at_ms)).toMatchObject({ ok: false, kind: "expired" });
    expect(await verifyOwnershipProof(c, "0x1234", NOW)).toMatchObject({ ok: false, kind: "malformed_signature" });
    expect(await verifyOwnershipProof(c, `0x${"00".repeat(65)}`, NOW)).toMatchObject({ ok: false, kind: "malformed_signature" });
  });

  test("bad challenge input names the field", () => {
    const at = owner.address.slice(2).search(/[a-fA-F]/) + 2; // flip the case of one hex letter: checksum broken
    const ch = owner.address[at] as string;
    const bad = owner.address.slice(0, at) + (ch === ch.toUpperCase() ? ch.toLowerCase() : ch.toUpperCase()) + owner.address.slice(at + 1);
    expect(() => challengeFor(bad)).toThrow(/^address: /);
    expect(() => buildOwnershipChallenge({ purpose: "deposit_source", principal: "", chain_id: 1, address: owner.address, nonce: newChallengeNonce(), now_ms: NOW, ttl_ms: 1 })).toThrow(/^principal: /);
    expect(() => buildOwnershipChallenge({ purpose: "deposit_source", principal: "agent:bob", chain_id: 1, address: owner.address, nonce: "0x12", now_ms: NOW, ttl_ms: 1 })).toThrow(/^nonce: /);
    expect(() => buildOwnershipChallenge({ purpose: "deposit_source", principal: "agent:bob", chain_id: 1, address: owner.address, nonce: newChallengeNonce(), now_ms: NOW, ttl_ms: 0 })).toThrow(/^ttl_ms: /);
  });
});
