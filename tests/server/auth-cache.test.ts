/**
 * The verified-token cache (issue 20, ADR 0125): a token is verified once and its principal
 * served from the cache until it expires; an expired token is refused even when cached; rotating
 * the keys forgets every cached token. Injected clock, real Ed25519 keys and real jose signing.
 */
import { describe, expect, test } from "vitest";
import { exportJWK, generateKeyPair } from "jose";
import { Code, ConnectError } from "@connectrpc/connect";
import { createVerifier, mintToken, parsePublicKeys } from "../../src/server/auth.js";

const ISS = "masques-ledger";
const AUD = "masques-ledger";

async function keyPair(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: "EdDSA" };
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: "EdDSA", use: "sig" }] });
  return { privateJwk, getKey: parsePublicKeys(jwks) };
}

async function refused(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the token to be refused");
}

describe("verified-token cache", () => {
  test("an expired token is refused even though its principal is cached", async () => {
    const k = await keyPair("a");
    let now = Date.now();
    const v = createVerifier(k.getKey, "test", { issuer: ISS, audience: AUD, clockToleranceS: 5, nowMs: () => now });
    const token = await mintToken(k.privateJwk, { kind: "agent", id: "alice", scopes: ["ledger:read"], ttlS: 60, issuer: ISS, audience: AUD });
    expect(await v.authenticate(`Bearer ${token}`)).toEqual({ kind: "agent", id: "alice", scopes: ["ledger:read"] });
    expect(v.cachedTokens).toBe(1);
    // Still inside exp + tolerance: served from the cache.
    now += 64_000;
    expect((await v.authenticate(`Bearer ${token}`)).id).toBe("alice");
    // Past exp + tolerance: refused, and the entry is gone.
    now += 2_000;
    const err = await refused(v.authenticate(`Bearer ${token}`));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toBe("token expired");
    expect(v.cachedTokens).toBe(0);
    // And it stays refused (now by jose, not the cache).
    expect((await refused(v.authenticate(`Bearer ${token}`))).rawMessage).toBe("token expired");
  });

  test("rotating the keys invalidates cached tokens signed by the old key", async () => {
    const oldKey = await keyPair("old");
    const newKey = await keyPair("new");
    const v = createVerifier(oldKey.getKey, "old keys", { issuer: ISS, audience: AUD });
    const oldToken = await mintToken(oldKey.privateJwk, { kind: "agent", id: "bob", scopes: ["ledger:write"], ttlS: 3600, issuer: ISS, audience: AUD });
    expect((await v.authenticate(`Bearer ${oldToken}`)).id).toBe("bob");
    expect(v.cachedTokens).toBe(1);
    v.rotateKeys(newKey.getKey, "new keys");
    expect(v.source).toBe("new keys");
    expect(v.cachedTokens).toBe(0);
    const err = await refused(v.authenticate(`Bearer ${oldToken}`));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(err.rawMessage).toMatch(/unknown key|signature verification failed/);
    const newToken = await mintToken(newKey.privateJwk, { kind: "agent", id: "bob", scopes: ["ledger:write"], ttlS: 3600, issuer: ISS, audience: AUD });
    expect((await v.authenticate(`Bearer ${newToken}`)).id).toBe("bob");
  });

  test("a token differing in one character is not served from the cache", async () => {
    const k = await keyPair("c");
    const v = createVerifier(k.getKey, "test", { issuer: ISS, audience: AUD });
    const token = await mintToken(k.privateJwk, { kind: "agent", id: "carol", scopes: ["ledger:read"], ttlS: 3600, issuer: ISS, audience: AUD });
    await v.authenticate(`Bearer ${token}`);
    // A character inside the signature (the last one also carries unused padding bits).
    const i = token.length - 10;
    const forged = token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
    expect((await refused(v.authenticate(`Bearer ${forged}`))).code).toBe(Code.Unauthenticated);
  });
});
