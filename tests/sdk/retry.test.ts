import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { backoffDelay_ms, DEFAULT_RETRY_POLICY, isRetryable, withRetry } from "../../clients/sdk/retry.js";

const reset = () => {
  const e = new Error("read ECONNRESET") as NodeJS.ErrnoException;
  e.code = "ECONNRESET";
  return new ConnectError("connection reset", Code.Internal, undefined, undefined, e);
};

describe("retry policy", () => {
  it("retries transient failures of idempotent calls only", () => {
    expect(isRetryable(new ConnectError("down", Code.Unavailable), true)).toBe(true);
    expect(isRetryable(new ConnectError("slow", Code.DeadlineExceeded), true)).toBe(true);
    expect(isRetryable(reset(), true)).toBe(true);
    expect(isRetryable(new ConnectError("down", Code.Unavailable), false)).toBe(false);
    expect(isRetryable(reset(), false)).toBe(false);
  });

  it("never retries a user error (it would fail the same way)", () => {
    for (const code of [Code.InvalidArgument, Code.NotFound, Code.PermissionDenied, Code.FailedPrecondition, Code.AlreadyExists, Code.Unauthenticated]) {
      expect(isRetryable(new ConnectError("no", code), true)).toBe(false);
    }
    expect(isRetryable(new ConnectError("bug", Code.Internal), true)).toBe(false);
  });

  it("backs off exponentially with full jitter, capped", () => {
    const p = { ...DEFAULT_RETRY_POLICY, initial_backoff_ms: 100, multiplier: 2, max_backoff_ms: 1000 };
    const top = () => 0.999999;
    expect(backoffDelay_ms(p, 1, top)).toBe(99);
    expect(backoffDelay_ms(p, 2, top)).toBe(199);
    expect(backoffDelay_ms(p, 3, top)).toBe(399);
    expect(backoffDelay_ms(p, 10, top)).toBe(999);
    expect(backoffDelay_ms(p, 3, () => 0)).toBe(0);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay_ms(p, 4);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(800);
    }
  });

  it("returns the first success, and passes the same logical request every attempt", async () => {
    const seen: number[] = [];
    const sleeps: number[] = [];
    const result = await withRetry(
      async ({ attempt }) => {
        seen.push(attempt);
        if (attempt < 3) throw new ConnectError("down", Code.Unavailable);
        return "ok";
      },
      { policy: DEFAULT_RETRY_POLICY, idempotent: true, deadline_ms: 60_000, sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 },
    );
    expect(result).toBe("ok");
    expect(seen).toEqual([1, 2, 3]);
    expect(sleeps).toEqual([50, 100]);
  });

  it("gives up after max_attempts and rethrows the last error unchanged", async () => {
    let n = 0;
    const err = new ConnectError("down", Code.Unavailable);
    await expect(
      withRetry(async () => {
        n++;
        throw err;
      }, { policy: { ...DEFAULT_RETRY_POLICY, max_attempts: 3 }, idempotent: true, deadline_ms: 60_000, sleep: async () => {} }),
    ).rejects.toBe(err);
    expect(n).toBe(3);
  });

  it("does not retry a user error, and stops when the deadline cannot fit another attempt", async () => {
    let n = 0;
    await expect(
      withRetry(async () => {
        n++;
        throw new ConnectError("bad", Code.InvalidArgument);
      }, { policy: DEFAULT_RETRY_POLICY, idempotent: true, deadline_ms: 60_000, sleep: async () => {} }),
    ).rejects.toThrow(/bad/);
    expect(n).toBe(1);

    let clock = 0;
    let m = 0;
    await expect(
      withRetry(async () => {
        m++;
        clock += 960;
        throw new ConnectError("down", Code.Unavailable);
      }, { policy: DEFAULT_RETRY_POLICY, idempotent: true, deadline_ms: 1000, now_ms: () => clock, sleep: async () => {}, random: () => 0.5 }),
    ).rejects.toThrow(/down/);
    expect(m).toBe(1);
  });
});
