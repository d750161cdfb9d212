/**
 * Native gRPC transport: serves Connect v2 ServiceImpl handlers (the same objects connect-node
 * serves) on a @grpc/grpc-js server, plus grpc.health.v1 and server reflection v1 + v1alpha.
 *
 * Hand-written adapter (no library maps protobuf-es v2 descriptors + Connect handlers onto
 * grpc-js): messages are (de)serialised by code generated from the protobuf-es descriptors
 * (binary-encoder.ts, binary-decoder.ts: protobuf-es's own bytes and messages);
 * the grpc-js call becomes a Connect HandlerContext (metadata -> request headers, deadline ->
 * timeoutMs, cancellation -> abort signal); a thrown ConnectError becomes a gRPC status whose
 * trailers carry its metadata and `grpc-status-details-bin` (google.rpc.Status with the error
 * details, encoded by Connect's own gRPC protocol code), so structured details reach grpc-js,
 * Connect, grpcurl and buf curl clients alike. grpc-js was chosen over connect-node's gRPC
 * handler for this port by measurement (docs/adr/0001-transport-stack.md).
 */
import { constants as http2Constants } from "node:http2";
import path from "node:path";
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import * as protoLoader from "@grpc/proto-loader";
import { HealthImplementation } from "grpc-health-check";
import {
  fromBinary,
  toBinary,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageShape,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type DescriptorProto, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createContextValues,
  type HandlerContext,
  type MethodImplSpec,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Logger } from "pino";
import { DEFAULT_LIMITS, listenFront, type Front, type TransportLimits } from "./limits.js";
import { finalError, transportError } from "./transport-errors.js";
import { messageEncoder } from "./binary-encoder.js";
import { messageDecoder } from "./binary-decoder.js";

type Msg = MessageShape<DescMessage>;

function serializer(desc: DescMessage): (m: Msg) => Buffer {
  return (m) => {
    const bytes = toBinary(desc, m);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/**
 * Replies are encoded in one pass into a pre-sized Buffer (src/server/binary-encoder.ts: the
 * bytes protobuf-es's toBinary writes), straight from what the handler returned: a message or an
 * init shape, without create() filling every default first (ADR 0128).
 */
function replySerializer(desc: DescMessage): (m: Msg) => Buffer {
  return messageEncoder(desc);
}

/**
 * A request that is not valid protobuf for its method. grpc-js answers INTERNAL without details
 * when a deserializer throws; ours returns this marker instead and the handler answers
 * INVALID_ARGUMENT with an ErrorInfo (one identity check per call).
 */
class Malformed {
  constructor(readonly reason: string) {}
}

function deserializer(desc: DescMessage): (b: Buffer) => Msg {
  return (b) => {
    try {
      return fromBinary(desc, b);
    } catch (err) {
      return new Malformed(err instanceof Error ? err.message : String(err)) as unknown as Msg;
    }
  };
}

/**
 * Requests are decoded by code generated per message type (src/server/binary-decoder.ts: the
 * message protobuf-es's fromBinary gives, or its error, ADR 0131); a request protobuf-es refuses
 * becomes Malformed as above.
 */
function requestDeserializer(desc: DescMessage): (b: Buffer) => Msg {
  const decode = messageDecoder(desc);
  return (b) => {
    try {
      return decode(b);
    } catch (err) {
      return new Malformed(err instanceof Error ? err.message : String(err)) as unknown as Msg;
    }
  };
}

function malformedError(m: Malformed): ConnectError {
  return transportError(Code.InvalidArgument, `request message is not valid protobuf for this method (${m.reason})`, [], "MALFORMED_REQUEST");
}

/**
 * grpc-js metadata -> header entries for the Connect HandlerContext (binary `-bin` values
 * base64-encoded, as on the wire). Entries rather than a Headers object: createHandlerContext
 * builds its own Headers, and building one twice is measurable per call.
 */
export function metadataToHeaders(md: grpc.Metadata): [string, string][] {
  const out: [string, string][] = [];
  const map = md.getMap();
  for (const key in map) {
    if (key.charCodeAt(0) === 58 /* ":" */) continue;
    for (const v of md.get(key)) {
      const value = typeof v === "string" ? v : Buffer.from(v).toString("base64");
      // Only values representable as HTTP header values (never fail a call over metadata).
      if (!/[\r\n\0]/.test(value)) out.push([key, value]);
    }
  }
  return out;
}

function headersToMetadata(h: Headers, into = new grpc.Metadata()): grpc.Metadata {
  h.forEach((value, key) => {
    const k = key.toLowerCase();
    if (k === "grpc-status" || k === "grpc-message" || k.startsWith(":")) return;
    if (k.endsWith("-bin")) into.add(k, Buffer.from(value, "base64"));
    else into.add(k, value);
  });
  return into;
}

/**
 * ConnectError -> grpc-js status with metadata and grpc-status-details-bin. The error is first
 * completed and bounded (src/server/transport-errors.ts): grpc-message and the details travel as
 * HTTP/2 headers, and an oversized header block never reaches the client.
 */
export function toGrpcError(error: ConnectError, maxEchoChars = DEFAULT_LIMITS.maxEchoChars): grpc.ServerErrorResponse {
  const err = finalError(error, maxEchoChars);
  const md = headersToMetadata(err.metadata);
  const trailer = setTrailerStatus(new Headers(), err);
  const details = trailer.get("grpc-status-details-bin");
  if (details) md.set("grpc-status-details-bin", Buffer.from(details, "base64"));
  return Object.assign(new Error(err.rawMessage), {
    code: err.code as number as grpc.status,
    details: err.rawMessage,
    metadata: md,
  });
}

function deadlineOf(deadline: grpc.Deadline): number | undefined {
  const t = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(t) ? t : undefined;
}

interface CallLike {
  metadata: grpc.Metadata;
  cancelled: boolean;
  getDeadline(): grpc.Deadline;
  getPath(): string;
  sendMetadata(md: grpc.Metadata): void;
  on(event: "cancelled", cb: () => void): unknown;
}

/**
 * A Connect HandlerContext over a grpc-js call. Written by hand instead of Connect's
 * createHandlerContext because that one eagerly builds three Headers objects, a linked abort
 * controller and a deadline timer per call, and aborts with a fresh error at the end of every
 * call; here all of it is created only when a handler touches it (measured: it was most of the
 * adapter's per-call CPU, see bench/transport.ts).
 */
class GrpcHandlerContext implements HandlerContext {
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  readonly values = createContextValues();
  private reqHeader: Headers | undefined;
  private resHeader: Headers | undefined;
  private resTrailer: Headers | undefined;
  private pendingResHeaders: [string, string][] | undefined;
  private controller: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly deadline: number | undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    private readonly call: CallLike,
  ) {
    this.deadline = deadlineOf(call.getDeadline());
  }

  get url(): string {
    return this.call.getPath();
  }
  get requestHeader(): Headers {
    return (this.reqHeader ??= new Headers(metadataToHeaders(this.call.metadata)));
  }
  /**
   * One request header without building a fetch Headers object (undici's Headers validates and
   * copies every entry; the pipeline reads two headers per call). Same value `requestHeader.get`
   * returns: text values only (binary `-bin` values are not needed here), joined with ", ".
   */
  requestHeaderValue(name: string): string | null {
    if (this.reqHeader) return this.reqHeader.get(name);
    let out: string | null = null;
    for (const v of this.call.metadata.get(name)) {
      if (typeof v !== "string" || /[\r\n\0]/.test(v)) continue;
      out = out === null ? v : `${out}, ${v}`;
    }
    return out;
  }
  get responseHeader(): Headers {
    if (!this.resHeader) {
      this.resHeader = new Headers();
      if (this.pendingResHeaders) for (const [k, v] of this.pendingResHeaders) this.resHeader.append(k, v);
      this.pendingResHeaders = undefined;
    }
    return this.resHeader;
  }
  /** Set a response header without a fetch Headers object until a handler asks for one. */
  setResponseHeaderValue(name: string, value: string): void {
    if (this.resHeader) this.resHeader.set(name, value);
    else (this.pendingResHeaders ??= []).push([name.toLowerCase(), value]);
  }
  get responseTrailer(): Headers {
    return (this.resTrailer ??= new Headers());
  }
  timeoutMs(): number | undefined {
    return this.deadline === undefined ? undefined : this.deadline - Date.now();
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      const c = new AbortController();
      this.controller = c;
      if (this.call.cancelled) c.abort(new ConnectError("cancelled by client", Code.Canceled));
      else this.call.on("cancelled", () => c.abort(new ConnectError("cancelled by client", Code.Canceled)));
      if (this.deadline !== undefined && !c.signal.aborted) {
        this.timer = setTimeout(
          () => c.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
          Math.max(0, this.deadline - Date.now()),
        );
      }
    }
    return this.controller.signal;
  }

  /** Response headers as metadata (undefined if none were set). */
  headerMetadata(): grpc.Metadata {
    if (this.resHeader) return headersToMetadata(this.resHeader);
    const md = new grpc.Metadata();
    if (this.pendingResHeaders) for (const [k, v] of this.pendingResHeaders) md.add(k, v);
    return md;
  }
  trailerMetadata(): grpc.Metadata | undefined {
    return this.resTrailer ? headersToMetadata(this.resTrailer) : undefined;
  }

  /** The call is over: release the timer and tell anyone listening on the signal. */
  done(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.controller && !this.controller.signal.aborted) {
      this.controller.abort(new ConnectError("call completed", Code.Canceled));
    }
  }
}

function asConnectError(err: unknown, log: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  log.error({ err }, "unhandled error in gRPC adapter");
  return new ConnectError("internal error", Code.Internal);
}

function unaryHandler(spec: ServiceImplSpec, m: Extract<MethodImplSpec, { kind: "unary" }>, log: Logger, maxEcho: number): grpc.handleUnaryCall<Msg, Msg> {
  return (call, callback) => {
    if (call.request instanceof Malformed) {
      callback(toGrpcError(malformedError(call.request), maxEcho));
      return;
    }
    const ctx = new GrpcHandlerContext(spec.service, m.method, call);
    let out: ReturnType<typeof m.impl>;
    try {
      out = m.impl(call.request, ctx);
    } catch (err) {
      out = Promise.reject(err);
    }
    // The reply (a message or an init shape) goes to grpc-js as it is: replySerializer encodes
    // either. One promise layer: the context is released in both branches.
    Promise.resolve(out).then(
      (init) => {
        try {
          call.sendMetadata(ctx.headerMetadata());
          callback(null, init as Msg, ctx.trailerMetadata());
        } finally {
          ctx.done();
        }
      },
      (err: unknown) => {
        try {
          call.sendMetadata(ctx.headerMetadata());
          callback(toGrpcError(asConnectError(err, log), maxEcho));
        } finally {
          ctx.done();
        }
      },
    );
  };
}

function serverStreamHandler(spec: ServiceImplSpec, m: Extract<MethodImplSpec, { kind: "server_streaming" }>, log: Logger, maxEcho: number): grpc.handleServerStreamingCall<Msg, Msg> {
  return (call) => {
    if (call.request instanceof Malformed) {
      call.emit("error", toGrpcError(malformedError(call.request), maxEcho));
      return;
    }
    const ctx = new GrpcHandlerContext(spec.service, m.method, call);
    let headersSent = false;
    const sendHeaders = () => {
      if (!headersSent) call.sendMetadata(ctx.headerMetadata());
      headersSent = true;
    };
    (async () => {
      for await (const out of m.impl(call.request, ctx)) {
        sendHeaders();
        if (!call.write(out as Msg)) {
          await new Promise((r) => call.once("drain", r));
        }
      }
      sendHeaders();
      call.end(ctx.trailerMetadata());
    })()
      .catch((err: unknown) => {
        sendHeaders();
        call.emit("error", toGrpcError(asConnectError(err, log), maxEcho));
      })
      .finally(() => ctx.done());
  };
}

/** Build the grpc-js service definition + handlers for one (pipeline-wrapped) service. */
export function toGrpcService(spec: ServiceImplSpec, log: Logger, maxEcho = DEFAULT_LIMITS.maxEchoChars): { definition: grpc.ServiceDefinition; handlers: grpc.UntypedServiceImplementation } {
  const definition: Record<string, grpc.MethodDefinition<Msg, Msg>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of spec.service.methods) {
    const m = spec.methods[method.localName];
    if (!m) continue;
    const common = {
      path: `/${spec.service.typeName}/${method.name}`,
      originalName: method.localName,
      requestSerialize: serializer(method.input),
      requestDeserialize: requestDeserializer(method.input),
      responseSerialize: replySerializer(method.output),
      responseDeserialize: deserializer(method.output),
    };
    switch (m.kind) {
      case "unary":
        definition[method.name] = { ...common, requestStream: false, responseStream: false };
        handlers[method.name] = unaryHandler(spec, m, log, maxEcho);
        break;
      case "server_streaming":
        definition[method.name] = { ...common, requestStream: false, responseStream: true };
        handlers[method.name] = serverStreamHandler(spec, m, log, maxEcho);
        break;
      default:
        // Client/bidi streaming are served by connect-node only (HTTP port); nothing uses them yet.
        log.warn({ rpc: common.path }, "streaming kind not served over native gRPC");
    }
  }
  return { definition, handlers };
}

function collectFiles(file: DescFile, out: Map<string, DescFile>): void {
  if (out.has(file.name)) return;
  for (const dep of file.dependencies) collectFiles(dep, out);
  out.set(file.name, file);
}

const require = createRequire(import.meta.url);

/**
 * Reflection (v1 + v1alpha via @grpc/reflection) over our protobuf-es descriptors plus the
 * health service. @grpc/reflection only reads `fileDescriptorProtos` from the package
 * definition, so we hand it the serialized FileDescriptorProtos of every served file and its
 * dependencies (google/protobuf/*.proto included).
 */
export function reflectionService(services: ServiceImplSpec[]): ReflectionService {
  const files = new Map<string, DescFile>();
  for (const s of services) collectFiles(s.service.file, files);
  const fileDescriptorProtos = [...files.values()].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  const ours = { format: "Protocol Buffer 3 FileDescriptorProto", fileDescriptorProtos: [...fileDescriptorProtos, healthFileDescriptor()] };
  const pkg = { "masques.ledger.__files": ours } as unknown as protoLoader.PackageDefinition;
  const names = [...services.map((s) => s.service.typeName), "grpc.health.v1.Health"];
  return new ReflectionService(pkg, { services: names });
}

/**
 * grpc.health.v1's FileDescriptorProto, from the proto file shipped with grpc-health-check.
 * protobufjs (behind proto-loader) names a map entry type after its field ("Statuses") where
 * protoc and protobuf-go require "<Field>Entry"; Go clients (grpcurl, buf curl) reject the file
 * otherwise, so map entries are renamed here.
 */
function healthFileDescriptor(): Buffer {
  const healthProto = path.join(path.dirname(require.resolve("grpc-health-check/package.json")), "proto/health/v1/health.proto");
  const pkgDef = protoLoader.loadSync(healthProto, { keepCase: true });
  const def = pkgDef["grpc.health.v1.HealthCheckRequest"] as { fileDescriptorProtos?: Buffer[] } | undefined;
  const bin = def?.fileDescriptorProtos?.[0];
  if (!bin) throw new Error("grpc-health-check: health.proto descriptor not found");
  const file: FileDescriptorProto = fromBinary(FileDescriptorProtoSchema, bin);
  const fix = (msg: DescriptorProto, scope: string): void => {
    const renamed = new Map<string, string>();
    for (const nested of msg.nestedType) {
      if (nested.options?.mapEntry && !nested.name.endsWith("Entry")) {
        renamed.set(nested.name, `${nested.name}Entry`);
        nested.name = `${nested.name}Entry`;
      }
      fix(nested, `${scope}.${nested.name}`);
    }
    for (const field of msg.field) {
      const target = renamed.get(field.typeName);
      if (target) field.typeName = `${scope}.${target}`;
    }
  };
  for (const m of file.messageType) fix(m, `.${file.package}.${m.name}`);
  file.name = "grpc/health/v1/health.proto";
  return Buffer.from(toBinary(FileDescriptorProtoSchema, file));
}

export interface GrpcServer {
  server: grpc.Server;
  health: HealthImplementation;
  /** Bound port (useful with port 0). */
  port: number;
  /** The TCP front (connection cap, first-bytes deadline): close it before shutting down. */
  front: Front;
}

/**
 * grpc-js answers a method it does not serve with a bare UNIMPLEMENTED. This server serves such
 * calls with a handler that answers UNIMPLEMENTED with an ErrorInfo like every other error.
 * grpc-js offers no fallback route, so `_retrieveHandler` (a stable internal of
 * @grpc/grpc-js 1.x's Server) is wrapped; if a future version drops it, grpc-js's own answer
 * remains (tests/server/edges.test.ts notices).
 */
function serveUnknownMethods(server: grpc.Server, maxEcho: number): void {
  const internals = server as unknown as { _retrieveHandler?: (path: string) => unknown };
  const original = internals._retrieveHandler;
  if (typeof original !== "function") return;
  internals._retrieveHandler = function (this: unknown, path: string) {
    const found: unknown = original.call(this, path);
    if (found) return found;
    return {
      type: "unary",
      path,
      deserialize: (b: Buffer) => b,
      serialize: (b: Buffer) => b,
      func: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) =>
        callback(toGrpcError(transportError(Code.Unimplemented, `method ${path} is not served here`, [], "METHOD_NOT_FOUND"), maxEcho)),
    };
  };
}

/** Size of a request header block as HTTP/2 counts it (RFC 9113 §6.5.2: name + value + 32). */
export function headerBlockBytes(headers: Record<string, string | string[] | undefined>): number {
  let total = 0;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) total += name.length + x.length + 32;
    else total += name.length + v.length + 32;
  }
  return total;
}

type H2Stream = import("node:http2").ServerHttp2Stream;
const REQUEST_TIMER = Symbol("request deadline timer");
type TimedStream = H2Stream & { [REQUEST_TIMER]?: NodeJS.Timeout };

function cutStream(stream: H2Stream): void {
  // The request arrived in full (the handler may still be working): nothing to cut.
  if (!stream.destroyed && !stream.readableEnded) stream.close(http2Constants.NGHTTP2_CANCEL);
}
function clearRequestTimer(this: TimedStream): void {
  clearTimeout(this[REQUEST_TIMER]);
}

/**
 * A call whose request has not fully arrived (client half-close) `timeoutMs` after its headers is
 * cancelled (RST_STREAM CANCEL): grpc-js has no such deadline, and unfinished streams would
 * otherwise hold their memory until the connection ends. One timer per call, cleared when the
 * stream closes (O(1)); when it fires after the request ended it does nothing. Shared functions,
 * the stream as the timer's argument: no closure per call.
 */
function cutIfIncomplete(stream: H2Stream, timeoutMs: number): void {
  (stream as TimedStream)[REQUEST_TIMER] = setTimeout(cutStream, timeoutMs, stream);
  stream.on("close", clearRequestTimer);
}

/**
 * Statuses grpc-js raises itself before a handler runs (message over the size limit, a bad
 * compression, ...) are sent as a trailers-only response without details. Those get the
 * ErrorInfo every error carries (src/server/transport-errors.ts); responses that already have
 * details (everything from our handlers) pass untouched. One function per server, set on each
 * stream (no closure per call).
 */
function trailersOnlyErrorCompleter(maxEcho: number): (stream: H2Stream) => void {
  let respond: H2Stream["respond"] | undefined;
  const completing: H2Stream["respond"] = function (this: H2Stream, headers, options) {
    const status = headers?.["grpc-status"];
    if (options?.endStream && headers && status !== undefined && String(status) !== "0" && headers["grpc-status-details-bin"] === undefined) {
      const message = decodeURIComponent(String(headers["grpc-message"] ?? ""));
      const err = toGrpcError(new ConnectError(message, Number(status) as Code), maxEcho);
      const bin = err.metadata?.get("grpc-status-details-bin")[0];
      headers = { ...headers, "grpc-message": encodeURIComponent(err.details ?? "") };
      if (bin) headers["grpc-status-details-bin"] = Buffer.from(bin).toString("base64");
    }
    respond!.call(this, headers, options);
  };
  return (stream) => {
    respond ??= stream.respond; // node:http2's own (ServerHttp2Stream.prototype.respond)
    stream.respond = completing;
  };
}

/**
 * grpc-js (1.14) has no server option bounding a request's header block ("grpc.max_metadata_size"
 * is read by its client only), and node:http2 advertises SETTINGS_MAX_HEADER_LIST_SIZE without
 * enforcing it. So the advertised setting is added to the options grpc-js builds its HTTP/2
 * servers from, and its stream handler (both variants; bound when the connection injector is
 * created) is wrapped to refuse a larger block with RESOURCE_EXHAUSTED and an ErrorInfo before a
 * call is created: one loop over the request's headers per call. The same wrapper starts the
 * request deadline (cutIfIncomplete). Both are grpc-js internals
 * (`commonServerOptions`, `_streamHandler`, `_channelzHandler`); if a future grpc-js drops them,
 * tests/server/hostile-load.test.ts notices.
 */
function limitRequests(server: grpc.Server, maxBytes: number, requestTimeoutMs: number, maxEcho: number): void {
  type StreamHandler = (this: unknown, extra: unknown, stream: import("node:http2").ServerHttp2Stream, headers: Record<string, string | string[] | undefined>) => void;
  const internals = server as unknown as {
    commonServerOptions?: { settings?: Record<string, number> };
    _streamHandler?: StreamHandler;
    _channelzHandler?: StreamHandler;
  };
  if (internals.commonServerOptions) {
    internals.commonServerOptions.settings = { ...internals.commonServerOptions.settings, maxHeaderListSize: maxBytes };
  }
  const completeTrailersOnlyErrors = trailersOnlyErrorCompleter(maxEcho);
  for (const key of ["_streamHandler", "_channelzHandler"] as const) {
    const original = internals[key];
    if (typeof original !== "function") continue;
    internals[key] = function (this: unknown, extra, stream, headers) {
      const size = headerBlockBytes(headers);
      if (size <= maxBytes) {
        cutIfIncomplete(stream, requestTimeoutMs);
        completeTrailersOnlyErrors(stream);
        original.call(this, extra, stream, headers);
        return;
      }
      stream.on("error", () => {});
      const err = toGrpcError(transportError(Code.ResourceExhausted, `request metadata is ${size} bytes; at most ${maxBytes} accepted (MASQUES_MAX_METADATA_BYTES)`, [], "METADATA_TOO_LARGE"), maxEcho);
      const trailers: Record<string, string> = { "grpc-status": String(err.code), "grpc-message": encodeURIComponent(err.details ?? "") };
      const bin = err.metadata?.get("grpc-status-details-bin")[0];
      if (bin) trailers["grpc-status-details-bin"] = Buffer.from(bin).toString("base64");
      if (!stream.destroyed && !stream.headersSent) stream.respond({ ":status": 200, "content-type": "application/grpc+proto", ...trailers }, { endStream: true });
    };
  }
}

/**
 * grpc-js with every transport limit it offers as an option (docs/adr/0006-transport-limits.md),
 * fed connections by our own TCP front (connection cap, first-bytes deadline) through grpc-js's
 * connection injector.
 */
export async function startGrpcServer(
  services: ServiceImplSpec[],
  host: string,
  port: number,
  log: Logger,
  limits: TransportLimits = DEFAULT_LIMITS,
): Promise<GrpcServer> {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": limits.maxMessageBytes,
    "grpc.max_concurrent_streams": limits.maxStreamsPerConnection,
    "grpc.max_connection_idle_ms": limits.idleTimeoutMs,
    "grpc.max_metadata_size": limits.maxMetadataBytes,
    // node:http2's per-session memory cap (MiB): refuses new streams beyond it.
    "grpc-node.max_session_memory": Math.max(10, Math.ceil((limits.maxMessageBytes * 2) / (1024 * 1024))),
    "grpc.keepalive_permit_without_calls": 1,
  });
  serveUnknownMethods(server, limits.maxEchoChars);
  limitRequests(server, limits.maxMetadataBytes, limits.requestTimeoutMs, limits.maxEchoChars);
  for (const s of services) {
    const { definition, handlers } = toGrpcService(s, log, limits.maxEchoChars);
    server.addService(definition, handlers);
  }
  const status: Record<string, "SERVING" | "NOT_SERVING"> = { "": "NOT_SERVING" };
  for (const s of services) status[s.service.typeName] = "NOT_SERVING";
  const health = new HealthImplementation(status);
  health.addToServer(server);
  reflectionService(services).addToServer(server);
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const front = await listenFront({
    host,
    port,
    variable: "MASQUES_GRPC_ADDR",
    limits,
    log,
    dispatch(socket, head) {
      // Only HTTP/2 with prior knowledge is served here: anything else is closed at once.
      if (head.subarray(0, 3).toString("latin1") !== "PRI") socket.destroy();
      else injector.injectConnection(socket);
    },
  });
  return { server, health, port: front.port, front };
}

/** Mark everything SERVING / NOT_SERVING in grpc.health.v1. */
export function setServing(g: GrpcServer, services: ServiceImplSpec[], serving: boolean): void {
  const st = serving ? "SERVING" : "NOT_SERVING";
  g.health.setStatus("", st);
  for (const s of services) g.health.setStatus(s.service.typeName, st);
}
