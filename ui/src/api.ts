/**
 * The daemon's API as the browser sees it: the generated clients over Connect (connect-web,
 * binary protobuf) on the page's own origin, with the signed-in user's bearer token. The dashboard
 * has no other backend (docs/adr/0121).
 */
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AccountService } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { AdminService } from "../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { AnalyticsService } from "../../clients/gen/masques/ledger/v1/analytics_service_pb.js";
import { SessionService } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { SettlementService } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { WebhookService } from "../../clients/gen/masques/ledger/v1/webhook_service_pb.js";

export interface Api {
  accounts: Client<typeof AccountService>;
  sessions: Client<typeof SessionService>;
  settlement: Client<typeof SettlementService>;
  analytics: Client<typeof AnalyticsService>;
  admin: Client<typeof AdminService>;
  webhooks: Client<typeof WebhookService>;
}

/**
 * Clients that send `Authorization: Bearer <token>` on every call; `onUnauthenticated` runs when
 * the daemon refuses the token (expired, revoked keys), so the page can ask to sign in again.
 */
export function createApi(token: string, onUnauthenticated: () => void): Api {
  const bearer: Interceptor = (next) => async (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    try {
      return await next(req);
    } catch (err) {
      if (isUnauthenticated(err)) onUnauthenticated();
      throw err;
    }
  };
  const transport = createConnectTransport({
    baseUrl: window.location.origin,
    useBinaryFormat: true,
    interceptors: [bearer],
  });
  return {
    accounts: createClient(AccountService, transport),
    sessions: createClient(SessionService, transport),
    settlement: createClient(SettlementService, transport),
    analytics: createClient(AnalyticsService, transport),
    admin: createClient(AdminService, transport),
    webhooks: createClient(WebhookService, transport),
  };
}

/** A sentence for a failed call: what the daemon said, or that the feature is not there yet. */
export function describeError(err: unknown): string {
  const e = ConnectError.from(err);
  switch (e.code) {
    case Code.Unimplemented:
      return "Not available on this daemon yet.";
    case Code.Unauthenticated:
      return `Not signed in, or the token expired: ${e.rawMessage}`;
    case Code.PermissionDenied:
      return `Not allowed: ${e.rawMessage}`;
    case Code.FailedPrecondition:
      return e.rawMessage;
    default:
      return `${Code[e.code]}: ${e.rawMessage}`;
  }
}

/** True when the error means "sign in again". */
export function isUnauthenticated(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Unauthenticated;
}
