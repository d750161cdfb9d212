/**
 * SessionService e2e harness: the real daemon (tests/support/daemon.ts) and generated Connect
 * clients over native gRPC, one per principal.
 */
import { randomBytes } from "node:crypto";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AccountService, WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { SessionService } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import type { PrincipalKind } from "../../src/server/principal.js";
import { startDaemon, type Daemon, type DaemonOptions } from "../support/daemon.js";

export type Sessions = Client<typeof SessionService>;
export type Accounts = Client<typeof AccountService>;

export interface Clients {
  sessions: Sessions;
  accounts: Accounts;
}

function bearer(token: string): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

export interface Harness {
  daemon: Daemon;
  as(kind: PrincipalKind, id: string): Promise<Clients>;
  /** Open a prepaid wallet for `agent` and deposit `amount_micro` (admin manual deposit). */
  fundedAgent(agent: string, amount_micro: bigint): Promise<Clients>;
  available(agent: string): Promise<bigint>;
  earnings(author: string): Promise<bigint>;
  stop(): Promise<void>;
}

export function newSessionId(): string {
  return randomBytes(16).toString("hex");
}

export async function startHarness(opts: DaemonOptions = {}): Promise<Harness> {
  const daemon = await startDaemon(opts);
  const as = async (kind: PrincipalKind, id: string): Promise<Clients> => {
    const token = await daemon.token(kind, id);
    const transport = createGrpcTransport({ baseUrl: `http://${daemon.grpcAddr}`, interceptors: [bearer(token)] });
    return { sessions: createClient(SessionService, transport), accounts: createClient(AccountService, transport) };
  };
  const admin = await as("admin", "ops");
  let k = 0;
  return {
    daemon,
    as,
    async fundedAgent(agent, amount_micro) {
      const c = await as("agent", agent);
      await c.accounts.openAgentWallet({ mode: WalletMode.PREPAID });
      if (amount_micro > 0n) {
        await admin.accounts.deposit({
          account: { ref: { case: "agentWallet", value: agent } },
          amountMicro: amount_micro,
          idempotencyKey: `fund-${agent}-${++k}-${Date.now()}`,
        });
      }
      return c;
    },
    async available(agent) {
      const r = await admin.accounts.getAccount({ account: { ref: { case: "agentWallet", value: agent } } });
      return r.account!.balance!.availableMicro;
    },
    async earnings(author) {
      const r = await admin.accounts.getAccount({ account: { ref: { case: "authorEarnings", value: author } } });
      return r.account!.balance!.postedMicro;
    },
    stop: () => daemon.stop(),
  };
}
