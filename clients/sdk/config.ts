/**
 * Client configuration: explicit options win, then the environment, then local defaults.
 *
 *   MASQUES_ENDPOINT    daemon URL (default http://127.0.0.1:50051, the daemon's gRPC port; with
 *                       MASQUES_TRANSPORT=connect, http://127.0.0.1:8080, its HTTP port)
 *   MASQUES_TRANSPORT   grpc | connect (default grpc)
 *   MASQUES_TOKEN       bearer JWT for the calling agent / author / admin
 *   MASQUES_TIMEOUT_MS  default total deadline per call, retries included (default 15000)
 */
import { z } from "zod";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "./retry.js";

export type TransportKind = "grpc" | "connect";

export interface ClientOptions {
  endpoint?: string;
  transport?: TransportKind;
  token?: string;
  /** Default total deadline per call (all attempts and backoffs). */
  timeout_ms?: number;
  /** Deadline of a single attempt (default: max(min(timeout_ms, 5000), timeout_ms / 2)). */
  attempt_timeout_ms?: number;
  retry?: Partial<RetryPolicy>;
  /** Read defaults from here instead of process.env (tests, embedding). */
  env?: Record<string, string | undefined>;
}

export interface ResolvedClientConfig {
  endpoint: string;
  transport: TransportKind;
  token: string | undefined;
  timeout_ms: number;
  attempt_timeout_ms: number;
  retry: RetryPolicy;
}

export const DEFAULT_ENDPOINT = "http://127.0.0.1:50051";
/** The daemon's default HTTP (Connect / gRPC-Web / JSON) port, used when transport is connect. */
export const DEFAULT_CONNECT_ENDPOINT = "http://127.0.0.1:8080";
export const DEFAULT_TIMEOUT_MS = 15_000;

export class ConfigError extends Error {}

const endpointSchema = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}, "must be an http:// or https:// URL, e.g. http://127.0.0.1:50051");

function pick<T>(name: string, value: unknown, schema: z.ZodType<T>): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new ConfigError(`${name}: ${r.error.issues.map((i) => i.message).join("; ")} (got ${JSON.stringify(value)})`);
  return r.data;
}

export function resolveClientConfig(opts: ClientOptions = {}): ResolvedClientConfig {
  const env = opts.env ?? process.env;
  const blank = (s: string | undefined) => (s === undefined || s.trim() === "" ? undefined : s.trim());
  const transport = pick(
    opts.transport ? "transport" : "MASQUES_TRANSPORT",
    opts.transport ?? blank(env["MASQUES_TRANSPORT"])?.toLowerCase() ?? "grpc",
    z.enum(["grpc", "connect"], { message: 'must be "grpc" or "connect"' }),
  );
  const endpoint = pick(
    opts.endpoint ? "endpoint" : "MASQUES_ENDPOINT",
    opts.endpoint ?? blank(env["MASQUES_ENDPOINT"]) ?? (transport === "connect" ? DEFAULT_CONNECT_ENDPOINT : DEFAULT_ENDPOINT),
    endpointSchema,
  ).replace(/\/+$/, "");
  const timeout_ms = pick(
    opts.timeout_ms !== undefined ? "timeout_ms" : "MASQUES_TIMEOUT_MS",
    opts.timeout_ms ?? (blank(env["MASQUES_TIMEOUT_MS"]) !== undefined ? Number(env["MASQUES_TIMEOUT_MS"]) : DEFAULT_TIMEOUT_MS),
    z.number({ message: "must be a number of milliseconds" }).int("must be a whole number of milliseconds").positive("must be > 0"),
  );
  // One attempt may use half the budget (at least 5 s when the budget allows): long enough for a
  // slow but healthy daemon, short enough to leave room for a retry after a black-holed connection.
  const attempt_timeout_ms = opts.attempt_timeout_ms ?? Math.max(Math.min(timeout_ms, 5_000), Math.floor(timeout_ms / 2));
  return {
    endpoint,
    transport,
    token: opts.token ?? blank(env["MASQUES_TOKEN"]),
    timeout_ms,
    attempt_timeout_ms,
    retry: { ...DEFAULT_RETRY_POLICY, ...opts.retry },
  };
}
