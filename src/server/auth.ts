/**
 * Bearer-JWT authentication (jose, asymmetric keys only: EdDSA / ES256).
 *
 * Verification keys come from MASQUES_JWT_PUBLIC_KEYS (a JWKS JSON document or SPKI PEM blocks).
 * For local use only: when no keys are configured and the daemon listens on loopback addresses,
 * a dev Ed25519 key pair is created in $MASQUES_DATA_DIR/keys and `masques-ledger token` mints
 * tokens with it. Tokens and keys are never logged.
 *
 * Claims: `sub` = principal id, `kind` = agent|author|rail|admin, `scopes` = array of scopes
 * (or OAuth-style space-separated `scope`), plus `iss`, `aud`, `exp` (required).
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  SignJWT,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  errors as joseErrors,
  type JSONWebKeySet,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose";
import { z } from "zod";
import { Code, ConnectError } from "@connectrpc/connect";
import { RAIL_NAMES } from "../domain/codes.js";
import type { Principal, PrincipalKind, Scope } from "./principal.js";

export const SCOPES: readonly Scope[] = [
  "ledger:read",
  "ledger:write",
  "rail:settle",
  "admin",
  // governance (issue 16): never in a default token; grant them with --scopes
  "admin:rules:write",
  "admin:rules:approve",
  "admin:rules:emergency",
];
export const PRINCIPAL_KINDS: readonly PrincipalKind[] = ["agent", "author", "rail", "admin", "collector"];
const ALGS = ["EdDSA", "ES256"];
const VERIFIED_CACHE_MAX = 10_000;

/** Scopes a token gets when `token` is run without --scopes. */
export const DEFAULT_SCOPES: Record<PrincipalKind, Scope[]> = {
  agent: ["ledger:read", "ledger:write"],
  author: ["ledger:read", "ledger:write"],
  rail: ["ledger:read", "rail:settle"],
  admin: ["ledger:read", "ledger:write", "admin"],
  collector: [],
};

const scopeSchema = z.enum(["ledger:read", "ledger:write", "rail:settle", "admin", "admin:rules:write", "admin:rules:approve", "admin:rules:emergency"]);
const claimsSchema = z
  .object({
    sub: z.string().min(1).max(256),
    kind: z.enum(["agent", "author", "rail", "admin", "collector"]),
    scopes: z.array(scopeSchema).optional(),
    scope: z.string().optional(),
  })
  .transform((c, ctx): Principal => {
    let scopes: Scope[];
    if (c.scopes) scopes = c.scopes;
    else if (c.scope !== undefined) {
      const parsed = z.array(scopeSchema).safeParse(c.scope.split(" ").filter(Boolean));
      if (!parsed.success) {
        ctx.addIssue({ code: "custom", message: "unknown scope in `scope` claim" });
        return z.NEVER;
      }
      scopes = parsed.data;
    } else {
      ctx.addIssue({ code: "custom", message: "missing `scopes` claim" });
      return z.NEVER;
    }
    if (c.kind === "rail") {
      const rail = RAIL_NAMES.find((r) => r === c.sub);
      if (!rail) {
        ctx.addIssue({ code: "custom", message: `rail principal must be one of ${RAIL_NAMES.join(", ")}` });
        return z.NEVER;
      }
      return { kind: "rail", id: rail, scopes };
    }
    return { kind: c.kind, id: c.sub, scopes };
  });

export interface Verifier {
  /** Resolve the principal of a request from its `authorization` header value. */
  authenticate(authorization: string | null): Promise<Principal>;
  /** Where keys came from (for the start-up log line; never the keys themselves). */
  readonly source: string;
}

export interface VerifierOptions {
  issuer: string;
  audience: string;
  /** Clock tolerance for exp/nbf, seconds. */
  clockToleranceS?: number;
}

function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}

/** Parse MASQUES_JWT_PUBLIC_KEYS: JWKS JSON, or one or more PEM public keys. */
export function parsePublicKeys(text: string): JWTVerifyGetKey {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    let jwks: JSONWebKeySet;
    try {
      jwks = JSON.parse(trimmed) as JSONWebKeySet;
    } catch {
      throw new Error("MASQUES_JWT_PUBLIC_KEYS: not valid JSON (expected a JWKS {\"keys\":[...]})");
    }
    if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) {
      throw new Error("MASQUES_JWT_PUBLIC_KEYS: JWKS has no keys");
    }
    for (const k of jwks.keys) {
      if (k.kty !== "OKP" && k.kty !== "EC") {
        throw new Error(`MASQUES_JWT_PUBLIC_KEYS: key type ${String(k.kty)} not allowed (EdDSA or ES256 only)`);
      }
      if ("d" in k) throw new Error("MASQUES_JWT_PUBLIC_KEYS: contains a PRIVATE key; give public keys only");
    }
    return createLocalJWKSet(jwks);
  }
  const blocks = trimmed.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g);
  if (!blocks) {
    throw new Error("MASQUES_JWT_PUBLIC_KEYS: expected a JWKS JSON document or PEM \"BEGIN PUBLIC KEY\" blocks");
  }
  const keys: { alg: string; key: KeyObject }[] = blocks.map((pem) => {
    const key = createPublicKey(pem.replace(/\\n/g, "\n"));
    const type = key.asymmetricKeyType;
    if (type === "ed25519") return { alg: "EdDSA", key };
    if (type === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return { alg: "ES256", key };
    throw new Error(`MASQUES_JWT_PUBLIC_KEYS: unsupported key type ${String(type)} (Ed25519 or P-256 only)`);
  });
  // PEM keys carry no kid: pick by algorithm; with several keys of one algorithm the verifier
  // tries each (see createVerifier).
  const getKey: JWTVerifyGetKey & { candidates?: typeof keys } = async (header) => {
    const match = keys.find((k) => k.alg === header.alg);
    if (!match) throw new joseErrors.JWKSNoMatchingKey();
    return match.key;
  };
  getKey.candidates = keys;
  return getKey;
}

export function createVerifier(getKey: JWTVerifyGetKey, source: string, opts: VerifierOptions): Verifier {
  const candidates = (getKey as { candidates?: { alg: string; key: KeyObject }[] }).candidates;
  const verifyOpts = {
    issuer: opts.issuer,
    audience: opts.audience,
    algorithms: ALGS,
    clockTolerance: opts.clockToleranceS ?? 5,
    requiredClaims: ["exp", "sub"],
  };
  async function verify(jwt: string): Promise<JWTPayload> {
    if (candidates && candidates.length > 1) {
      let last: unknown;
      for (const c of candidates) {
        try {
          return (await jwtVerify(jwt, c.key, { ...verifyOpts, algorithms: [c.alg] })).payload;
        } catch (err) {
          last = err;
          if (!(err instanceof joseErrors.JWSSignatureVerificationFailed) && !(err instanceof joseErrors.JOSEAlgNotAllowed)) throw err;
        }
      }
      throw last;
    }
    return (await jwtVerify(jwt, getKey, verifyOpts)).payload;
  }
  // Verified tokens are cached by their exact text until they expire: a token's signature and
  // claims cannot change, and signature verification dominated the per-RPC cost (measured in
  // bench/transport.ts). Bounded; the oldest entry is evicted first.
  const cache = new Map<string, { principal: Principal; expMs: number }>();
  const toleranceMs = (opts.clockToleranceS ?? 5) * 1000;
  return {
    source,
    async authenticate(authorization) {
      if (!authorization) {
        throw unauthenticated("missing bearer token: send `authorization: Bearer <JWT>`");
      }
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!m) throw unauthenticated("malformed authorization header: expected `Bearer <JWT>`");
      const jwt = m[1] as string;
      const hit = cache.get(jwt);
      if (hit) {
        if (Date.now() < hit.expMs + toleranceMs) return hit.principal;
        cache.delete(jwt);
      }
      let payload: JWTPayload;
      try {
        payload = await verify(jwt);
      } catch (err) {
        throw unauthenticated(describeJwtError(err));
      }
      const parsed = claimsSchema.safeParse(payload);
      if (!parsed.success) {
        const i = parsed.error.issues[0];
        throw unauthenticated(`invalid token claims: ${i ? `${i.path.join(".") || "claims"}: ${i.message}` : "rejected"}`);
      }
      const nbfMs = (payload.nbf ?? 0) * 1000;
      if (typeof payload.exp === "number" && nbfMs <= Date.now()) {
        if (cache.size >= VERIFIED_CACHE_MAX) {
          const oldest = cache.keys().next();
          if (!oldest.done) cache.delete(oldest.value);
        }
        cache.set(jwt, { principal: parsed.data, expMs: payload.exp * 1000 });
      }
      return parsed.data;
    },
  };
}

/** How to fix a token signed with a key this daemon does not trust (issue 12). */
const WRONG_KEY_HINT =
  ": this daemon does not trust the key that signed it. For a local daemon, mint one with `masques-ledger token` pointed at the daemon's own data directory (run it where the daemon runs, or pass --data-dir / MASQUES_DATA_DIR); with MASQUES_JWT_PUBLIC_KEYS, get a token from the issuer holding the matching private key";

function describeJwtError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "token expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return `token claim \`${err.claim}\` rejected: ${err.reason === "check_failed" ? "unexpected value" : err.reason}`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return `token signature verification failed${WRONG_KEY_HINT}`;
  if (err instanceof joseErrors.JWKSNoMatchingKey) return `token signed by an unknown key${WRONG_KEY_HINT}`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "token algorithm not allowed (EdDSA or ES256 only)";
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return "malformed token";
  return "invalid token";
}

// ---- dev key pair (loopback only) ----------------------------------------------------------

export interface DevKeys {
  privateJwk: JWK;
  publicJwks: JSONWebKeySet;
  dir: string;
}

export function devKeyDir(dataDir: string): string {
  return path.join(dataDir, "keys");
}

/**
 * Read the dev key pair from `<dataDir>/keys` without creating anything; null when there is none
 * (`masques-ledger token` must never mint with a key pair the daemon does not use).
 */
export async function readDevKeys(dataDir: string): Promise<DevKeys | null> {
  const dir = devKeyDir(dataDir);
  try {
    const privateJwk = JSON.parse(await readFile(path.join(dir, "dev-private.jwk.json"), "utf8")) as JWK;
    const publicJwks = JSON.parse(await readFile(path.join(dir, "dev-public.jwks.json"), "utf8")) as JSONWebKeySet;
    return { privateJwk, publicJwks, dir };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/** The dev key directory (or its private key) can be read by other local users. */
export class InsecureKeyDirError extends Error {
  constructor(readonly path: string, readonly mode: number) {
    super(
      `${path} is readable by other users (mode ${(mode & 0o777).toString(8).padStart(4, "0")}); its private key mints tokens for any principal. ` +
        `Fix: chmod 700 ${path} && chmod 600 ${path}/*.json (or move it away to get a new key pair)`,
    );
    this.name = "InsecureKeyDirError";
  }
}

/** Refuse a key directory, or a private key in it, that group or others can access. */
async function assertPrivateDir(dir: string): Promise<void> {
  const st = await stat(dir);
  if ((st.mode & 0o077) !== 0) throw new InsecureKeyDirError(dir, st.mode);
  try {
    const key = await stat(path.join(dir, "dev-private.jwk.json"));
    if ((key.mode & 0o077) !== 0) throw new InsecureKeyDirError(path.join(dir, "dev-private.jwk.json"), key.mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

/**
 * Load the dev key pair from `<dataDir>/keys`, creating it (mode 0700 / 0600) on first use.
 * Throws InsecureKeyDirError when the directory or the private key is open to other users.
 */
export async function loadOrCreateDevKeys(dataDir: string): Promise<DevKeys> {
  const dir = devKeyDir(dataDir);
  const privPath = path.join(dir, "dev-private.jwk.json");
  const pubPath = path.join(dir, "dev-public.jwks.json");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await assertPrivateDir(dir);
  try {
    const privateJwk = JSON.parse(await readFile(privPath, "utf8")) as JWK;
    const publicJwks = JSON.parse(await readFile(pubPath, "utf8")) as JSONWebKeySet;
    return { privateJwk, publicJwks, dir };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const kid = `dev-${Date.now().toString(36)}`;
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid, alg: "EdDSA", use: "sig" };
  const publicJwks: JSONWebKeySet = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "EdDSA", use: "sig" }] };
  try {
    // Public key first: a reader that finds the private key also finds the public one.
    await writeFile(pubPath, JSON.stringify(publicJwks, null, 2) + "\n", { flag: "wx", mode: 0o644 });
    await writeFile(privPath, JSON.stringify(privateJwk, null, 2) + "\n", { flag: "wx", mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    // Somebody else (serve vs token) created them concurrently: use theirs.
    await new Promise((r) => setTimeout(r, 50));
    return {
      privateJwk: JSON.parse(await readFile(privPath, "utf8")) as JWK,
      publicJwks: JSON.parse(await readFile(pubPath, "utf8")) as JSONWebKeySet,
      dir,
    };
  }
  return { privateJwk, publicJwks, dir };
}

export interface MintOptions {
  kind: PrincipalKind;
  id: string;
  scopes: readonly Scope[];
  ttlS: number;
  issuer: string;
  audience: string;
}

/** Sign a token with a private JWK (EdDSA or ES256). */
export async function mintToken(privateJwk: JWK, o: MintOptions): Promise<string> {
  const alg = privateJwk.alg ?? (privateJwk.kty === "OKP" ? "EdDSA" : "ES256");
  const key = await importJWK(privateJwk, alg);
  return new SignJWT({ kind: o.kind, scopes: [...o.scopes] })
    .setProtectedHeader({ alg, typ: "JWT", ...(privateJwk.kid ? { kid: privateJwk.kid } : {}) })
    .setSubject(o.id)
    .setIssuer(o.issuer)
    .setAudience(o.audience)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + o.ttlS)
    .sign(key);
}
