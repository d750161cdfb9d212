/**
 * Native gRPC transport: serves Connect v2 ServiceImpl handlers (the same objects connect-node
 * serves) on a @grpc/grpc-js server, plus grpc.health.v1 and server reflection v1 + v1alpha.
 *
 * Hand-written adapter (no library maps protobuf-es v2 descriptors + Connect handlers onto
 * grpc-js): messages are (de)serialised with toBinary/fromBinary from the generated descriptors;
 * the grpc-js call becomes a Connect HandlerContext (metadata -> request headers, deadline ->
 * timeoutMs, cancellation -> abort signal); a thrown ConnectError becomes a gRPC status whose
 * trailers carry its metadata and `grpc-status-details-bin` (google.rpc.Status with the error
 * details, encoded by Connect's own gRPC protocol code), so structured details reach grpc-js,
 * Connect, grpcurl and buf curl clients alike. grpc-js was chosen over connect-node's gRPC
 * handler for this port by measurement (docs/adr/0002-grpc-transport.md).
 */
import path from "node:path";
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import * as protoLoader from "@grpc/proto-loader";
import { HealthImplementation } from "grpc-health-check";
import {
  create,
  fromBinary,
  toBinary,
  type DescFile,
  type DescMessage,
  type DescMethod,
  type MessageShape,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type DescriptorProto, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createContextValues,
  createHandlerContext,
  type HandlerContext,
  type MethodImplSpec,
  type ServiceImplSpec,
} from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Logger } from "pino";

type Msg = MessageShape<DescMessage>;

function serializer(desc: DescMessage): (m: Msg) => Buffer {
  return (m) => {
    const bytes = toBinary(desc, m);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(desc: DescMessage): (b: Buffer) => Msg {
  return (b) => fromBinary(desc, b);
}

/** grpc-js metadata -> fetch Headers (binary `-bin` values base64-encoded, as on the wire). */
export function metadataToHeaders(md: grpc.Metadata): Headers {
  const h = new Headers();
  for (const [key, values] of Object.entries(md.getMap())) {
    if (key.startsWith(":")) continue;
    const all = md.get(key);
    for (const v of all.length > 0 ? all : [values]) {
      try {
        h.append(key, typeof v === "string" ? v : Buffer.from(v).toString("base64"));
      } catch {
        // Not representable as an HTTP header value: drop it (never fail the call over metadata).
      }
    }
  }
  return h;
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

/** ConnectError -> grpc-js status with metadata and grpc-status-details-bin. */
export function toGrpcError(err: ConnectError): grpc.ServerErrorResponse {
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

function timeoutOf(deadline: grpc.Deadline): number | undefined {
  const t = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(t)) return undefined;
  return Math.max(0, t - Date.now());
}

interface CallLike {
  metadata: grpc.Metadata;
  getDeadline(): grpc.Deadline;
  getPath(): string;
  sendMetadata(md: grpc.Metadata): void;
  on(event: "cancelled", cb: () => void): unknown;
}

function contextFor(call: CallLike, spec: ServiceImplSpec, method: DescMethod): { ctx: HandlerContext & { abort(reason?: unknown): void } } {
  const cancel = new AbortController();
  call.on("cancelled", () => cancel.abort(new ConnectError("cancelled by client", Code.Canceled)));
  const ctx = createHandlerContext({
    service: spec.service,
    method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: call.getPath(),
    timeoutMs: timeoutOf(call.getDeadline()),
    requestSignal: cancel.signal,
    requestHeader: metadataToHeaders(call.metadata),
    contextValues: createContextValues(),
  });
  return { ctx };
}

function asConnectError(err: unknown, log: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  log.error({ err }, "unhandled error in gRPC adapter");
  return new ConnectError("internal error", Code.Internal);
}

function unaryHandler(spec: ServiceImplSpec, m: Extract<MethodImplSpec, { kind: "unary" }>, log: Logger): grpc.handleUnaryCall<Msg, Msg> {
  return (call, callback) => {
    const { ctx } = contextFor(call, spec, m.method);
    Promise.resolve()
      .then(() => m.impl(call.request, ctx))
      .then(
        (out) => {
          const res = create(m.method.output, out);
          call.sendMetadata(headersToMetadata(ctx.responseHeader));
          callback(null, res, headersToMetadata(ctx.responseTrailer));
        },
        (err: unknown) => {
          const ce = asConnectError(err, log);
          call.sendMetadata(headersToMetadata(ctx.responseHeader));
          callback(toGrpcError(ce));
        },
      )
      .finally(() => ctx.abort());
  };
}

function serverStreamHandler(spec: ServiceImplSpec, m: Extract<MethodImplSpec, { kind: "server_streaming" }>, log: Logger): grpc.handleServerStreamingCall<Msg, Msg> {
  return (call) => {
    const { ctx } = contextFor(call, spec, m.method);
    let headersSent = false;
    const sendHeaders = () => {
      if (!headersSent) call.sendMetadata(headersToMetadata(ctx.responseHeader));
      headersSent = true;
    };
    (async () => {
      for await (const out of m.impl(call.request, ctx)) {
        sendHeaders();
        if (!call.write(create(m.method.output, out))) {
          await new Promise((r) => call.once("drain", r));
        }
      }
      sendHeaders();
      call.end(headersToMetadata(ctx.responseTrailer));
    })()
      .catch((err: unknown) => {
        sendHeaders();
        call.emit("error", toGrpcError(asConnectError(err, log)));
      })
      .finally(() => ctx.abort());
  };
}

/** Build the grpc-js service definition + handlers for one (pipeline-wrapped) service. */
export function toGrpcService(spec: ServiceImplSpec, log: Logger): { definition: grpc.ServiceDefinition; handlers: grpc.UntypedServiceImplementation } {
  const definition: Record<string, grpc.MethodDefinition<Msg, Msg>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of spec.service.methods) {
    const m = spec.methods[method.localName];
    if (!m) continue;
    const common = {
      path: `/${spec.service.typeName}/${method.name}`,
      originalName: method.localName,
      requestSerialize: serializer(method.input),
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
    };
    switch (m.kind) {
      case "unary":
        definition[method.name] = { ...common, requestStream: false, responseStream: false };
        handlers[method.name] = unaryHandler(spec, m, log);
        break;
      case "server_streaming":
        definition[method.name] = { ...common, requestStream: false, responseStream: true };
        handlers[method.name] = serverStreamHandler(spec, m, log);
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
}

export async function startGrpcServer(
  services: ServiceImplSpec[],
  host: string,
  port: number,
  log: Logger,
): Promise<GrpcServer> {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": 4 * 1024 * 1024,
    "grpc.keepalive_permit_without_calls": 1,
  });
  for (const s of services) {
    const { definition, handlers } = toGrpcService(s, log);
    server.addService(definition, handlers);
  }
  const status: Record<string, "SERVING" | "NOT_SERVING"> = { "": "NOT_SERVING" };
  for (const s of services) status[s.service.typeName] = "NOT_SERVING";
  const health = new HealthImplementation(status);
  health.addToServer(server);
  reflectionService(services).addToServer(server);
  const bindHost = host.includes(":") ? `[${host}]` : host;
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${bindHost}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { server, health, port: bound };
}

/** Mark everything SERVING / NOT_SERVING in grpc.health.v1. */
export function setServing(g: GrpcServer, services: ServiceImplSpec[], serving: boolean): void {
  const st = serving ? "SERVING" : "NOT_SERVING";
  g.health.setStatus("", st);
  for (const s of services) g.health.setStatus(s.service.typeName, st);
}
