/**
 * The SessionService: builds the state (state.ts), rebuilds it from the ledger (startup.ts),
 * starts the reaper (reaper.ts) and binds the handlers (handlers.ts) to Connect.
 */
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { SessionService } from "../../../clients/gen/masques/ledger/v1/session_service_pb.js";
import type { DaemonContext } from "../../server/registry.js";
import { principalOf } from "../authz.js";
import { sessionHandlers, type SessionHandlers } from "./handlers.js";
import { startReaper, type Reaper } from "./reaper.js";
import { rebuildState } from "./startup.js";
import { createSessionState, type SessionState } from "./state.js";

/** Options the tests and the bench may override. */
export interface SessionServiceOptions {
  /** Start the reaper timer (default true). */
  reaper?: boolean;
}

/** One running SessionService instance. */
export interface SessionServiceInstance {
  readonly state: SessionState;
  readonly handlers: SessionHandlers;
  /** Resolves once the state is rebuilt from the ledger (rejects: start-up failed). */
  readonly ready: Promise<void>;
  /** The reaper, once started (null with `reaper: false` or before `ready`). */
  reaper(): Reaper | null;
  stop(): void;
}

/**
 * Build an instance over `ctx.ledger`. Several instances may share one ledger client (as several
 * daemons share one TigerBeetle cluster); the catalog's price books are content-addressed, so
 * instances over the same data directory agree on them. Throws on a bad catalog.
 */
export function createSessionInstance(ctx: DaemonContext, opts: SessionServiceOptions = {}): SessionServiceInstance {
  const state = createSessionState(ctx);
  let reaper: Reaper | null = null;
  let stopped = false;
  const ready = rebuildState(state).then(() => {
    if (opts.reaper !== false && !stopped) reaper = startReaper(state);
    if (!stopped) state.live.watch();
  });
  // A failed start-up is reported on every call (and logged once here).
  ready.catch((err: unknown) => state.log.error({ err }, "session service start-up failed"));
  return {
    state,
    handlers: sessionHandlers(state, ready),
    ready,
    reaper: () => reaper,
    stop() {
      stopped = true;
      reaper?.stop();
      state.live.stop();
    },
  };
}

/** The Connect implementation of SessionService over an instance. */
export function sessionServiceImpl(inst: SessionServiceInstance): ServiceImpl<typeof SessionService> {
  const h = inst.handlers;
  const P = (c: HandlerContext) => principalOf(c);
  return {
    async don(req, c) {
      return h.don(P(c), req);
    },
    async recordUsage(req, c) {
      return h.recordUsage(P(c), req.events);
    },
    async heartbeat(req, c) {
      return h.heartbeat(P(c), req.sessionId);
    },
    async doff(req, c) {
      return { session: await h.doff(P(c), req.sessionId, req.view) };
    },
    async cancel(req, c) {
      return { session: await h.cancel(P(c), req.sessionId, req.view) };
    },
    async getSession(req, c) {
      return { session: await h.get(P(c), req.sessionId) };
    },
    async listSessions(req, c) {
      return h.list(P(c), req);
    },
    async listMasques(req, c) {
      return h.listMasques(P(c), req.pageSize, req.pageToken);
    },
  };
}

const instances = new WeakMap<DaemonContext, SessionServiceInstance>();

/** The instance serving a daemon context (the OTLP ingest bills through it, issue 18). */
export function sessionInstanceOf(ctx: DaemonContext): SessionServiceInstance | undefined {
  return instances.get(ctx);
}

/**
 * Make `inst` the instance serving `ctx` (src/services/index.ts, which shares it with the catalog
 * service): the OTLP ingest and the daemon's metrics find it through `sessionInstanceOf`.
 */
export function bindSessionInstance(ctx: DaemonContext, inst: SessionServiceInstance): SessionServiceInstance {
  instances.set(ctx, inst);
  return inst;
}
