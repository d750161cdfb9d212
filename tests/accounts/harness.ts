/**
 * AccountService test harness: the real daemon (tests/support/daemon.ts spawns
 * `masques-ledger serve` on free ports with a fresh data dir) and generated Connect clients over
 * native gRPC (HTTP/2) and over Connect/JSON (HTTP/1.1), each carrying a bearer token.
 */
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AccountService } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import type { Scope } from "../../src/server/principal.js";
import { startDaemon, type Daemon } from "../support/daemon.js";

export type AccountClient = Client<typeof AccountService>;
export type TransportKind = "grpc" | "connect-json";
export type PrincipalKind = "agent" | "author" | "rail" | "admin";

export interface Harness {
  daemon: Daemon;
  /** A client acting as the given principal over the given transport. */
  client(kind: PrincipalKind, id: string, opts?: { transport?: TransportKind; scopes?: Scope[] }): Promise<AccountClient>;
  stop(): Promise<void>;
}

function bearer(token: string): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

export async function startHarness(): Promise<Harness> {
  const daemon = await startDaemon();
  return {
    daemon,
    async client(kind, id, opts = {}) {
      const token = await daemon.token(kind, id, opts.scopes);
      const interceptors = [bearer(token)];
      const transport =
        (opts.transport ?? "grpc") === "grpc"
          ? createGrpcTransport({ baseUrl: `http://${daemon.grpcAddr}`, interceptors })
          : createConnectTransport({
              baseUrl: `http://${daemon.httpAddr}`,
              httpVersion: "1.1",
              useBinaryFormat: false,
              interceptors,
            });
      return createClient(AccountService, transport);
    },
    stop: () => daemon.stop(),
  };
}

let keyCounter = 0;
/** A fresh idempotency key. */
export function newKey(prefix = "k"): string {
  keyCounter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${keyCounter}`;
}
