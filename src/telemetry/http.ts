/**
 * Telemetry routes on the daemon's HTTP port (issue 18): OTLP/HTTP in (POST /v1/logs,
 * POST /v1/metrics), Prometheus text out (GET /metrics) and readiness (GET /readyz).
 * Liveness (GET /healthz) stays in src/server/http.ts.
 *
 * Bodies are read with a hard cap (OTLP_MAX_BODY_BYTES, as sent and after gzip), so a refused
 * request never allocates more. Errors follow OTLP/HTTP: 4xx with a google.rpc.Status body in
 * the request's encoding, 503 when the export should be retried. Like an RPC (src/server/pipeline.ts),
 * every export answers with an `x-request-id` and writes one access line (ADR 0118, amendment
 * otlp-edges).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Verifier } from "../server/auth.js";
import { RequestLog } from "../server/context.js";
import { REQUEST_ID_RE } from "../server/pipeline.js";
import type { Principal } from "../server/principal.js";
import { ingestLogs, type IngestDeps } from "./ingest.js";
import type { DaemonMetrics } from "./metrics.js";
import { decodeLogs, decodeMetrics, decompress, encodeResponse, encodeStatus, encodingOf, OtlpError, type OtlpEncoding, type OtlpSignal, type PartialSuccess } from "./otlp.js";
import type { Readiness } from "./readiness.js";

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

export interface TelemetryRoutesDeps {
  verifier: Verifier;
  ingest: IngestDeps;
  metrics: DaemonMetrics;
  readiness: Readiness;
  log: Logger;
  maxBodyBytes: number;
  maxLogRecords: number;
  /** GET /metrics without a token (loopback listener or MASQUES_METRICS_PUBLIC). */
  metricsPublic: boolean;
}

/** Read the body, refusing past `max` bytes (413) without buffering more. */
function readBody(req: Req, max: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? "NaN");
  if (Number.isFinite(declared) && declared > max) {
    req.resume();
    return Promise.reject(new OtlpError(413, `body is ${declared} bytes; at most ${max} accepted (OTLP_MAX_BODY_BYTES)`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > max) {
        done = true;
        req.resume();
        reject(new OtlpError(413, `body is over ${max} bytes (OTLP_MAX_BODY_BYTES)`));
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      if (!done) resolve(Buffer.concat(chunks));
    });
    req.on("error", (err) => {
      if (!done) reject(new OtlpError(400, `body could not be read: ${err.message}`));
    });
  });
}

function send(res: Res, status: number, contentType: string, body: Buffer | string): void {
  (res as ServerResponse).writeHead(status, { "content-type": contentType });
  (res as ServerResponse).end(body);
}

const CONTENT_TYPE: Record<OtlpEncoding, string> = { protobuf: "application/x-protobuf", json: "application/json" };

async function authenticate(d: TelemetryRoutesDeps, req: Req): Promise<Principal> {
  const h = req.headers.authorization;
  try {
    return await d.verifier.authenticate(typeof h === "string" ? h : null);
  } catch (err) {
    throw new OtlpError(401, (err as Error).message);
  }
}

function mayExport(p: Principal): boolean {
  return p.kind === "collector" || p.kind === "admin" || (p.kind === "agent" && p.scopes.includes("ledger:write"));
}

/** The OTLP Export RPC a path serves, named as its gRPC method (the access line's `rpc`). */
const EXPORT_RPC: Record<OtlpSignal, string> = {
  logs: "opentelemetry.proto.collector.logs.v1.LogsService/Export",
  metrics: "opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
};

/** The Connect code name of an OTLP answer's HTTP status (the access line's `code`, as for RPCs). */
const CODE_OF_STATUS: Record<number, string> = {
  400: "InvalidArgument", 401: "Unauthenticated", 403: "PermissionDenied", 404: "NotFound", 405: "Unimplemented",
  413: "ResourceExhausted", 415: "InvalidArgument", 503: "Unavailable",
};

/**
 * The request id (a valid `x-request-id` header, else a new UUID, as src/server/pipeline.ts does),
 * set on the response, and the request logger whose lines carry it.
 */
function beginRequest(d: TelemetryRoutesDeps, signal: OtlpSignal, req: Req, res: Res): RequestLog {
  const given = req.headers["x-request-id"];
  const requestId = typeof given === "string" && REQUEST_ID_RE.test(given) ? given : randomUUID();
  (res as ServerResponse).setHeader("x-request-id", requestId);
  return new RequestLog(d.log, { request_id: requestId, rpc: EXPORT_RPC[signal], protocol: "otlp-http" });
}

function elapsed_ms(t0: number): number {
  return Math.round((performance.now() - t0) * 1000) / 1000;
}

/**
 * The access line of one export, with the shape and level of an RPC's (src/server/pipeline.ts):
 * "rpc" at info when answered 200 (with the partial success when there is one), "rpc rejected"
 * at info when the token is refused, "rpc failed" otherwise, at error for a server-side failure.
 */
function accessLine(log: RequestLog, t0: number, status: number, message: string, partial?: PartialSuccess): void {
  const serverSide = status >= 500 && status !== 503;
  if (!serverSide && !log.isLevelEnabled("info")) return;
  const duration_ms = elapsed_ms(t0);
  if (status === 200) {
    const extra = partial && (partial.rejected > 0 || partial.errorMessage !== "") ? { rejected: partial.rejected, partial_success: partial.errorMessage.slice(0, 1024) } : {};
    log.logger.info({ code: "OK", duration_ms, ...extra }, "rpc");
    return;
  }
  const code = CODE_OF_STATUS[status] ?? "Internal";
  const reason = message.slice(0, 1024);
  if (status === 401) log.logger.info({ code, reason, duration_ms }, "rpc rejected");
  else log.logger[serverSide ? "error" : "info"]({ code, reason, duration_ms }, "rpc failed");
}

async function exportOtlp(d: TelemetryRoutesDeps, signal: OtlpSignal, req: Req, res: Res): Promise<void> {
  const t0 = performance.now();
  const log = beginRequest(d, signal, req, res);
  let encoding: OtlpEncoding | null = null;
  try {
    if (req.method !== "POST") throw new OtlpError(405, `${req.url ?? ""} takes POST (OTLP/HTTP)`);
    encoding = encodingOf(req.headers["content-type"]);
    const p = await authenticate(d, req);
    log.bind("principal", `${p.kind}:${p.id}`);
    if (!mayExport(p)) throw new OtlpError(403, `${p.kind} principal ${JSON.stringify(p.id)} may not export telemetry: agents (ledger:write), collectors and admins only`);
    const raw = await readBody(req, d.maxBodyBytes);
    const body = decompress(raw, req.headers["content-encoding"] as string | undefined, d.maxBodyBytes);
    if (signal === "metrics") {
      const m = decodeMetrics(body, encoding);
      const n = (m.resourceMetrics ?? []).reduce((a, rm) => a + (rm.scopeMetrics ?? []).reduce((b, sm) => b + (sm.metrics ?? []).length, 0), 0);
      d.metrics.recordOtlp("metrics", "accepted", n);
      send(res, 200, CONTENT_TYPE[encoding], encodeResponse("metrics", encoding, { rejected: 0, errorMessage: "" }));
      accessLine(log, t0, 200, "");
      return;
    }
    const logs = decodeLogs(body, encoding);
    const records = (logs.resourceLogs ?? []).reduce((a, rl) => a + (rl.scopeLogs ?? []).reduce((b, sl) => b + (sl.logRecords ?? []).length, 0), 0);
    if (records > d.maxLogRecords) throw new OtlpError(413, `export carries ${records} log records; at most ${d.maxLogRecords} accepted (OTLP_MAX_LOG_RECORDS)`);
    const r = await ingestLogs(d.ingest, p, logs);
    d.metrics.recordOtlp("logs", "accepted", r.events);
    d.metrics.recordOtlp("logs", "billed", r.billed);
    d.metrics.recordOtlp("logs", "duplicate", r.duplicates);
    d.metrics.recordOtlp("logs", "refused", r.rejected);
    send(res, 200, CONTENT_TYPE[encoding], encodeResponse("logs", encoding, r));
    accessLine(log, t0, 200, "", r);
  } catch (err) {
    const e = err instanceof OtlpError ? err : null;
    if (!e) log.logger.error({ err }, "unhandled error in OTLP export");
    const status = e?.status ?? 500;
    const message = e?.message ?? "internal error";
    d.metrics.recordOtlp(signal, "refused", 1);
    // google.rpc.Status codes: INVALID_ARGUMENT 3, UNAUTHENTICATED 16, PERMISSION_DENIED 7,
    // RESOURCE_EXHAUSTED 8, UNAVAILABLE 14, UNIMPLEMENTED 12, INTERNAL 13.
    const code = ({ 400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 8, 415: 3, 503: 14 } as Record<number, number>)[status] ?? 13;
    if (status === 503) (res as ServerResponse).setHeader("retry-after", "5");
    send(res, status, CONTENT_TYPE[encoding ?? "json"], encodeStatus(encoding, code, message));
    accessLine(log, t0, status, message);
  }
}

/**
 * The telemetry request handler: true when it answered (its path), false to fall through.
 */
export function telemetryRoutes(d: TelemetryRoutesDeps): (req: Req, res: Res) => boolean {
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path === "/v1/logs" || path === "/v1/metrics") {
      void exportOtlp(d, path === "/v1/logs" ? "logs" : "metrics", req, res);
      return true;
    }
    if (path === "/metrics" && req.method === "GET") {
      void (async () => {
        if (!d.metricsPublic) {
          try {
            const p = await authenticate(d, req);
            if (p.kind !== "admin") throw new OtlpError(403, "GET /metrics needs an admin token on a non-loopback address (or MASQUES_METRICS_PUBLIC=true)");
          } catch (err) {
            const e = err as OtlpError;
            send(res, e.status ?? 401, "text/plain", `${e.message}\n`);
            return;
          }
        }
        d.metrics.handle(req as IncomingMessage, res as ServerResponse);
      })();
      return true;
    }
    if (path === "/readyz" && req.method === "GET") {
      void d.readiness.check().then((r) => send(res, r.ready ? 200 : 503, "application/json", JSON.stringify(r)));
      return true;
    }
    return false;
  };
}
