/**
 * Masques Ledger client SDK. Start with `new MasquesClient()` (reads MASQUES_ENDPOINT,
 * MASQUES_TOKEN, MASQUES_TRANSPORT, MASQUES_TIMEOUT_MS). See docs/plugin.md.
 */
export { MasquesClient, type AccountSelector, type CallOptions, type MutatingCallOptions, type TokenIdentity } from "./client.js";
export { resolveClientConfig, ConfigError, DEFAULT_ENDPOINT, DEFAULT_TIMEOUT_MS, type ClientOptions, type ResolvedClientConfig, type TransportKind } from "./config.js";
export * from "./errors.js";
export { errorFrom, factsOf } from "./details.js";
export { newIdempotencyKey } from "./idempotency.js";
export { formatMicroAsUsd, formatUsd, MICRO_PER_USD, MoneyParseError, parseUsdInput, parseUsdToMicro, toMicro } from "./money.js";
export { backoffDelay_ms, DEFAULT_RETRY_POLICY, isRetryable, withRetry, type RetryPolicy } from "./retry.js";
export * from "./session-file.js";
export {
  SessionsApi,
  newSessionId,
  isFullSession,
  BASIC_SESSION_FIELDS,
  BillingMode,
  SessionStatus,
  type Session,
  type BasicSession,
  type SessionOf,
  type SessionViewName,
  type EndSessionCallOptions,
  type DonInput,
  type UsageInput,
} from "./sessions.js";
export { donMasque, reportUsage, flushUsage, heartbeatSession, endSession, type DonOptions, type DonResult, type DoffResult, type UsageReport, type FlushResult } from "./plugin-session.js";
