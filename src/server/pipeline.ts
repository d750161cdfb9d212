/**
 * The per-RPC pipeline shared by every transport: request id, authentication, request logger,
 * error normalisation and the access log line. Both the grpc-js adapter and connect-node serve
 * the wrapped ServiceImplSpec this module produces, so behaviour is identical on both.
 */
import { randomUUID } from "node:crypto";
import {
  Code,
  ConnectError,
  createMethodImplSpec,
  type HandlerContext,
  type MethodImplSpec,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import type { Verifier } from "./auth.js";
import { RequestLog, requestLogKey } from "./context.js";
import { principalKey, requestIdKey } from "./principal.js";
import { DEFAULT_LIMITS } from "./limits.js";
import type { ServiceRegistration } from "./registry.js";
import { finalError } from "./transport-errors.js";
import { methodClass, rateLimitedError, type MethodClass, type RateLimiter } from "./rate-limit.js";

export const REQUEST_ID_RE = /^[A-Za-z0-9._:\-]{1,128}$/;

export interface PipelineDeps {
  verifier: Verifier;
  log: Logger;
  /** MASQUES_MAX_ECHO_CHARS (default DEFAULT_LIMITS.maxEchoChars). */
  maxEchoChars?: number;
  /** Called once per finished unary RPC (metrics, issue 18): "pkg.Service/Method", code name, ms. */
  onRpc?: (rpc: string, code: string, duration_ms: number) => void;
  /** Per-principal rate limits (src/server/rate-limit.ts); undefined = unlimited. */
  rateLimiter?: RateLimiter;
}

/**
 * Normalise anything thrown by authentication or a handler into the ConnectError sent to the
 * caller: with an ErrorInfo and every request-derived string bounded (transport-errors.ts), so
 * the access log line below is bounded too.
 */
export function toConnectError(err: unknown, log: RequestLog, maxEchoChars = DEFAULT_LIMITS.maxEchoChars): ConnectError {
  if (err instanceof ConnectError) return finalError(err, maxEchoChars);
  if (err instanceof Error && err.name === "AbortError") {
    return finalError(new ConnectError("request cancelled", Code.Canceled), maxEchoChars);
  }
  // Unknown failures: log the real error, send a generic message (no internals leak).
  log.logger.error({ err }, "unhandled error in handler");
  return finalError(new ConnectError("internal error", Code.Internal), maxEchoChars);
}

/**
 * Header access without fetch Headers objects, offered by the grpc-js adapter's context
 * (src/server/grpc.ts): building undici Headers for two reads and one write was a measurable
 * share of each unary call. Other transports (connect-node) use the HandlerContext Headers.
 */
interface DirectHeaders {
  requestHeaderValue(name: string): string | null;
  setResponseHeaderValue(name: string, value: string): void;
}

function hasDirectHeaders(ctx: HandlerContext): ctx is HandlerContext & DirectHeaders {
  return typeof (ctx as Partial<DirectHeaders>).requestHeaderValue === "function";
}

/** `rpc`: "pkg.Service/Method", built once per method (wrapMethod), not per call. */
async function begin(ctx: HandlerContext, deps: PipelineDeps, cls: MethodClass, rpc: string): Promise<{ log: RequestLog; t0: number }> {
  const t0 = performance.now();
  const direct = hasDirectHeaders(ctx) ? ctx : null;
  const header = (name: string) => (direct ? direct.requestHeaderValue(name) : ctx.requestHeader.get(name));
  const given = header("x-request-id");
  const requestId = given && REQUEST_ID_RE.test(given) ? given : randomUUID();
  ctx.values.set(requestIdKey, requestId);
  if (direct) direct.setResponseHeaderValue("x-request-id", requestId);
  else ctx.responseHeader.set("x-request-id", requestId);
  const log = new RequestLog(deps.log, {
    request_id: requestId,
    rpc,
    protocol: ctx.protocolName,
  });
  ctx.values.set(requestLogKey, log);
  try {
    const principal = await deps.verifier.authenticate(header("authorization"));
    ctx.values.set(principalKey, principal);
    log.bind("principal", `${principal.kind}:${principal.id}`);
    if (deps.rateLimiter) {
      const d = deps.rateLimiter.take(principal, cls);
      if (!d.ok) throw rateLimitedError(cls, d.retryAfterMs);
    }
  } catch (err) {
    const ce = toConnectError(err, log, deps.maxEchoChars);
    if (log.isLevelEnabled("info")) {
      log.logger.info({ code: Code[ce.code], reason: ce.rawMessage, duration_ms: ms(t0) }, "rpc rejected");
    }
    throw ce;
  }
  return { log, t0 };
}

function ms(t0: number): number {
  return Math.round((performance.now() - t0) * 1000) / 1000;
}

function finishOk(log: RequestLog, t0: number): void {
  if (log.isLevelEnabled("info")) log.logger.info({ code: "OK", duration_ms: ms(t0) }, "rpc");
}

function finishError(err: unknown, log: RequestLog, t0: number, maxEchoChars: number | undefined): ConnectError {
  const ce = toConnectError(err, log, maxEchoChars);
  const serverSide = ce.code === Code.Internal || ce.code === Code.Unknown || ce.code === Code.DataLoss;
  if (serverSide || log.isLevelEnabled("info")) {
    log.logger[serverSide ? "error" : "info"]({ code: Code[ce.code], reason: ce.rawMessage, duration_ms: ms(t0) }, "rpc failed");
  }
  return ce;
}

function wrapMethod(spec: MethodImplSpec, deps: PipelineDeps): MethodImplSpec {
  const cls = methodClass(spec.method.parent.typeName, spec.method.name);
  const rpc = `${spec.method.parent.typeName}/${spec.method.name}`;
  switch (spec.kind) {
    case "unary": {
      const impl = spec.impl;
      const onRpc = deps.onRpc;
      if (onRpc) {
        return createMethodImplSpec(spec.method, async (req: MessageShape<DescMessage>, ctx: HandlerContext) => {
          const t = performance.now();
          let log: RequestLog;
          let t0: number;
          try {
            ({ log, t0 } = await begin(ctx, deps, cls, rpc));
          } catch (err) {
            onRpc(rpc, Code[(err as ConnectError).code] ?? "Unknown", performance.now() - t);
            throw err;
          }
          try {
            const res = await impl(req, ctx);
            finishOk(log, t0);
            onRpc(rpc, "OK", performance.now() - t);
            return res;
          } catch (err) {
            const ce = finishError(err, log, t0, deps.maxEchoChars);
            onRpc(rpc, Code[ce.code] ?? "Unknown", performance.now() - t);
            throw ce;
          }
        });
      }
      return createMethodImplSpec(spec.method, async (req: MessageShape<DescMessage>, ctx: HandlerContext) => {
        const { log, t0 } = await begin(ctx, deps, cls, rpc);
        try {
          const res = await impl(req, ctx);
          finishOk(log, t0);
          return res;
        } catch (err) {
          throw finishError(err, log, t0, deps.maxEchoChars);
        }
      });
    }
    case "server_streaming": {
      const impl = spec.impl;
      return createMethodImplSpec(spec.method, async function* (req: MessageShape<DescMessage>, ctx: HandlerContext) {
        const { log, t0 } = await begin(ctx, deps, cls, rpc);
        try {
          yield* impl(req, ctx);
          finishOk(log, t0);
        } catch (err) {
          throw finishError(err, log, t0, deps.maxEchoChars);
        }
      });
    }
    case "client_streaming": {
      const impl = spec.impl;
      return createMethodImplSpec(spec.method, async (reqs: AsyncIterable<MessageShape<DescMessage>>, ctx: HandlerContext) => {
        const { log, t0 } = await begin(ctx, deps, cls, rpc);
        try {
          const res = await impl(reqs, ctx);
          finishOk(log, t0);
          return res;
        } catch (err) {
          throw finishError(err, log, t0, deps.maxEchoChars);
        }
      });
    }
    case "bidi_streaming": {
      const impl = spec.impl;
      return createMethodImplSpec(spec.method, async function* (reqs: AsyncIterable<MessageShape<DescMessage>>, ctx: HandlerContext) {
        const { log, t0 } = await begin(ctx, deps, cls, rpc);
        try {
          yield* impl(reqs, ctx);
          finishOk(log, t0);
        } catch (err) {
          throw finishError(err, log, t0, deps.maxEchoChars);
        }
      });
    }
  }
}

/** Wrap every method of a registration with the pipeline. */
export function wrapService(reg: ServiceRegistration, deps: PipelineDeps): ServiceImplSpec {
  const methods: Record<string, MethodImplSpec> = {};
  for (const [name, m] of Object.entries(reg.spec.methods)) methods[name] = wrapMethod(m, deps);
  return { service: reg.spec.service, methods };
}
