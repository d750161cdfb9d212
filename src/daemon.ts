/**
 * The ledger daemon: configuration -> keys -> control-plane database -> ledger -> services ->
 * gRPC + HTTP listeners, and graceful shutdown (stop accepting, let in-flight calls finish within
 * MASQUES_SHUTDOWN_GRACE_S, stop services, close the ledger, close the control plane).
 */
import { mkdir, readFile } from "node:fs/promises";
import type { ServiceImplSpec } from "@connectrpc/connect";
import type { Logger } from "pino";
import { ConfigError, isLoopbackHost, type Config } from "./config.js";
import { controlPlaneOptions, openControlPlane, type ControlPlane } from "./controlplane/index.js";
import { openLedger, type OpenedLedger } from "./ledger/index.js";
import { InsecureKeyDirError, createVerifier, loadOrCreateDevKeys, parsePublicKeys, type Verifier } from "./server/auth.js";
import { setServing, startGrpcServer, type GrpcServer } from "./server/grpc.js";
import { startHttpServer, type HttpServer } from "./server/http.js";
import { limitsFromConfig } from "./server/limits.js";
import { wrapService } from "./server/pipeline.js";
import { rateLimiterFromConfig } from "./server/rate-limit.js";
import type { DaemonContext, ServicesModule } from "./server/registry.js";
import * as servicesModule from "./services/index.js";
import { DEFAULT_UI_DIR, createDashboardRoutes, type DaemonDevLogin } from "./dashboard/routes.js";
import { startStreamer } from "./streamer/index.js";
import { superviseStreamer, type StreamerSupervisor } from "./streamer/supervisor.js";
import { otlpStore } from "./controlplane/otlp.js";
import { sessionInstanceOf } from "./services/sessions/service.js";
import { telemetryRoutes } from "./telemetry/http.js";
import { groupedStore } from "./telemetry/ingest.js";
import { createDaemonMetrics } from "./telemetry/metrics.js";
import { startCpuProfiler } from "./telemetry/profiler.js";
import { youngGenerationInfo } from "./telemetry/young-generation.js";
import { ANALYTICS_HEALTH_SERVICE, createReadiness } from "./telemetry/readiness.js";

export interface RunningDaemon {
  grpcAddr: string;
  httpAddr: string;
  /** Graceful stop; idempotent. */
  stop(reason?: string): Promise<void>;
  /** Resolves when the daemon has fully stopped. */
  stopped: Promise<void>;
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Wall clock in ns since the epoch (µs resolution). */
export function systemClock(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

/** The verifier, and the dev signing key when it is the local dev key pair (loopback only). */
async function makeVerifier(config: Config, log: Logger): Promise<{ verifier: Verifier; devLogin?: DaemonDevLogin }> {
  const opts = { issuer: config.MASQUES_JWT_ISSUER, audience: config.MASQUES_JWT_AUDIENCE };
  if (config.MASQUES_JWT_PUBLIC_KEYS) {
    try {
      return { verifier: createVerifier(parsePublicKeys(config.MASQUES_JWT_PUBLIC_KEYS), "MASQUES_JWT_PUBLIC_KEYS", opts) };
    } catch (err) {
      throw new ConfigError([{ variable: "MASQUES_JWT_PUBLIC_KEYS", message: (err as Error).message.replace(/^MASQUES_JWT_PUBLIC_KEYS: /, "") }]);
    }
  }
  if (config.MASQUES_JWT_PUBLIC_KEYS_FILE) {
    const file = config.MASQUES_JWT_PUBLIC_KEYS_FILE;
    try {
      const text = await readFile(file, "utf8");
      return { verifier: createVerifier(parsePublicKeys(text), `MASQUES_JWT_PUBLIC_KEYS_FILE (${file})`, opts) };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const message = e.code ? `cannot read ${file}: ${e.code}` : e.message.replace(/^MASQUES_JWT_PUBLIC_KEYS: /, "");
      throw new ConfigError([{ variable: "MASQUES_JWT_PUBLIC_KEYS_FILE", message }]);
    }
  }
  const exposed = [config.MASQUES_GRPC_ADDR, config.MASQUES_HTTP_ADDR].filter((a) => !isLoopbackHost(a.host));
  if (exposed.length > 0) {
    throw new ConfigError([
      {
        variable: "MASQUES_JWT_PUBLIC_KEYS",
        message: `(or MASQUES_JWT_PUBLIC_KEYS_FILE) required when listening on a non-loopback address (${exposed.map((a) => a.text).join(", ")}); dev keys are only created for loopback-only daemons`,
      },
    ]);
  }
  let dev: Awaited<ReturnType<typeof loadOrCreateDevKeys>>;
  try {
    dev = await loadOrCreateDevKeys(config.dataDir);
  } catch (err) {
    if (err instanceof InsecureKeyDirError) throw new ConfigError([{ variable: "MASQUES_DATA_DIR", message: err.message }]);
    throw err;
  }
  log.warn({ key_dir: dev.dir }, "no MASQUES_JWT_PUBLIC_KEYS: using the local dev key pair (loopback only); mint tokens with `masques-ledger token`");
  return {
    verifier: createVerifier(parsePublicKeys(JSON.stringify(dev.publicJwks)), "dev key pair", opts),
    devLogin: { privateJwk: dev.privateJwk, issuer: opts.issuer, audience: opts.audience },
  };
}

export async function runDaemon(
  config: Config,
  log: Logger,
  opts: { services?: ServicesModule; clock?: () => bigint } = {},
): Promise<RunningDaemon> {
  const services: ServicesModule = opts.services ?? servicesModule;
  log.info({ v8: youngGenerationInfo() }, "v8 young generation (ADR 0129)");
  // Owner-only: balances, keys and analytics live below (umask 022 would make it world-readable).
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const { verifier, devLogin } = await makeVerifier(config, log);
  // Refuses to start on an unknown or changed applied migration (ADR 0070).
  const controlplane: ControlPlane = await openControlPlane(controlPlaneOptions(config));
  log.info({ controlplane: controlplane.describe, migrations_applied: controlplane.migrations.applied }, "control plane open");
  let ledger: OpenedLedger;
  try {
    // An injected clock drives the embedded ledger too, so the daemon and its ledger agree on "now".
    ledger = await openLedger(config, { log: log.child({ component: "ledger" }), clock: opts.clock });
  } catch (err) {
    await controlplane.close();
    throw err;
  }
  log.info({ ledger: ledger.describe, coalesce: config.MASQUES_COALESCE }, "ledger open");

  const limits = limitsFromConfig(config);
  const clock = opts.clock ?? systemClock;
  // Telemetry out (issue 18): metrics (ledger requests timed by operation), readiness; telemetry
  // in: OTLP on the HTTP port.
  const metrics = createDaemonMetrics({ otlpEndpoint: config.MASQUES_METRICS_OTLP_ENDPOINT, exportIntervalMs: config.MASQUES_METRICS_EXPORT_INTERVAL_MS });
  const ledgerClient = metrics.instrumentLedger(ledger.client);
  // CDC to ClickHouse: not on the money path, so a streamer that cannot start is logged, the
  // daemon serves without analytics, and the supervisor retries the start with capped backoff
  // until ClickHouse answers (ADR 0119); the copy then resumes from its stored cursor. The first
  // attempt runs before the services, so a healthy start has AdminService's reconciler at once.
  let readinessRefresh: () => void = () => {};
  const supervisor: StreamerSupervisor | undefined = config.STREAMER_ENABLED
    ? superviseStreamer({
        start: () => startStreamer({ ledger: ledgerClient, config, log: log.child({ component: "streamer" }), clock, controlplane: controlplane.db }),
        retry_min_ms: config.STREAMER_RETRY_MIN_MS,
        retry_max_ms: config.STREAMER_RETRY_MAX_MS,
        log: log.child({ component: "streamer" }),
        on_started: () => readinessRefresh(),
      })
    : undefined;
  await supervisor?.begin();
  const streamerNow = () => supervisor?.current();
  // Read per call: AdminService and AnalyticsService see a streamer that started late.
  const ctx: DaemonContext = {
    ledger: ledgerClient,
    controlplane,
    config,
    log,
    clock,
    get reconciliation() {
      return streamerNow()?.reconciler;
    },
    get analytics() {
      const s = streamerNow();
      return s ? { sink: s.sink, describe: s.describe, lag: () => s.lag() } : undefined;
    },
  };
  let grpcServer: GrpcServer | undefined;
  let httpServer: HttpServer | undefined;
  let specs: ServiceImplSpec[] = [];
  const sinkOf = () => streamerNow()?.sink;
  let onHealth: (ready: boolean, analytics: boolean) => void = () => {};
  const readiness = createReadiness({
    ledger: ledgerClient,
    db: controlplane.db,
    sink: sinkOf,
    analyticsDown: () => {
      const st = supervisor?.state();
      if (!st) return "analytics is off (STREAMER_ENABLED=false)";
      if (st.state === "retrying") return `the streamer could not start (${st.start_failures} attempt(s), retrying with backoff): ${st.last_error ?? ""}`;
      return `the streamer is ${st.state}`;
    },
    streamerHealth: () => streamerNow()?.streamer.health(),
    onReport: (r) => onHealth(r.ready, r.checks.analytics === "ok"),
  });
  readinessRefresh = () => void readiness.refresh();
  const rateLimiter = rateLimiterFromConfig(config);
  startCpuProfiler(config.MASQUES_CPU_PROFILE_DIR, log); // bench/debug only: SIGUSR2 toggles a CPU profile (ADR 0123)
  try {
    const onRpc = (rpc: string, code: string, ms: number) => metrics.recordRpc(rpc, code, ms);
    specs = services.createServices(ctx).map((r) => wrapService(r, { verifier, log, maxEchoChars: limits.maxEchoChars, onRpc, rateLimiter }));
    const sessions = sessionInstanceOf(ctx);
    const idle_ns = BigInt(config.SESSION_IDLE_S) * 1_000_000_000n;
    metrics.observe({
      openSessions: sessions ? () => sessions.state.open.size : undefined,
      holdsNearExpiry: sessions
        ? () => {
            const soon = clock() + idle_ns;
            let n = 0;
            for (const o of sessions.state.open.values()) if (o.deadline_ns <= soon) n++;
            return n;
          }
        : undefined,
      reaper: sessions?.state.reaped,
      coalescer: (ledger.client as { stats?: { batches: number; requests: number; events: number } }).stats,
      streamerLag: () => {
        const l = streamerNow()?.lag();
        return l ? { lag_s: Number(l.head_ts - l.cursor_ts) / 1e9, events_behind: l.events_behind } : null;
      },
      streamerFailures: supervisor
        ? () => ({ start: supervisor.state().start_failures, sync: streamerNow()?.streamer.health().failures_total ?? 0 })
        : undefined,
    });
    if (services.onStart) await services.onStart(ctx);
    grpcServer = await startGrpcServer(specs, config.MASQUES_GRPC_ADDR.host, config.MASQUES_GRPC_ADDR.port, log, limits);
    httpServer = await startHttpServer(specs, config.MASQUES_HTTP_ADDR.host, config.MASQUES_HTTP_ADDR.port, log, {
      corsOrigins: config.MASQUES_CORS_ORIGINS,
      limits,
      routes: ((telemetry, dashboard) => (req: Parameters<typeof telemetry>[0], res: Parameters<typeof telemetry>[1]) => telemetry(req, res) || (dashboard?.(req, res) ?? false))(
        telemetryRoutes({
          verifier,
          ingest: { otlp: otlpStore(controlplane.db), sessions, sink: sinkOf, store: groupedStore(sinkOf), clock, analyticsEnabled: config.STREAMER_ENABLED },
          metrics,
          readiness,
          log: log.child({ component: "otlp" }),
          maxBodyBytes: config.OTLP_MAX_BODY_BYTES,
          maxLogRecords: config.OTLP_MAX_LOG_RECORDS,
          metricsPublic: config.MASQUES_METRICS_PUBLIC || isLoopbackHost(config.MASQUES_HTTP_ADDR.host),
        }),
        config.MASQUES_UI_ENABLED
          ? createDashboardRoutes({ distDir: config.MASQUES_UI_DIR ?? DEFAULT_UI_DIR, devLogin, log: log.child({ component: "dashboard" }) })
          : undefined,
      ),
    });
  } catch (err) {
    grpcServer?.front.destroyAll();
    await grpcServer?.front.close();
    grpcServer?.server.forceShutdown();
    await httpServer?.close(0);
    await supervisor?.stop().catch(() => undefined);
    await ledger.close();
    await controlplane.close();
    throw err;
  }
  const g = grpcServer;
  const h = httpServer;
  setServing(g, specs, true);
  h.setServing(true);
  readiness.setServing(true);
  // gRPC health follows the readiness probes: "" and every service = payments readiness;
  // masques.analytics = ClickHouse alone (never takes the payments API out of rotation).
  let healthServing = true;
  onHealth = (ready, analytics) => {
    g.health.setStatus(ANALYTICS_HEALTH_SERVICE, analytics ? "SERVING" : "NOT_SERVING");
    if (ready !== healthServing && !stopping) {
      healthServing = ready;
      setServing(g, specs, ready);
    }
  };
  const healthTimer = setInterval(() => void readiness.check(), 5_000);
  healthTimer.unref();
  void readiness.check();
  const grpcAddr = hostPort(config.MASQUES_GRPC_ADDR.host, g.port);
  const httpAddr = hostPort(config.MASQUES_HTTP_ADDR.host, h.port);
  log.info(
    {
      grpc_addr: grpcAddr,
      http_addr: httpAddr,
      services: specs.map((s) => s.service.typeName),
      auth: verifier.source,
      streamer: supervisor ? (streamerNow()?.describe ?? `retrying: ${supervisor.state().last_error ?? ""}`) : "off",
      dashboard: config.MASQUES_UI_ENABLED ? `http://${httpAddr}/ui/${devLogin ? " (dev login on)" : ""}` : "off",
    },
    "listening",
  );

  let stopping: Promise<void> | undefined;
  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  const stop = (reason = "stop requested"): Promise<void> => {
    stopping ??= (async () => {
      const graceMs = config.MASQUES_SHUTDOWN_GRACE_S * 1000;
      log.info({ reason, grace_s: config.MASQUES_SHUTDOWN_GRACE_S }, "shutting down: draining in-flight calls");
      clearInterval(healthTimer);
      setServing(g, specs, false);
      h.setServing(false);
      readiness.setServing(false);
      const frontClosed = g.front.close();
      const grpcDone = new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          log.warn("grace period over: cancelling remaining gRPC calls");
          g.server.forceShutdown();
          g.front.destroyAll();
          resolve();
        }, graceMs);
        g.server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await Promise.all([grpcDone, h.close(graceMs)]);
      g.front.destroyAll();
      await frontClosed;
      try {
        if (services.onStop) await services.onStop(ctx);
      } catch (err) {
        log.error({ err }, "service shutdown hook failed");
      }
      try {
        await supervisor?.stop();
      } catch (err) {
        log.error({ err }, "streamer shutdown failed");
      }
      await ledger.close();
      try {
        await controlplane.close();
      } catch (err) {
        log.error({ err }, "control-plane close failed");
      }
      await metrics.shutdown().catch(() => undefined);
      log.info("stopped");
      resolveStopped();
    })();
    return stopping;
  };
  return { grpcAddr, httpAddr, stop, stopped };
}
