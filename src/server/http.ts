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
import net from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { cors as connectCors, type ConnectRouter, type ServiceImplSpec } from "@connectrpc/connect";
import type { Logger } from "pino";

export interface HttpServer {
  port: number;
  /** Stop accepting; close idle connections; resolves when all connections are gone. */
  close(graceMs: number): Promise<void>;
  setServing(serving: boolean): void;
}

function register(router: ConnectRouter, spec: ServiceImplSpec): void {
  for (const m of Object.values(spec.methods)) {
    switch (m.kind) {
      case "unary":
        router.rpc(m.method, m.impl);
        break;
      case "server_streaming":
        router.rpc(m.method, m.impl);
        break;
      case "client_streaming":
        router.rpc(m.method, m.impl);
        break;
      case "bidi_streaming":
        router.rpc(m.method, m.impl);
        break;
    }
  }
}

/** Largest request message accepted on either port. */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

type NodeHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

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

export async function startHttpServer(
  services: ServiceImplSpec[],
  host: string,
  port: number,
  log: Logger,
  opts: { corsOrigins?: readonly string[] } = {},
): Promise<HttpServer> {
  let serving = false;
  const handler = connectNodeAdapter({
    routes: (router) => {
      for (const s of services) register(router, s);
    },
    // Plain `curl -d '{...}'` JSON calls without the Connect-Protocol-Version header are fine.
    requireConnectProtocolHeader: false,
    // Same request size limit as the gRPC port (connect-node's default is 4 GiB).
    readMaxBytes: MAX_MESSAGE_BYTES,
    fallback: (req, res) => {
      if (req.method === "GET" && (req.url === "/healthz" || req.url === "/readyz")) {
        res.writeHead(serving ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify({ status: serving ? "SERVING" : "NOT_SERVING" }));
        return;
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: "not_found", message: `no route for ${req.method ?? "?"} ${req.url ?? ""}` }));
    },
  });
  const cors = withCors(opts.corsOrigins ?? [], handler as NodeHandler);
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
    cors(req, res);
  };
  const h1 = http.createServer(handle);
  const h2 = http2.createServer({}, handle);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  h2.on("sessionError", (err) => log.debug({ err }, "http2 session error"));
  h1.on("clientError", (err, socket) => {
    log.debug({ err: err.message }, "http/1.1 client error");
    socket.destroy();
  });

  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length < 3) return;
      socket.removeListener("data", onData);
      socket.pause();
      socket.unshift(head);
      const target = head.subarray(0, 3).toString("latin1") === "PRI" ? h2 : h1;
      target.emit("connection", socket);
      process.nextTick(() => socket.resume());
    };
    socket.on("data", onData);
  });
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(port, host, () => {
      front.off("error", reject);
      resolve();
    });
  });
  const addr = front.address();
  const boundPort = typeof addr === "object" && addr ? addr.port : port;

  return {
    port: boundPort,
    setServing(s) {
      serving = s;
    },
    async close(graceMs) {
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
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
    },
  };
}
