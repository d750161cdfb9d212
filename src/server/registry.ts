/**
 * The contract between the daemon platform (transports, auth, logging, ledger) and the services.
 *
 * src/services/index.ts exports `createServices(ctx)` returning one `ServiceRegistration` per
 * protobuf service, and optionally `onStart(ctx)` (run once after the ledger is up and before the
 * listeners accept calls, e.g. to create platform accounts). Every registration is served, with
 * the same handler objects, over native gRPC (grpc-js, with reflection and health) and over
 * Connect / gRPC-Web / JSON (connect-node). Handlers are Connect v2 `ServiceImpl` methods: they
 * receive the request message and a `HandlerContext`, and read the authenticated principal with
 * `ctx.values.get(principalKey)` and the request id with `ctx.values.get(requestIdKey)`.
 * Errors are thrown as `ConnectError` (with `details` for structured errors); both transports
 * carry code, message and details to the caller.
 */
import type { DescService } from "@bufbuild/protobuf";
import { createServiceImplSpec, type ServiceImpl, type ServiceImplSpec } from "@connectrpc/connect";
import type { Client } from "tigerbeetle-node";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { ReconciliationPort } from "../streamer/reconciler.js";
import type { Sink } from "../streamer/sink.js";
import type { StreamerLag } from "../streamer/streamer.js";
import type { ControlPlane } from "../controlplane/index.js";

/** What every service factory receives. */
export interface DaemonContext {
  /** The ledger port: the coalesced TigerBeetle client (embedded engine or real cluster). */
  readonly ledger: Client;
  /** The control-plane database (price books, …; never money): see src/controlplane/index.ts. */
  readonly controlplane: ControlPlane;
  /** Validated configuration (see src/config.ts). */
  readonly config: Config;
  /** Daemon-wide logger. Inside a handler prefer `requestLogger(ctx)` from src/server/context.ts. */
  readonly log: Logger;
  /** Wall clock in nanoseconds since the Unix epoch (injectable for tests). */
  readonly clock: () => bigint;
  /** Reconciliation ledger vs ClickHouse (AdminService); undefined when the streamer is not running. */
  readonly reconciliation?: ReconciliationPort;
  /** Read access to the ClickHouse copy (AnalyticsService); undefined when the streamer is not running. */
  readonly analytics?: AnalyticsPort;
}

/** The streamer's ClickHouse sink (fixed SELECTs only) and how far the copy is behind the ledger. */
export interface AnalyticsPort {
  readonly sink: Sink;
  /** Where the copy lives, for operators ("embedded chDB at …"). */
  readonly describe: string;
  lag(): StreamerLag;
}

/**
 * One protobuf service and its implementation. Methods missing from `impl` answer
 * UNIMPLEMENTED. Build it with `defineService` so the implementation is type-checked against
 * the generated descriptor.
 */
export interface ServiceRegistration {
  readonly service: DescService;
  readonly spec: ServiceImplSpec;
}

/** Type-checked constructor for a `ServiceRegistration` (`impl` is a Connect v2 ServiceImpl). */
export function defineService<S extends DescService>(
  service: S,
  impl: Partial<ServiceImpl<S>>,
): ServiceRegistration {
  return { service, spec: createServiceImplSpec<S>(service, impl) };
}

/** Shape of src/services/index.ts. */
export interface ServicesModule {
  createServices(ctx: DaemonContext): ServiceRegistration[];
  onStart?(ctx: DaemonContext): Promise<void>;
  /** Optional: called on shutdown after the listeners stopped, before the ledger is closed. */
  onStop?(ctx: DaemonContext): Promise<void>;
}
