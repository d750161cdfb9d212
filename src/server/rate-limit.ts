/**
 * Per-principal rate limits (issue 17, docs/adr/0127-rate-limits.md): one token bucket (the
 * `limiter` package) per principal and method class, checked by the pipeline right after
 * authentication. A call over the limit is refused with RESOURCE_EXHAUSTED carrying a
 * `retry-after` (whole seconds, RFC 9110) in its metadata: a gRPC trailer, a Connect error
 * header, and on the JSON port an HTTP 429 with `Retry-After`.
 *
 * The health check and reflection never pass through the pipeline, so they stay unlimited.
 * Buckets live in this daemon's memory (a limit per daemon, not per cluster; ADR 0127); the map
 * is bounded and forgets the least recently used principal first.
 */
import { Code } from "@connectrpc/connect";
import { TokenBucket } from "limiter";
import type { Principal } from "./principal.js";
import { transportError } from "./transport-errors.js";
import type { ConnectError } from "@connectrpc/connect";
import type { Config } from "../config.js";

/** reads: Get*, List*, Verify*; writes: every other non-admin call; admin: AdminService. */
export type MethodClass = "read" | "write" | "admin";

/** One class's bucket: `perS` tokens added per second, at most `burst` held; perS 0 = unlimited. */
export interface BucketRule {
  perS: number;
  burst: number;
}

export interface RateLimitRules {
  read: BucketRule;
  write: BucketRule;
  admin: BucketRule;
  /** Most buckets held at once (least recently used evicted first). */
  maxBuckets?: number;
}

const READ_RE = /^(Get|List|Verify)[A-Z]/;

/** The class of an RPC by its service type name and method name. */
export function methodClass(serviceTypeName: string, methodName: string): MethodClass {
  if (serviceTypeName.endsWith(".AdminService")) return "admin";
  return READ_RE.test(methodName) ? "read" : "write";
}

/** Outcome of one check: allowed, or refused with the wait until one token is back. */
export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * In-memory token buckets keyed by principal and class.
 * `take` is synchronous and O(1): one Map lookup and the bucket's own arithmetic.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly maxBuckets: number;

  constructor(private readonly rules: RateLimitRules) {
    for (const cls of ["read", "write", "admin"] as const) {
      const r = rules[cls];
      if (!(r.perS >= 0) || !Number.isFinite(r.perS)) throw new RangeError(`rate limit ${cls}: perS must be a finite number >= 0`);
      if (r.perS > 0 && !(r.burst >= 1)) throw new RangeError(`rate limit ${cls}: burst must be >= 1`);
    }
    this.maxBuckets = rules.maxBuckets ?? 100_000;
  }

  /** Take one token for `principal` in class `cls`. */
  take(principal: Principal, cls: MethodClass): RateDecision {
    const rule = this.rules[cls];
    if (rule.perS === 0) return { ok: true };
    const key = `${cls}\u0000${principal.kind}\u0000${principal.id}`;
    let bucket = this.buckets.get(key);
    if (bucket) {
      // Refresh recency (Map keeps insertion order: the first key is the least recently used).
      this.buckets.delete(key);
    } else {
      bucket = new TokenBucket({ bucketSize: rule.burst, tokensPerInterval: rule.perS, interval: 1000 });
      bucket.content = rule.burst; // a new principal starts with a full bucket
      if (this.buckets.size >= this.maxBuckets) {
        const oldest = this.buckets.keys().next();
        if (!oldest.done) this.buckets.delete(oldest.value);
      }
    }
    this.buckets.set(key, bucket);
    if (bucket.tryRemoveTokens(1)) return { ok: true };
    return { ok: false, retryAfterMs: Math.max(1, bucket.getWaitTime(1)) };
  }
}

/** The RESOURCE_EXHAUSTED sent for a refused call, with `retry-after` in its metadata. */
export function rateLimitedError(cls: MethodClass, retryAfterMs: number): ConnectError {
  const retryAfterS = Math.max(1, Math.ceil(retryAfterMs / 1000));
  const err = transportError(
    Code.ResourceExhausted,
    `rate limit exceeded for ${cls} calls of this principal; retry after ${retryAfterS} s`,
    [],
    "RATE_LIMITED",
  );
  err.metadata.set("retry-after", String(retryAfterS));
  return err;
}

/** The daemon's limiter from RATE_LIMIT_* (src/config.ts); undefined when RATE_LIMIT_ENABLED=false. */
export function rateLimiterFromConfig(config: Config): RateLimiter | undefined {
  if (!config.RATE_LIMIT_ENABLED) return undefined;
  return new RateLimiter({
    read: { perS: config.RATE_LIMIT_READ_PER_S, burst: config.RATE_LIMIT_READ_BURST },
    write: { perS: config.RATE_LIMIT_WRITE_PER_S, burst: config.RATE_LIMIT_WRITE_BURST },
    admin: { perS: config.RATE_LIMIT_ADMIN_PER_S, burst: config.RATE_LIMIT_ADMIN_BURST },
  });
}
