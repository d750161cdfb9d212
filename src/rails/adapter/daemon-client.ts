/**
 * The adapter's only way to the daemon: the generated SettlementService client over native gRPC
 * (@connectrpc/connect-node), authenticated as the rail principal with a token read from a file
 * on every call. Never the daemon's internals.
 */
import { ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ErrorInfoSchema } from "../../../clients/gen/masques/ledger/v1/common_pb.js";
import { SettlementService } from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";

export type SettlementClient = Client<typeof SettlementService>;

/** Deadline of one RPC to the daemon. */
export const DAEMON_CALL_TIMEOUT_MS = 30_000;

/** A SettlementService client for `endpoint` ("http://host:port"), bearer token from `token()`. */
export function settlementClient(endpoint: string, token: () => string): SettlementClient {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token()}`);
    return next(req);
  };
  return createClient(SettlementService, createGrpcTransport({ baseUrl: endpoint, interceptors: [auth], defaultTimeoutMs: DAEMON_CALL_TIMEOUT_MS }));
}

/** The ErrorInfo reason of a daemon error (ADR 0050), or null for a transport failure / non-RPC error. */
export function errorReason(e: unknown): string | null {
  if (!(e instanceof ConnectError)) return null;
  return e.findDetails(ErrorInfoSchema)[0]?.reason ?? null;
}
