/**
 * Per-RPC helpers for handlers: the request-scoped logger (every line carries request_id, rpc,
 * protocol and, once authenticated, the principal) and access to the principal.
 */
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import { pino, type Logger } from "pino";
import { principalKey, type Principal } from "./principal.js";

const silent = pino({ level: "silent" });

/**
 * The request logger is created on first use: most calls write no line besides the access line,
 * and at MASQUES_LOG_LEVEL=warn not even that, so a pino child per call would be wasted work.
 */
export class RequestLog {
  private child: Logger | undefined;
  constructor(
    private readonly base: Logger,
    readonly bindings: Record<string, string>,
  ) {}
  get logger(): Logger {
    return (this.child ??= this.base.child(this.bindings));
  }
  /** Add a binding (e.g. the principal) before any line was written. */
  bind(key: string, value: string): void {
    if (this.child) this.child = this.child.child({ [key]: value });
    else this.bindings[key] = value;
  }
  isLevelEnabled(level: "info" | "error"): boolean {
    return this.base.isLevelEnabled(level);
  }
}

export const requestLogKey = createContextKey<RequestLog | undefined>(undefined, { description: "request logger" });

/** The request-scoped logger (falls back to a silent logger outside the daemon, e.g. unit tests). */
export function requestLogger(ctx: HandlerContext): Logger {
  return ctx.values.get(requestLogKey)?.logger ?? silent;
}

/** The authenticated principal; throws UNAUTHENTICATED if a handler runs without one. */
export function principalOf(ctx: HandlerContext): Principal {
  const p = ctx.values.get(principalKey);
  if (!p) throw new ConnectError("unauthenticated call", Code.Unauthenticated);
  return p;
}
