/**
 * The webhook dispatcher (issue 16, ADR 0105): delivers the outbox in the control-plane database,
 * off the request path.
 *
 * Every WEBHOOK_POLL_MS it leases due deliveries (at most the free slots of WEBHOOK_CONCURRENCY)
 * and POSTs each, signed per Standard Webhooks (`standardwebhooks`: webhook-id = the event id,
 * webhook-timestamp, webhook-signature `v1,<base64 HMAC-SHA256>`), with a whole-attempt timeout
 * of WEBHOOK_TIMEOUT_MS. A 2xx answer succeeds; anything else (status, timeout, refused
 * connection, a private address on an author endpoint) fails the attempt: pending again after an
 * exponential backoff, or dead after WEBHOOK_MAX_ATTEMPTS. Redirects are not followed (a 3xx is a
 * failure), so a public endpoint cannot bounce the daemon to a private one.
 *
 * Bounds: in-flight requests <= WEBHOOK_CONCURRENCY; a response body is read up to 4 KiB and
 * dropped; each attempt ends by its timeout. The lease is twice the timeout: a daemon
 * killed mid-attempt leaves the delivery to be attempted again once the lease runs out (at least
 * once, never lost); a graceful stop aborts attempts in flight the same way, uncounted. The request path only ever writes rows; a slow or dead endpoint costs it nothing.
 */
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { Logger } from "pino";
import { Webhook } from "standardwebhooks";
import type { Config } from "../config.js";
import { WEBHOOK_CLAIM_MAX, type AttemptOutcome, type ClaimedDelivery, type WebhookStore } from "../controlplane/webhooks.js";
import { assertPublicAddresses, publicOnlyLookup, urlHost } from "./ssrf.js";

/** Most response-body bytes read (and discarded) per attempt. */
const RESPONSE_BODY_MAX = 4096;
/** The lease is this many timeouts: the attempt ends by one, recording its outcome must fit in the rest. */
const LEASE_TIMEOUTS = 2;

export interface DispatcherOptions {
  store: WebhookStore;
  log: Logger;
  /** ns since the epoch (the daemon's clock). */
  clock: () => bigint;
  config: Pick<
    Config,
    | "WEBHOOK_POLL_MS"
    | "WEBHOOK_CONCURRENCY"
    | "WEBHOOK_TIMEOUT_MS"
    | "WEBHOOK_MAX_ATTEMPTS"
    | "WEBHOOK_BACKOFF_BASE_MS"
    | "WEBHOOK_BACKOFF_MAX_MS"
    | "WEBHOOK_ALLOW_PRIVATE_NETWORK"
  >;
}

export interface Dispatcher {
  /** Run one poll now (tests); resolves when the claimed attempts are recorded. */
  tick(): Promise<number>;
  /** Stop polling and abort attempts in flight (not counted; their leases expire). Idempotent. */
  stop(): Promise<void>;
}

/** Delay before attempt `n + 1` after `n` failed attempts (n >= 1): base * 2^(n-1), capped. */
export function backoffMs(failed_attempts: number, base_ms: number, max_ms: number): number {
  if (!(Number.isInteger(failed_attempts) && failed_attempts >= 1)) throw new Error(`failed_attempts ${failed_attempts} must be >= 1`);
  const d = base_ms * 2 ** Math.min(failed_attempts - 1, 40);
  return Math.min(d, max_ms);
}

/** Signed Standard Webhooks headers for one attempt. */
export function signedHeaders(secret: string, event_id: string, payload: string, at: Date): Record<string, string> {
  const signature = new Webhook(secret).sign(event_id, at, payload);
  return {
    "content-type": "application/json",
    "user-agent": "masques-ledger-webhooks/1",
    "webhook-id": event_id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": signature,
  };
}

/** One HTTP attempt; never throws (every failure is an outcome). */
export async function attemptDelivery(
  d: Pick<ClaimedDelivery, "url" | "secret" | "event_id" | "payload" | "owner_kind" | "allow_private_network">,
  opts: { timeout_ms: number; allow_private_network: boolean; now: () => bigint; signal?: AbortSignal },
): Promise<AttemptOutcome> {
  const attempt_time_ns = opts.now();
  const started = performance.now();
  const done = (http_status: number, error: string): AttemptOutcome => ({
    ok: error === "" && http_status >= 200 && http_status < 300,
    http_status,
    error,
    duration_ms: Math.min(Math.round(performance.now() - started), 2 ** 31 - 1),
    attempt_time_ns,
  });
  let url: URL;
  try {
    url = new URL(d.url);
  } catch {
    return done(0, "invalid URL");
  }
  const guarded = d.owner_kind === "author" && !d.allow_private_network && !opts.allow_private_network;
  if (guarded && net.isIP(urlHost(url)) !== 0) {
    try {
      assertPublicAddresses(urlHost(url), [urlHost(url)]);
    } catch (err) {
      return done(0, (err as Error).message);
    }
  }
  const body = Buffer.from(d.payload, "utf8");
  const headers = { ...signedHeaders(d.secret, d.event_id, d.payload, new Date(Number(attempt_time_ns / 1_000_000n))), "content-length": String(body.length) };
  const lib = url.protocol === "https:" ? https : http;
  return new Promise<AttemptOutcome>((resolve) => {
    let settled = false;
    const finish = (status: number, error: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(done(status, error));
    };
    const req = lib.request(
      url,
      { method: "POST", headers, agent: false, ...(guarded ? { lookup: publicOnlyLookup } : {}) },
      (res) => {
        let read = 0;
        res.on("data", (chunk: Buffer) => {
          read += chunk.length;
          if (read > RESPONSE_BODY_MAX) res.destroy();
        });
        const status = res.statusCode ?? 0;
        const err = status >= 200 && status < 300 ? "" : `HTTP ${status}`;
        res.on("end", () => finish(status, err));
        res.on("close", () => finish(status, err));
        res.on("error", () => finish(status, err));
      },
    );
    const timer = setTimeout(() => {
      finish(0, `timed out after ${opts.timeout_ms} ms`);
      req.destroy();
    }, opts.timeout_ms);
    req.on("error", (err: NodeJS.ErrnoException) => finish(0, err.code === "EPRIVATEADDRESS" ? err.message : `${err.code ?? "error"}: ${err.message}`));
    const abort = () => {
      finish(0, "aborted: the daemon is stopping");
      req.destroy();
    };
    if (opts.signal?.aborted) abort();
    else opts.signal?.addEventListener("abort", abort, { once: true });
    req.end(body);
  });
}

/** Start polling; the returned handle stops it. */
export function startDispatcher(o: DispatcherOptions): Dispatcher {
  const c = o.config;
  const inFlight = new Set<Promise<void>>();
  let stopped = false;
  let polling: Promise<Promise<void>[]> | null = null;

  const stopping = new AbortController();
  const runOne = async (d: ClaimedDelivery): Promise<void> => {
    const outcome = await attemptDelivery(d, {
      timeout_ms: c.WEBHOOK_TIMEOUT_MS,
      allow_private_network: c.WEBHOOK_ALLOW_PRIVATE_NETWORK,
      now: o.clock,
      signal: stopping.signal,
    });
    // Cut short by shutdown: not the endpoint's fault, so no attempt is counted; the lease
    // expires and the delivery is attempted again (by this daemon after a restart, or another).
    if (stopping.signal.aborted) return;
    const attempts = d.attempts + 1;
    const retry_at_ns = outcome.ok || attempts >= c.WEBHOOK_MAX_ATTEMPTS
      ? null
      : o.clock() + BigInt(backoffMs(attempts, c.WEBHOOK_BACKOFF_BASE_MS, c.WEBHOOK_BACKOFF_MAX_MS)) * 1_000_000n;
    const recorded = await o.store.recordAttempt(d, outcome, retry_at_ns);
    const fields = { delivery_id: d.delivery_id, event_id: d.event_id, endpoint_id: d.endpoint_id, attempt: attempts, http_status: outcome.http_status };
    if (!recorded) o.log.warn(fields, "webhook attempt outcome not recorded: the lease was lost (redelivered, or taken over)");
    else if (outcome.ok) o.log.debug(fields, "webhook delivered");
    else if (retry_at_ns === null) o.log.warn({ ...fields, error: outcome.error }, "webhook dead-lettered after its last attempt");
    else o.log.info({ ...fields, error: outcome.error }, "webhook attempt failed; will retry");
  };

  /** Lease due deliveries for the free slots and start them; resolves with the started runs. */
  const claimAndStart = async (): Promise<Promise<void>[]> => {
    const free = c.WEBHOOK_CONCURRENCY - inFlight.size;
    if (free <= 0 || stopped) return [];
    const now = o.clock();
    const lease_until = now + BigInt(c.WEBHOOK_TIMEOUT_MS * LEASE_TIMEOUTS) * 1_000_000n;
    const claimed = await o.store.claim(now, lease_until, Math.min(free, WEBHOOK_CLAIM_MAX));
    return claimed.map((d) => {
      const p: Promise<void> = runOne(d)
        .catch((err: unknown) => o.log.error({ err, delivery_id: d.delivery_id }, "webhook attempt failed to record; the lease will expire and it is retried"))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      return p;
    });
  };

  // One claim at a time; the attempts run on while the next polls refill free slots.
  const poll = (): Promise<Promise<void>[]> => {
    if (polling) return polling.then(() => []);
    const p = claimAndStart().finally(() => {
      polling = null;
    });
    polling = p;
    return p;
  };
  const tick = async (): Promise<number> => {
    const runs = await poll();
    await Promise.all(runs);
    return runs.length;
  };
  const loop = () => {
    if (stopped) return;
    poll().catch((err: unknown) => o.log.error({ err }, "webhook poll failed; will retry"));
  };
  const timer = setInterval(loop, c.WEBHOOK_POLL_MS);
  timer.unref();
  loop();

  return {
    tick,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await polling?.catch(() => undefined);
      stopping.abort();
      await Promise.all([...inFlight]);
    },
  };
}
