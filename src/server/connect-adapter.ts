/**
 * The HTTP port's request handler: connect-node's router and its universal request/response
 * conversion (the same pieces `connectNodeAdapter` is made of), plus three things connect-node
 * does not do for us (docs/adr/0007-edge-errors-and-json-integers.md):
 *
 * 1. JSON requests (`application/json`, Connect unary, what curl sends) are read and parsed here
 *    (bounded by MASQUES_MAX_MESSAGE_BYTES) and their 64-bit integers checked to be canonical
 *    decimals before protobuf-es decodes them (src/server/json-int64.ts); connect-node then gets
 *    the bytes as they arrived and decodes them as before (a second JSON.parse, JSON path only). Enveloped JSON (gRPC, gRPC-Web, Connect streaming with `+json`) is
 *    refused with 415: those protocols are served with the binary codec only, so no JSON form
 *    reaches protobuf-es unchecked.
 * 2. An undecodable binary request is INVALID_ARGUMENT (HTTP 400), not connect's INTERNAL (500).
 * 3. Every error answered on the Connect and gRPC protocols carries an ErrorInfo and is bounded
 *    (src/server/transport-errors.ts), including the ones raised before our pipeline runs
 *    (message too large, unsupported encoding, malformed body).
 *
 * Error bodies are rewritten only when they are errors; successful responses pass through
 * untouched (gRPC responses get one wrapper around their body iterator to look at the trailer).
 */
import type http from "node:http";
import http2 from "node:http2";
import zlib from "node:zlib";
import {
  Code,
  ConnectError,
  createConnectRouter,
  type ConnectRouter,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { UniversalHandler, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorFromJsonBytes, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { JsonValue } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { jsonFieldViolations } from "./json-int64.js";
import type { TransportLimits } from "./limits.js";
import { finalError, transportError } from "./transport-errors.js";

export type NodeHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

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

const ENVELOPED_JSON = new Set([
  "application/connect+json",
  "application/grpc+json",
  "application/grpc-web+json",
  "application/grpc-web-text+json",
]);

function mediaType(header: string | string[] | undefined): string {
  const v = Array.isArray(header) ? header[0] : header;
  if (!v) return "";
  const semi = v.indexOf(";");
  return (semi < 0 ? v : v.slice(0, semi)).trim().toLowerCase();
}

/** Write a Connect-protocol error (JSON body, HTTP status from the code). */
export function writeConnectError(res: NodeResponse, err: ConnectError, status = codeToHttpStatus(err.code)): void {
  const body = errorToJsonBytes(err, undefined);
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { "content-type": "application/json", "content-length": String(body.byteLength) });
  res.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

/** The answer for a path no service serves (HTTP 404, Connect error body with ErrorInfo). */
export function unimplementedRoute(what: string): ConnectError {
  return transportError(Code.Unimplemented, `no route for ${what}`, [], "ROUTE_NOT_FOUND");
}

/**
 * Read a request body up to `maxBytes`. Listeners rather than `for await`: the async iterator
 * destroys the request when it finishes, and node:http then no longer sees the keep-alive
 * connection as idle (shutdown would wait for the whole grace period).
 */
function readBody(req: http.IncomingMessage | http2.Http2ServerRequest, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let failed = false;
    req.on("data", (chunk: Buffer) => {
      if (failed) return;
      total += chunk.length;
      if (total > maxBytes) {
        failed = true;
        reject(transportError(Code.ResourceExhausted, `request message larger than ${maxBytes} bytes`, [], "MESSAGE_TOO_LARGE"));
        return;
      }
      chunks.push(chunk);
    });
    req.once("end", () => {
      if (!failed) resolve(Buffer.concat(chunks, total));
    });
    req.once("error", (err) => {
      if (!failed) reject(err);
      failed = true;
    });
  });
}

function decompress(body: Buffer, encoding: string, maxBytes: number): Buffer {
  const opts = { maxOutputLength: maxBytes };
  try {
    if (encoding === "" || encoding === "identity") return body;
    if (encoding === "gzip") return zlib.gunzipSync(body, opts);
    if (encoding === "br") return zlib.brotliDecompressSync(body, opts);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw transportError(Code.ResourceExhausted, `request message larger than ${maxBytes} bytes`, [], "MESSAGE_TOO_LARGE");
    }
    throw transportError(Code.InvalidArgument, `request body is not valid ${encoding}`, [], "MALFORMED_REQUEST");
  }
  throw transportError(Code.Unimplemented, `content-encoding ${JSON.stringify(encoding.slice(0, 32))} is not supported (gzip, br or identity)`);
}

/**
 * An error answered before the request body was read to its end (too large, malformed): the
 * connection must not be reused for another request while the rest of the body is in flight.
 * HTTP/1.1 closes after the response; an HTTP/2 stream is closed (RST_STREAM NO_ERROR) once the
 * response is sent (RFC 9113 §8.1).
 */
function closeIfUnread(req: http.IncomingMessage | http2.Http2ServerRequest, res: NodeResponse): void {
  if (req.complete) return;
  if (req instanceof http2.Http2ServerRequest) {
    const stream = req.stream;
    res.once("finish", () => {
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    });
  } else if (!res.headersSent) res.setHeader("connection", "close");
}

/** connect's "parse binary: ..." INTERNAL is a client's malformed message, not a server fault. */
function clientFault(err: ConnectError): ConnectError {
  if (err.code === Code.Internal && err.rawMessage.startsWith("parse binary")) {
    return transportError(Code.InvalidArgument, `request message is not valid protobuf for this method (${err.rawMessage.slice("parse binary: ".length)})`, [], "MALFORMED_REQUEST");
  }
  return err;
}

async function fixConnectError(uRes: UniversalServerResponse, maxEcho: number): Promise<UniversalServerResponse> {
  if (uRes.status < 400 || !uRes.body) return uRes;
  const chunks: Uint8Array[] = [];
  for await (const c of uRes.body) chunks.push(c);
  const bytes = Buffer.concat(chunks);
  const passThrough = { ...uRes, body: (async function* () { yield bytes; })() };
  let parsed: ConnectError;
  try {
    // connect compresses error bodies too when the client accepts it.
    const encoding = uRes.header?.get("content-encoding") ?? "";
    const plain = encoding === "gzip" ? zlib.gunzipSync(bytes) : encoding === "br" ? zlib.brotliDecompressSync(bytes) : bytes;
    parsed = errorFromJsonBytes(plain, undefined, new ConnectError("undecodable error body", Code.Internal));
  } catch {
    return passThrough;
  }
  const fixed = finalError(clientFault(parsed), maxEcho);
  if (fixed === parsed) return passThrough;
  const body = errorToJsonBytes(fixed, undefined);
  const header = new Headers(uRes.header);
  header.delete("content-encoding");
  header.set("content-length", String(body.byteLength));
  return { status: codeToHttpStatus(fixed.code), header, body: (async function* () { yield body; })(), trailer: uRes.trailer };
}

/** gRPC over HTTP/2 on this port: complete the status in the trailer once the body is done. */
function fixGrpcTrailer(uRes: UniversalServerResponse, maxEcho: number): UniversalServerResponse {
  const body = uRes.body;
  const trailer = uRes.trailer;
  if (!body || !trailer) return uRes;
  return {
    ...uRes,
    body: (async function* () {
      yield* body;
      const status = Number(trailer.get("grpc-status") ?? "0");
      if (status === 0 || trailer.has("grpc-status-details-bin")) return;
      const message = decodeURIComponent(trailer.get("grpc-message") ?? "");
      const fixed = finalError(clientFault(new ConnectError(message, status as Code)), maxEcho);
      trailer.delete("grpc-message");
      setTrailerStatus(trailer, fixed);
    })(),
  };
}

/**
 * The node request handler for the HTTP port. `fallback` answers paths no service serves.
 */
export function createConnectHandler(
  services: ServiceImplSpec[],
  limits: TransportLimits,
  log: Logger,
  fallback: NodeHandler,
): NodeHandler {
  const router = createConnectRouter({
    // Plain `curl -d '{...}'` JSON calls without the Connect-Protocol-Version header are fine.
    requireConnectProtocolHeader: false,
    // Same request size limit as the gRPC port (connect-node's default is 4 GiB).
    readMaxBytes: limits.maxMessageBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
  });
  for (const s of services) register(router, s);
  const paths = new Map<string, UniversalHandler>();
  for (const h of router.handlers) paths.set(h.requestPath, h);
  const maxEcho = limits.maxEchoChars;

  const run = (h: UniversalHandler, req: Parameters<NodeHandler>[0], res: NodeResponse, readBody: Uint8Array | undefined, contentType: string): void => {
    const fromNode = universalRequestFromNodeRequest(req, res, undefined, undefined);
    // A body this module already read is handed over as the bytes that arrived, so connect
    // decodes it exactly as it would have (its JSON options, its decompression).
    const uReq = readBody ? { ...fromNode, body: (async function* () { yield readBody; })() } : fromNode;
    h(uReq)
      .then((uRes) => {
        if (contentType === "application/json" || contentType === "application/proto") return fixConnectError(uRes, maxEcho);
        if (contentType.startsWith("application/grpc") && !contentType.startsWith("application/grpc-web")) return fixGrpcTrailer(uRes, maxEcho);
        return uRes;
      })
      .then((uRes) => {
        if (uRes.status >= 400) closeIfUnread(req, res);
        return universalResponseToNodeResponse(uRes, res);
      })
      .catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) return;
        log.error({ err: reason, rpc: h.requestPath }, "HTTP handler failed");
        // Never leave a caller waiting: answer if nothing was sent yet, else cut the response.
        if (!res.headersSent) writeConnectError(res, transportError(Code.Internal, "internal error"));
        else res.destroy();
      });
  };

  const serveJson = async (h: UniversalHandler, req: Parameters<NodeHandler>[0], res: NodeResponse): Promise<void> => {
    let raw: Buffer;
    try {
      raw = await readBody(req, limits.maxMessageBytes);
      const encoding = mediaType(req.headers["content-encoding"]);
      const text = decompress(raw, encoding, limits.maxMessageBytes).toString("utf8");
      let json: JsonValue;
      try {
        json = JSON.parse(text) as JsonValue;
      } catch {
        throw transportError(Code.InvalidArgument, "request body is not valid JSON", [], "MALFORMED_REQUEST");
      }
      const violations = jsonFieldViolations(h.method.input, json);
      if (violations.length > 0) {
        const message = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
        throw transportError(Code.InvalidArgument, message, violations, "INVALID_ARGUMENT");
      }
    } catch (err) {
      closeIfUnread(req, res);
      writeConnectError(res, finalError(ConnectError.from(err), maxEcho));
      return;
    }
    run(h, req, res, raw, "application/json");
  };

  return (req, res) => {
    const url = req.url ?? "";
    const q = url.indexOf("?");
    const h = paths.get(q < 0 ? url : url.slice(0, q));
    if (!h) {
      fallback(req, res);
      return;
    }
    const contentType = mediaType(req.headers["content-type"]);
    if (req.method === "POST" && contentType === "application/json") {
      void serveJson(h, req, res);
      return;
    }
    if (ENVELOPED_JSON.has(contentType)) {
      writeConnectError(
        res,
        transportError(Code.InvalidArgument, `content-type ${contentType} is not served: JSON is accepted as application/json (Connect unary); gRPC, gRPC-Web and Connect streaming use the binary (proto) codec`, [], "UNSUPPORTED_MEDIA_TYPE"),
        415,
      );
      return;
    }
    run(h, req, res, undefined, contentType);
  };
}
