/**
 * Idempotency keys. One key per *logical* operation: generated once, reused for every retry of
 * that operation (by the SDK's retry loop, and by the CLI across process restarts via the session
 * file), so the daemon applies the operation at most once. Never reuse a key for a different
 * request: the daemon rejects that with IDEMPOTENCY_KEY_REUSED.
 */
import { randomUUID } from "node:crypto";

export function newIdempotencyKey(): string {
  return randomUUID();
}
