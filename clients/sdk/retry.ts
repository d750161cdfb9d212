/**
 * Retry policy: exponential backoff with full jitter, bounded by attempts and by the call's total
 * deadline. Only transient transport failures are retried, and a call is retried only when it is
 * idempotent — every mutating SDK call carries an idempotency key that is generated once per
 * logical operation and sent unchanged on every attempt, so the daemon applies it at most once.
 */
import { Code, ConnectError } from "@connectrpc/connect";

export interface RetryPolicy {
  /** Total attempts including the first (1 = never retry). */
  max_attempts: number;
  /** Backoff cap before the first retry. */
  initial_backoff_ms: number;
  /** Upper bound for any single backoff. */
  max_backoff_ms: number;
  /** Growth factor per retry. */
  multiplier: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  max_attempts: 5,
  initial_backoff_ms: 100,
  max_backoff_ms: 2_000,
  multiplier: 2,
});

/**
 * Delay before retry number `retry` (1 = the first retry): "full jitter", i.e. uniform in
 * [0, min(max, initial * multiplier^(retry-1))]. `random` returns [0, 1).
 */
export function backoffDelay_ms(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.max_backoff_ms, policy.initial_backoff_ms * policy.multiplier ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

const TRANSIENT_NODE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ERR_HTTP2_STREAM_ERROR",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_INVALID_SESSION",
  "ERR_HTTP2_STREAM_CANCEL",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
]);

/** True if any error in the `cause` chain is a Node socket/HTTP2 failure (a dropped connection). */
export function isConnectionFailure(err: unknown): boolean {
  const seen = new Set<unknown>();
  let e: unknown = err;
  while (e instanceof Error && !seen.has(e)) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && TRANSIENT_NODE_CODES.has(code)) return true;
    if (/socket hang up|other side closed|session closed|stream closed|premature close|ECONNRESET|GOAWAY/i.test(e.message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Is this failure worth retrying?
 * - UNAVAILABLE: the request did not reach a handler, or the connection dropped; retry if idempotent.
 * - DEADLINE_EXCEEDED / ABORTED / a dropped connection (whatever code it surfaced as): the request
 *   may have been applied; retry only if idempotent (the key makes the retry return the first answer).
 * Never: user errors (invalid argument, not found, permission, insufficient funds, ...).
 */
export function isRetryable(err: unknown, idempotent: boolean): boolean {
  if (!idempotent) return false;
  const ce = err instanceof ConnectError ? err : undefined;
  if (ce) {
    switch (ce.code) {
      case Code.Unavailable:
      case Code.DeadlineExceeded:
      case Code.Aborted:
        return true;
      case Code.Internal:
      case Code.Unknown:
      case Code.Canceled:
        return isConnectionFailure(ce);
      default:
        return false;
    }
  }
  return isConnectionFailure(err);
}

export interface RetryContext {
  /** 1-based attempt number. */
  attempt: number;
  /** Milliseconds left of the call's total deadline. */
  remaining_ms: number;
}

export interface RetryOptions {
  policy: RetryPolicy;
  idempotent: boolean;
  /** Total budget for all attempts and backoffs. */
  deadline_ms: number;
  /** Injectable for tests. */
  now_ms?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Observe each retry (logging, metrics). */
  onRetry?: (info: { attempt: number; delay_ms: number; error: unknown }) => void;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Run `fn` until it succeeds, fails with a non-retryable error, runs out of attempts or runs out
 * of deadline. The last error is rethrown unchanged.
 */
export async function withRetry<T>(fn: (ctx: RetryContext) => Promise<T>, opts: RetryOptions): Promise<T> {
  const now = opts.now_ms ?? Date.now;
  const sleep = opts.sleep ?? realSleep;
  const start = now();
  for (let attempt = 1; ; attempt++) {
    const remaining_ms = opts.deadline_ms - (now() - start);
    try {
      return await fn({ attempt, remaining_ms: Math.max(1, remaining_ms) });
    } catch (err) {
      if (attempt >= opts.policy.max_attempts || !isRetryable(err, opts.idempotent)) throw err;
      const delay_ms = backoffDelay_ms(opts.policy, attempt, opts.random);
      const left = opts.deadline_ms - (now() - start);
      // Leave the next attempt a useful slice of the budget, or give up now.
      if (left - delay_ms < 50) throw err;
      opts.onRetry?.({ attempt, delay_ms, error: err });
      await sleep(delay_ms);
    }
  }
}
