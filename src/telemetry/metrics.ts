/**
 * The daemon's own metrics (issue 18, ADR 0116), with the OpenTelemetry JS SDK: one
 * MeterProvider whose readers are the Prometheus exporter (text served at GET /metrics on the
 * HTTP port, never its own server) and, when MASQUES_METRICS_OTLP_ENDPOINT is set, a periodic
 * OTLP/HTTP push. Names follow the OpenTelemetry semantic conventions where one exists
 * (`rpc.server.duration`, with `rpc.method` and `rpc.grpc.status_code`-style attributes).
 *
 * The per-RPC cost is one histogram record with a cached attribute object (measured with
 * `npm run bench`, figures in docs/telemetry.md).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ValueType, type Attributes, type Histogram, type Counter, type Meter, type ObservableResult } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type CollectionResult,
  type DataPoint,
  type Histogram as HistogramValue,
  type MetricProducer,
  type MetricReader,
} from "@opentelemetry/sdk-metrics";
import type { Client } from "tigerbeetle-node";

export interface MetricsOptions {
  /** OTLP/HTTP metrics URL; unset = no push. */
  otlpEndpoint?: string;
  exportIntervalMs?: number;
  serviceName?: string;
}

/** Gauges read at collection time (each callback must be cheap and never throw). */
export interface GaugeSources {
  openSessions?: () => number;
  /** Open sessions whose hold times out within the next SESSION_IDLE_S. */
  holdsNearExpiry?: () => number;
  streamerLag?: () => { lag_s: number; events_behind: number } | null;
  /** The coalescer's running totals (src/ledger/coalescer.ts): ledger requests sent, caller requests, events. */
  coalescer?: { batches: number; requests: number; events: number };
  /** Reaper actions since start: sessions reaped idle / at max length / recovered, holds found expired. */
  reaper?: Readonly<Record<"idle" | "max_length" | "recover" | "expired", number>>;
  /**
   * Analytics retries since start (ADR 0119): failed attempts to start the streamer (open +
   * migrate ClickHouse) and failed copy passes of a running streamer. Running totals.
   */
  streamerFailures?: () => { start: number; sync: number };
}

/** The ledger operations timed by `instrumentLedger` (the tigerbeetle-node Client methods). */
export const LEDGER_OPERATIONS = [
  "createAccounts",
  "createTransfers",
  "lookupAccounts",
  "lookupTransfers",
  "getAccountTransfers",
  "getAccountBalances",
  "queryAccounts",
  "queryTransfers",
] as const;
export type LedgerOperation = (typeof LEDGER_OPERATIONS)[number];

/** Recording handles and the /metrics handler. */
export interface DaemonMetrics {
  readonly meter: Meter;
  /** One RPC finished: `rpc` = "package.Service/Method", `code` = Connect code name ("OK", …). */
  recordRpc(rpc: string, code: string, duration_ms: number): void;
  /** OTLP ingest outcome counts. */
  recordOtlp(signal: "logs" | "metrics", outcome: "accepted" | "billed" | "duplicate" | "refused", n: number): void;
  /**
   * The same ledger port, each request timed into `db.client.operation.duration` (seconds, by
   * `db.operation.name`, with `db.system.name` = "tigerbeetle" and `error.type` on a rejected
   * request): the latency a caller sees, coalescer wait included. Results and errors pass
   * through unchanged; `destroy` is not timed.
   */
  instrumentLedger(client: Client): Client;
  /** Register gauges (called once the services exist). */
  observe(sources: GaugeSources): void;
  /** Serve the Prometheus text exposition. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

const MAX_RPC_SERIES = 2_000;

/** Build the provider and instruments. */
export function createDaemonMetrics(opts: MetricsOptions = {}): DaemonMetrics {
  const ledgerLatency = new LedgerLatencyProducer();
  const prometheus = new PrometheusExporter({ preventServerStart: true, metricProducers: [ledgerLatency] });
  const readers: MetricReader[] = [prometheus];
  if (opts.otlpEndpoint) {
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: opts.otlpEndpoint }),
        metricProducers: [ledgerLatency],
        exportIntervalMillis: opts.exportIntervalMs ?? 60_000,
      }),
    );
  }
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ "service.name": opts.serviceName ?? "masques-ledger" }),
    readers,
  });
  const meter = provider.getMeter("masques-ledger");
  const rpcDuration: Histogram = meter.createHistogram("rpc.server.duration", {
    description: "Duration of RPCs served (every transport), by method and code",
    unit: "ms",
    advice: { explicitBucketBoundaries: [0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000, 5000] },
  });
  const otlpEvents: Counter = meter.createCounter("masques.otlp.records", { description: "OTLP records received, by signal and outcome" });
  const attrCache = new Map<string, Attributes>();
  const attrsOf = (rpc: string, code: string): Attributes => {
    const key = `${rpc}\0${code}`;
    let a = attrCache.get(key);
    if (!a) {
      const slash = rpc.lastIndexOf("/");
      a = { "rpc.service": rpc.slice(0, slash), "rpc.method": rpc.slice(slash + 1), "rpc.connect_rpc.error_code": code };
      if (attrCache.size < MAX_RPC_SERIES) attrCache.set(key, a);
    }
    return a;
  };
  return {
    meter,
    recordRpc(rpc, code, duration_ms) {
      rpcDuration.record(duration_ms, attrsOf(rpc, code));
    },
    instrumentLedger(client) {
      return instrumentLedger(client, ledgerLatency);
    },
    recordOtlp(signal, outcome, n) {
      if (n > 0) otlpEvents.add(n, { signal, outcome });
    },
    observe(src) {
      const gauge = (name: string, description: string, unit: string, read: (r: ObservableResult) => void) =>
        meter.createObservableGauge(name, { description, unit, valueType: ValueType.DOUBLE }).addCallback((r) => {
          try {
            read(r);
          } catch {
            // a gauge never breaks a scrape
          }
        });
      if (src.openSessions) gauge("masques.sessions.open", "Open masque sessions in this daemon's index", "{session}", (r) => r.observe(src.openSessions!()));
      if (src.holdsNearExpiry) gauge("masques.holds.near_expiry", "Open sessions whose ledger hold times out within SESSION_IDLE_S", "{session}", (r) => r.observe(src.holdsNearExpiry!()));
      if (src.streamerLag) {
        gauge("masques.streamer.lag", "How far ClickHouse is behind the ledger", "s", (r) => {
          const l = src.streamerLag!();
          if (l) r.observe(l.lag_s);
        });
        gauge("masques.streamer.events_behind", "Ledger events read but not yet in ClickHouse", "{event}", (r) => {
          const l = src.streamerLag!();
          if (l) r.observe(l.events_behind);
        });
      }
      const c = src.coalescer;
      if (c) {
        const counter = (name: string, description: string, unit: string, read: () => number) =>
          meter.createObservableCounter(name, { description, unit }).addCallback((r) => r.observe(read()));
        counter("masques.ledger.batches", "Create requests sent to the ledger by the coalescer (merged batches)", "{request}", () => c.batches);
        counter("masques.ledger.requests", "Create requests received by the coalescer from callers; requests / batches = merge ratio", "{request}", () => c.requests);
        counter("masques.ledger.events", "Events sent to the ledger in create requests; events / batches = mean batch size", "{event}", () => c.events);
        gauge("masques.ledger.merge_ratio", "Caller requests per ledger request since start (coalescer)", "1", (r) => r.observe(c.batches === 0 ? 0 : c.requests / c.batches));
      }
      const rp = src.reaper;
      if (rp) {
        meter
          .createObservableCounter("masques.reaper.actions", { description: "Reaper actions since start, by action (idle, max_length, recover, expired)" })
          .addCallback((r) => {
            for (const action of ["idle", "max_length", "recover", "expired"] as const) r.observe(rp[action], { action });
          });
      }
      const sf = src.streamerFailures;
      if (sf) {
        meter
          .createObservableCounter("masques.streamer.failures", {
            description: "Analytics retries since start, by phase: start (opening / migrating ClickHouse failed) and sync (a copy pass failed)",
          })
          .addCallback((r) => {
            const f = sf();
            r.observe(f.start, { phase: "start" });
            r.observe(f.sync, { phase: "sync" });
          });
      }
      gauge("process.memory.usage", "Resident set size of the daemon", "By", (r) => r.observe(process.memoryUsage().rss));
      gauge("process.memory.heap_used", "V8 heap in use", "By", (r) => r.observe(process.memoryUsage().heapUsed));
    },
    handle(req, res) {
      prometheus.getMetricsRequestHandler(req, res);
    },
    shutdown: () => provider.shutdown(),
  };
}

/** Bucket upper bounds (inclusive, seconds): the embedded engine's tens of µs to a remote cluster's timeouts. */
const LEDGER_LATENCY_BOUNDS_S = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

interface LatencySeries {
  readonly attributes: Attributes;
  /** counts[i] = requests with duration <= bounds[i] (and > bounds[i-1]); the last slot is > the last bound. */
  readonly counts: Float64Array;
  sum_s: number;
  count: number;
  min_s: number;
  max_s: number;
}

/**
 * Ledger request latency, `db.client.operation.duration` (OpenTelemetry's database-client
 * histogram, seconds), aggregated here and handed to the readers as a MetricProducer (the SDK's
 * hook for pre-aggregated data). Why not a Histogram instrument: its `record` hashes the
 * attributes on every call (~3 µs on these machines), and a Don makes several ledger requests;
 * this costs a bucket increment. Cumulative, like every other instrument here. Series are fixed:
 * one per (operation, outcome).
 */
class LedgerLatencyProducer implements MetricProducer {
  private readonly start = hrTimeOf(Date.now());
  private readonly series = new Map<string, LatencySeries>();

  /** The series of these attributes (looked up at wiring time, never per request). */
  series_for(attributes: Attributes): LatencySeries {
    const key = JSON.stringify(attributes);
    let s = this.series.get(key);
    if (!s) {
      s = { attributes, counts: new Float64Array(LEDGER_LATENCY_BOUNDS_S.length + 1), sum_s: 0, count: 0, min_s: Infinity, max_s: -Infinity };
      this.series.set(key, s);
    }
    return s;
  }

  record(s: LatencySeries, duration_s: number): void {
    let i = 0;
    while (i < LEDGER_LATENCY_BOUNDS_S.length && duration_s > LEDGER_LATENCY_BOUNDS_S[i]!) i++;
    s.counts[i]!++;
    s.sum_s += duration_s;
    s.count++;
    if (duration_s < s.min_s) s.min_s = duration_s;
    if (duration_s > s.max_s) s.max_s = duration_s;
  }

  collect(): Promise<CollectionResult> {
    const end = hrTimeOf(Date.now());
    const dataPoints: DataPoint<HistogramValue>[] = [];
    for (const s of this.series.values()) {
      if (s.count === 0) continue;
      dataPoints.push({
        startTime: this.start,
        endTime: end,
        attributes: s.attributes,
        value: { buckets: { boundaries: LEDGER_LATENCY_BOUNDS_S, counts: Array.from(s.counts) }, sum: s.sum_s, count: s.count, min: s.min_s, max: s.max_s },
      });
    }
    return Promise.resolve({
      resourceMetrics: {
        resource: resourceFromAttributes({}),
        scopeMetrics: [
          {
            scope: { name: "masques-ledger" },
            metrics: [
              {
                descriptor: {
                  name: "db.client.operation.duration",
                  description: "Duration of ledger requests (TigerBeetle Client port, coalescer wait included), by operation",
                  unit: "s",
                  valueType: ValueType.DOUBLE,
                },
                aggregationTemporality: AggregationTemporality.CUMULATIVE,
                dataPointType: DataPointType.HISTOGRAM,
                dataPoints,
              },
            ],
          },
        ],
      },
      errors: [],
    });
  }
}

function hrTimeOf(ms: number): [number, number] {
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
}

/**
 * Wrap a ledger port so every request is timed into `latency` by operation and outcome. A plain
 * object of bound methods: the client's own extras (e.g. the coalescer's `stats`) are read from
 * the client itself.
 */
function instrumentLedger(client: Client, latency: LedgerLatencyProducer): Client {
  const timed = <A, R>(op: LedgerOperation, inner: (arg: A) => Promise<R>): ((arg: A) => Promise<R>) => {
    const okAttrs: Attributes = { "db.system.name": "tigerbeetle", "db.operation.name": op };
    const ok = latency.series_for(okAttrs);
    const failed = latency.series_for({ ...okAttrs, "error.type": "rejected" });
    return (arg: A) => {
      const t0 = performance.now();
      const p = inner(arg);
      p.then(
        () => latency.record(ok, (performance.now() - t0) / 1000),
        () => latency.record(failed, (performance.now() - t0) / 1000),
      );
      return p;
    };
  };
  return {
    createAccounts: timed("createAccounts", (b) => client.createAccounts(b)),
    createTransfers: timed("createTransfers", (b) => client.createTransfers(b)),
    lookupAccounts: timed("lookupAccounts", (b) => client.lookupAccounts(b)),
    lookupTransfers: timed("lookupTransfers", (b) => client.lookupTransfers(b)),
    getAccountTransfers: timed("getAccountTransfers", (f) => client.getAccountTransfers(f)),
    getAccountBalances: timed("getAccountBalances", (f) => client.getAccountBalances(f)),
    queryAccounts: timed("queryAccounts", (f) => client.queryAccounts(f)),
    queryTransfers: timed("queryTransfers", (f) => client.queryTransfers(f)),
    destroy: () => client.destroy(),
  };
}
