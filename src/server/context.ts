/**
 * Per-RPC helpers for handlers: the request-scoped logger (every line carries request_id, rpc,
 * protocol and, once authenticated, the principal) and access to the principal.
 */
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import { pino, type Logger } from "pino";
import { principalKey, type Principal } from "./principal.js";

const silent = pino({ level: "silent" });

export const loggerKey = createContextKey<Logger>(silent, { description: "request logger" });

/** The request-scoped logger (falls back to a silent logger outside the daemon, e.g. unit tests). */
export function requestLogger(ctx: HandlerContext): Logger {
  return ctx.values.get(loggerKey);
}

/** The authenticated principal; throws UNAUTHENTICATED if a handler runs without one. */
export function principalOf(ctx: HandlerContext): Principal {
  const p = ctx.values.get(principalKey);
  if (!p) throw new ConnectError("unauthenticated call", Code.Unauthenticated);
  return p;
}
