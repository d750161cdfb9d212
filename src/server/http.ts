/**
 * Connect, gRPC-Web and JSON over HTTP/1.1 and HTTP/2 cleartext (h2c, prior knowledge) on one
 * port, served by connect-node from the same pipeline-wrapped handlers as the gRPC port.
 *
 * Node cannot serve HTTP/1.1 and h2c on one cleartext port by itself (ALPN needs TLS), so a
 * tiny net.Server peeks at the first bytes of each connection: the HTTP/2 connection preface
 * starts with "PRI", no HTTP/1.x request does. The socket is then handed to an http or http2
 * server. `GET /healthz` answers without authentication (container health checks).
 */
import http from "node:http";
import http2 from "node:http2";
import type { Duplex } from "node:stream";
import { Code, cors as connectCors, type ConnectError, type ServiceImplSpec } from "@connectrpc/connect";
import { errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "pino";
import { createConnectHandler, unimplementedRoute, writeConnectError, type NodeHandler } from "./connect-adapter.js";
import { DEFAULT_LIMITS, boundEcho, listenFront, type TransportLimits } from "./limits.js";
import { transportError } from "./transport-errors.js";

export interface HttpServer {
  port: number;
  /** Stop accepting; close idle connections; resolves when all connections are gone. */
  close(graceMs: number): Promise<void>;
  setServing(serving: boolean): void;
}

const CORS_ALLOW_METHODS = connectCors.allowedMethods.join(", ");
const CORS_ALLOW_HEADERS = [...connectCors.allowedHeaders, "Authorization", "X-Request-Id"].join(", ");
const CORS_EXPOSE_HEADERS = [...connectCors.exposedHeaders, "X-Request-Id"].join(", ");

/**
 * CORS for browser clients (Connect / gRPC-Web) from an explicit origin allowlist
 * (MASQUES_CORS_ORIGINS); nothing is added for other origins. Preflights are answered here.
 * Credentials are bearer tokens in a header, never cookies, so no Allow-Credentials.
 */
function withCors(origins: readonly string[], next: NodeHandler): NodeHandler {
  if (origins.length === 0) return next;
  const allowed = new Set(origins);
  return (req, res) => {
    const origin = req.headers.origin;
    if (typeof origin === "string" && allowed.has(origin)) {
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("vary", "Origin");
      if (req.method === "OPTIONS" && req.headers["access-control-request-method"]) {
        res.setHeader("access-control-allow-methods", CORS_ALLOW_METHODS);
        res.setHeader("access-control-allow-headers", CORS_ALLOW_HEADERS);
        res.setHeader("access-control-max-age", "7200");
        res.statusCode = 204;
        res.end();
        return;
      }
      res.setHeader("access-control-expose-headers", CORS_EXPOSE_HEADERS);
    }
    next(req, res);
  };
}

export interface HttpServerOptions {
  corsOrigins?: readonly string[];
  limits?: TransportLimits;
  /**
   * Extra plain-HTTP routes tried before the 404 (telemetry: /v1/logs, /v1/metrics, /metrics,
   * /readyz; the dashboard at /ui/): true when answered.
   */
  routes?: (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => boolean;
}

const HEALTH_PATHS = ["/healthz", "/readyz"];

/** The fixed HTTP/1.1 health answer sent to connections over the cap (then closed). */
function healthAnswer(serving: boolean): string {
  const body = JSON.stringify({ status: serving ? "SERVING" : "NOT_SERVING" });
  return (
    `HTTP/1.1 ${serving ? "200 OK" : "503 Service Unavailable"}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

export async function startHttpServer(
  services: ServiceImplSpec[],
  host: string,
  port: number,
  log: Logger,
  opts: HttpServerOptions = {},
): Promise<HttpServer> {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  let serving = false;
  const handler = createConnectHandler(services, limits, log, (req, res) => {
    if (opts.routes?.(req, res)) return;
    if (req.method === "GET" && HEALTH_PATHS.includes(req.url ?? "")) {
      res.writeHead(serving ? 200 : 503, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: serving ? "SERVING" : "NOT_SERVING" }));
      return;
    }
    if (opts.routes?.(req, res)) return;
    const path = boundEcho(`${req.method ?? "?"} ${req.url ?? ""}`, limits.maxEchoChars);
    writeConnectError(res, unimplementedRoute(path), 404);
  });
  const limited = withHeaderLimit(limits, withRequestTimeout(limits.requestTimeoutMs, withCors(opts.corsOrigins ?? [], handler)));
  // Requests whose response has not closed yet: close() returns only once they are all closed, so
  // every handler cut off at the end of the grace has seen its abort signal before the daemon
  // goes on to close the ledger.
  let inFlight = 0;
  let drained: (() => void) | null = null;
  const handle: NodeHandler = (req, res) => {
    inFlight++;
    res.once("close", () => {
      if (--inFlight === 0) drained?.();
    });
    limited(req, res);
  };
  // HTTP/1.1: header, request and keep-alive (idle) deadlines and the header size are node:http
  // server options; the checks run every second.
  const h1 = http.createServer(
    {
      headersTimeout: limits.headerTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, limits.headerTimeoutMs),
      maxHeaderSize: limits.maxMetadataBytes,
    },
    handle,
  );
  // node:http tracks connections (closeIdleConnections, headersTimeout / requestTimeout checks)
  // only from its 'listening' event; h1 never listens itself (the front hands it sockets).
  h1.emit("listening");
  // HTTP/2: streams per connection, header list size and session memory are node:http2
  // settings; a session without any frame for the idle timeout is closed (setTimeout below).
  const h2 = http2.createServer(
    {
      settings: { maxConcurrentStreams: limits.maxStreamsPerConnection, maxHeaderListSize: limits.maxMetadataBytes },
      maxSessionMemory: sessionMemoryMb(limits),
      maxHeaderListPairs: 128,
    },
    handle,
  );
  // node:http2 destroys a session that timed out when the server has no 'timeout' listener.
  h2.setTimeout(limits.idleTimeoutMs);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  h2.on("sessionError", (err) => log.debug({ err }, "http2 session error"));
  h1.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    log.debug({ err: err.message, code: err.code }, "http/1.1 client error");
    answerClientError(err, socket, limits);
  });

  const front = await listenFront({
    host,
    port,
    variable: "MASQUES_HTTP_ADDR",
    limits,
    log,
    dispatch(socket, head) {
      const target = head.subarray(0, 3).toString("latin1") === "PRI" ? h2 : h1;
      target.emit("connection", socket);
    },
    overCap(socket, head) {
      // Health checks keep answering while the connection cap is reached: a GET of a health
      // path gets a fixed answer and the connection is closed; anything else is closed at once.
      const line = head.subarray(0, 64).toString("latin1");
      if (HEALTH_PATHS.some((p) => line.startsWith(`GET ${p} `) || line.startsWith(`GET ${p}?`))) {
        socket.end(healthAnswer(serving));
      } else socket.destroy();
    },
  });
  const sockets = front.sockets;

  return {
    port: front.port,
    setServing(s) {
      serving = s;
    },
    async close(graceMs) {
      const closed = front.close();
      h1.closeIdleConnections();
      for (const s of sessions) s.close();
      const deadline = setTimeout(() => {
        for (const s of sessions) s.destroy();
        h1.closeAllConnections();
        for (const sock of sockets) sock.destroy();
      }, graceMs);
      // Idle keep-alive HTTP/1.1 connections that become idle after their response.
      const sweep = setInterval(() => h1.closeIdleConnections(), 50);
      await closed;
      if (inFlight > 0) await new Promise<void>((resolve) => (drained = resolve));
      clearTimeout(deadline);
      clearInterval(sweep);
      // Stops node:http's connection-checking interval (the server itself never listened).
      h1.close(() => {});
    },
  };
}

/**
 * Answer a request node:http refused before any handler ran, then close the connection: a header
 * block over MASQUES_MAX_METADATA_BYTES gets 431 RESOURCE_EXHAUSTED (as on HTTP/2, see
 * withHeaderLimit), a request it cannot parse 400 INVALID_ARGUMENT, each a Connect error body
 * with ErrorInfo. A connection already reset or mid-response is only destroyed (node:http's own
 * rule for its default answer). The request and header timeouts keep node:http's 408.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, limits: TransportLimits): void {
  const midResponse = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (err.code === "ECONNRESET" || !socket.writable || midResponse) {
    socket.destroy();
    return;
  }
  let status: number;
  let error: ConnectError;
  if (err.code === "HPE_HEADER_OVERFLOW") {
    status = 431;
    error = transportError(
      Code.ResourceExhausted,
      `request headers are over ${limits.maxMetadataBytes} bytes (MASQUES_MAX_METADATA_BYTES)`,
      [],
      "METADATA_TOO_LARGE",
    );
  } else if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    status = 408;
    error = transportError(Code.DeadlineExceeded, "request did not arrive in time (MASQUES_HEADER_TIMEOUT_S)");
  } else {
    status = 400;
    error = transportError(Code.InvalidArgument, "malformed HTTP/1.1 request", [], "MALFORMED_REQUEST");
  }
  const body = Buffer.from(errorToJsonBytes(error, undefined));
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\ncontent-type: application/json\r\n` +
      `content-length: ${body.byteLength}\r\nconnection: close\r\n\r\n${body.toString("utf8")}`,
  );
}

/**
 * node:http2 bounds a session's buffered memory in MiB (default 10). Enough for a full window of
 * every allowed stream plus one message; beyond it new streams are refused (ENHANCE_YOUR_CALM).
 */
function sessionMemoryMb(limits: TransportLimits): number {
  return Math.max(10, Math.ceil((limits.maxMessageBytes * 2) / (1024 * 1024)));
}

/**
 * HTTP/2 requests whose header block is over MASQUES_MAX_METADATA_BYTES get 431 and a Connect
 * error (RESOURCE_EXHAUSTED, ErrorInfo): node:http2 advertises SETTINGS_MAX_HEADER_LIST_SIZE but
 * does not enforce it. HTTP/1.1 is bounded by node:http's maxHeaderSize before this runs.
 * One loop over the request's raw headers per HTTP/2 request.
 */
function withHeaderLimit(limits: TransportLimits, next: NodeHandler): NodeHandler {
  return (req, res) => {
    if (req instanceof http2.Http2ServerRequest) {
      let size = 0;
      const raw = req.rawHeaders;
      for (let i = 0; i + 1 < raw.length; i += 2) size += (raw[i]?.length ?? 0) + (raw[i + 1]?.length ?? 0) + 32;
      if (size > limits.maxMetadataBytes) {
        req.resume();
        writeConnectError(
          res,
          transportError(Code.ResourceExhausted, `request headers are ${size} bytes; at most ${limits.maxMetadataBytes} accepted (MASQUES_MAX_METADATA_BYTES)`, [], "METADATA_TOO_LARGE"),
          431,
        );
        return;
      }
    }
    next(req, res);
  };
}

/**
 * A request whose body has not fully arrived `timeoutMs` after its headers is cut: HTTP/2 streams
 * are reset (the connection stays), HTTP/1.1 is already covered by node:http's requestTimeout.
 * One timer per HTTP/2 request on this port, cleared when the body ends (O(1)).
 */
function withRequestTimeout(timeoutMs: number, next: NodeHandler): NodeHandler {
  return (req, res) => {
    if (req instanceof http2.Http2ServerRequest && !req.readableEnded) {
      const stream = req.stream;
      const timer = setTimeout(() => {
        if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
      }, timeoutMs);
      req.once("end", () => clearTimeout(timer));
      stream.once("close", () => clearTimeout(timer));
    }
    next(req, res);
  };
}
