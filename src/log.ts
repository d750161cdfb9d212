/**
 * Structured logs: pino JSON lines on stdout. Every line written while serving an RPC carries
 * `request_id` (from the `x-request-id` header or generated). Secrets never reach the log:
 * credentials-looking fields are redacted as a second line of defence, but the first is simply
 * never passing headers, tokens or keys to the logger.
 */
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

const REDACT = [
  "authorization",
  "token",
  "jwt",
  "password",
  "secret",
  "privateKey",
  "private_key",
  "*.authorization",
  "*.token",
  "*.jwt",
  "*.password",
  "*.secret",
  "*.privateKey",
  "*.private_key",
  "headers.authorization",
  "req.headers.authorization",
];

export interface LoggerOptions {
  level?: string;
  /** Defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? "info",
      base: { service: "masques-ledger" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}
