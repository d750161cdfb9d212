/**
 * WebhookService (issue 16, ADR 0105, 0106): endpoint registration, delivery history and
 * redelivery over the control-plane outbox (src/controlplane/webhooks.ts); the dispatcher
 * (src/webhooks/dispatcher.ts) delivers.
 *
 * Who may do what (one visible authorisation step per handler):
 * - admins (admin scope): platform-wide endpoints (every event), endpoints for an author, the
 *   per-endpoint private-network allowance, every endpoint's history and redelivery;
 * - authors (ledger:write to register/disable/redeliver, ledger:read to list): their own
 *   endpoints only, which receive only events that name them as author;
 * - agents and rail adapters: nothing.
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import {
  CreateWebhookEndpointResponseSchema,
  DisableWebhookEndpointResponseSchema,
  ListWebhookDeliveriesResponseSchema,
  ListWebhookEndpointsResponseSchema,
  ListWebhookEventTypesResponseSchema,
  RedeliverWebhookResponseSchema,
  WebhookAttemptSchema,
  WebhookDeliverySchema,
  WebhookDeliveryStatus as PbStatus,
  WebhookEndpointSchema,
  WebhookEventTypeSchema,
  WebhookService,
  type WebhookDelivery,
  type WebhookEndpoint,
} from "../../../clients/gen/masques/ledger/v1/webhook_service_pb.js";
import type { Config } from "../../config.js";
import type { WebhookDeliveryRow, WebhookDeliveryStatus, WebhookEndpointRow, WebhookStore } from "../../controlplane/webhooks.js";
import { AUTHOR_ID_RE } from "../../domain/catalog.js";
import { defineService, type DaemonContext, type ServiceRegistration } from "../../server/registry.js";
import type { Principal } from "../../server/principal.js";
import { isWebhookEventType, WEBHOOK_EVENT_TYPES } from "../../webhooks/events.js";
import { assertPublicUrl, PrivateAddressError } from "../../webhooks/ssrf.js";
import { isAdmin, principalOf, requireScope } from "../authz.js";
import { failedPrecondition, invalidArgument, permissionDenied, statusError, type Violation } from "../errors.js";
import { parsePageSize, timestampFromNs } from "../views.js";

export interface WebhookServiceDeps {
  store: WebhookStore;
  clock: () => bigint;
  config: Pick<Config, "WEBHOOK_ALLOW_PRIVATE_NETWORK" | "WEBHOOK_ENDPOINTS_PER_OWNER_MAX">;
}

const URL_MAX = 2048;
const ENDPOINT_LIST_MAX = 1000;

/** Who owns endpoints created by `p` (admins may name an author). */
function ownerOf(p: Principal, author_id: string): { kind: "admin" | "author"; id: string } {
  if (isAdmin(p)) return author_id === "" ? { kind: "admin", id: p.id } : { kind: "author", id: author_id };
  if (p.kind !== "author") throw permissionDenied(`${p.kind} ${JSON.stringify(p.id)} may not manage webhook endpoints: authors and admins only`, { principal_kind: p.kind });
  if (author_id !== "" && author_id !== p.id) {
    throw permissionDenied(`author ${JSON.stringify(p.id)} may not register endpoints for author ${JSON.stringify(author_id)}`, { principal_kind: p.kind });
  }
  return { kind: "author", id: p.id };
}

/** The endpoint, if `p` may act on it; NOT_FOUND otherwise (a foreign id tells nothing). */
async function ownEndpoint(deps: WebhookServiceDeps, p: Principal, endpoint_id: string): Promise<WebhookEndpointRow> {
  const e = /^ep_[0-9a-f]{24}$/.test(endpoint_id) ? await deps.store.getEndpoint(endpoint_id) : null;
  if (e !== null && (isAdmin(p) || (p.kind === "author" && e.owner_kind === "author" && e.owner_id === p.id))) return e;
  if (endpoint_id === "") throw invalidArgument([{ field: "endpoint_id", description: "required" }]);
  throw statusError(Code.NotFound, "WEBHOOK_ENDPOINT_NOT_FOUND", `webhook endpoint ${JSON.stringify(endpoint_id)} not found`, { endpoint_id });
}

function endpointView(e: WebhookEndpointRow): WebhookEndpoint {
  return create(WebhookEndpointSchema, {
    endpointId: e.endpoint_id,
    ownerKind: e.owner_kind,
    ownerId: e.owner_id,
    url: e.url,
    eventTypes: e.event_types,
    allowPrivateNetwork: e.allow_private_network,
    disabled: e.disabled,
    createTime: timestampFromNs(e.create_time_ns),
  });
}

const STATUS_TO_PB: Record<WebhookDeliveryStatus, PbStatus> = {
  pending: PbStatus.PENDING,
  succeeded: PbStatus.SUCCEEDED,
  dead: PbStatus.DEAD,
};

async function deliveryView(deps: WebhookServiceDeps, d: WebhookDeliveryRow): Promise<WebhookDelivery> {
  const history = await deps.store.attempts(d.delivery_id);
  return create(WebhookDeliverySchema, {
    deliveryId: d.delivery_id,
    endpointId: d.endpoint_id,
    eventId: d.event_id,
    eventType: d.event_type,
    status: STATUS_TO_PB[d.status],
    attempts: d.attempts,
    nextAttemptTime: d.status === "pending" ? timestampFromNs(d.next_attempt_time_ns) : undefined,
    payload: d.payload,
    history: history.map((a) =>
      create(WebhookAttemptSchema, {
        attempt: a.attempt,
        attemptTime: timestampFromNs(a.attempt_time_ns),
        httpStatus: a.http_status,
        error: a.error,
        durationMs: a.duration_ms,
      }),
    ),
  });
}

/** Parse and check an endpoint URL (shape only; the address check is separate). */
export function parseEndpointUrl(text: string, v: Violation[]): URL | null {
  if (text === "") {
    v.push({ field: "url", description: "required" });
    return null;
  }
  if (text.length > URL_MAX) {
    v.push({ field: "url", description: `must be at most ${URL_MAX} characters` });
    return null;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    v.push({ field: "url", description: "must be an absolute http(s) URL, e.g. https://hooks.example.com/masques" });
    return null;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") v.push({ field: "url", description: "scheme must be https or http" });
  if (url.username !== "" || url.password !== "") v.push({ field: "url", description: "must not carry credentials (user:password@); verify deliveries with the signing secret instead" });
  if (url.hash !== "") v.push({ field: "url", description: "must not have a #fragment" });
  return url;
}

export function createWebhookService(deps: WebhookServiceDeps): ServiceImpl<typeof WebhookService> {
  return {
    async createWebhookEndpoint(req, ctx: HandlerContext) {
      const p = principalOf(ctx);
      requireScope(p, ["ledger:write"], "register a webhook endpoint");
      const owner = ownerOf(p, req.authorId);
      const v: Violation[] = [];
      if (req.authorId !== "" && !AUTHOR_ID_RE.test(req.authorId)) v.push({ field: "author_id", description: "expected an author id (letters, digits, _.:@-)" });
      if (req.allowPrivateNetwork && !isAdmin(p)) {
        throw permissionDenied(`${p.kind} ${JSON.stringify(p.id)} may not set allow_private_network: admin only (for local development)`, { principal_kind: p.kind });
      }
      const url = parseEndpointUrl(req.url, v);
      const types = [...new Set(req.eventTypes)];
      for (const [i, t] of req.eventTypes.entries()) {
        if (!isWebhookEventType(t)) v.push({ field: `event_types[${i}]`, description: `unknown event type ${JSON.stringify(t)}; known: ${Object.keys(WEBHOOK_EVENT_TYPES).join(", ")}` });
      }
      if (v.length > 0 || url === null) throw invalidArgument(v);
      const allowPrivate = owner.kind === "admin" || req.allowPrivateNetwork || deps.config.WEBHOOK_ALLOW_PRIVATE_NETWORK;
      if (!allowPrivate) {
        try {
          await assertPublicUrl(url);
        } catch (err) {
          const reason = err instanceof PrivateAddressError ? "ENDPOINT_ADDRESS_NOT_PUBLIC" : "ENDPOINT_HOST_UNRESOLVED";
          throw statusError(Code.InvalidArgument, reason, `url: ${(err as Error).message}`, { url: req.url });
        }
      }
      const n = await deps.store.countEndpoints(owner.kind, owner.id);
      if (n >= deps.config.WEBHOOK_ENDPOINTS_PER_OWNER_MAX) {
        throw failedPrecondition("WEBHOOK_ENDPOINT_LIMIT", `${owner.kind} ${JSON.stringify(owner.id)} already has ${n} enabled endpoints (WEBHOOK_ENDPOINTS_PER_OWNER_MAX); disable one first`);
      }
      const e = await deps.store.createEndpoint({
        owner_kind: owner.kind,
        owner_id: owner.id,
        url: url.toString(),
        event_types: types,
        allow_private_network: owner.kind === "author" && req.allowPrivateNetwork,
        create_time_ns: deps.clock(),
      });
      return create(CreateWebhookEndpointResponseSchema, { endpoint: endpointView(e), secret: e.secret });
    },

    async listWebhookEndpoints(req, ctx) {
      const p = principalOf(ctx);
      requireScope(p, ["ledger:read"], "list webhook endpoints");
      let owner: { kind: "admin" | "author"; id: string } | null;
      if (isAdmin(p)) owner = req.authorId === "" ? null : { kind: "author", id: req.authorId };
      else owner = ownerOf(p, req.authorId);
      const rows = await deps.store.listEndpoints(owner, ENDPOINT_LIST_MAX);
      return create(ListWebhookEndpointsResponseSchema, { endpoints: rows.map(endpointView) });
    },

    async disableWebhookEndpoint(req, ctx) {
      const p = principalOf(ctx);
      requireScope(p, ["ledger:write"], "disable a webhook endpoint");
      await ownEndpoint(deps, p, req.endpointId);
      const e = await deps.store.disableEndpoint(req.endpointId, deps.clock());
      return create(DisableWebhookEndpointResponseSchema, { endpoint: endpointView(e!) });
    },

    async listWebhookDeliveries(req, ctx) {
      const p = principalOf(ctx);
      requireScope(p, ["ledger:read"], "read webhook deliveries");
      const v: Violation[] = [];
      const size = parsePageSize(req.pageSize, v);
      let before: { create_time_ns: bigint; delivery_id: string } | null = null;
      if (req.pageToken !== "") {
        const m = /^(\d{1,20})\.(dl_[0-9a-f]{26})$/.exec(Buffer.from(req.pageToken, "base64url").toString("utf8"));
        if (m) before = { create_time_ns: BigInt(m[1]!), delivery_id: m[2]! };
        else v.push({ field: "page_token", description: "must be a next_page_token returned by ListWebhookDeliveries" });
      }
      const status: WebhookDeliveryStatus | null =
        req.status === PbStatus.PENDING ? "pending" : req.status === PbStatus.SUCCEEDED ? "succeeded" : req.status === PbStatus.DEAD ? "dead" : null;
      if (v.length > 0) throw invalidArgument(v);
      const e = await ownEndpoint(deps, p, req.endpointId);
      const rows = await deps.store.listDeliveries(e.endpoint_id, status, before, size + 1);
      const page = rows.slice(0, size);
      const last = page.at(-1);
      return create(ListWebhookDeliveriesResponseSchema, {
        deliveries: await Promise.all(page.map((d) => deliveryView(deps, d))),
        nextPageToken: rows.length > size && last ? Buffer.from(`${last.create_time_ns}.${last.delivery_id}`).toString("base64url") : "",
      });
    },

    async redeliverWebhook(req, ctx) {
      const p = principalOf(ctx);
      requireScope(p, ["ledger:write"], "redeliver a webhook");
      const d = /^dl_[0-9a-f]{26}$/.test(req.deliveryId) ? await deps.store.getDelivery(req.deliveryId) : null;
      if (d === null) {
        if (req.deliveryId === "") throw invalidArgument([{ field: "delivery_id", description: "required" }]);
        throw statusError(Code.NotFound, "WEBHOOK_DELIVERY_NOT_FOUND", `webhook delivery ${JSON.stringify(req.deliveryId)} not found`);
      }
      const e = await ownEndpoint(deps, p, d.endpoint_id).catch(() => {
        throw statusError(Code.NotFound, "WEBHOOK_DELIVERY_NOT_FOUND", `webhook delivery ${JSON.stringify(req.deliveryId)} not found`);
      });
      if (e.disabled) throw failedPrecondition("WEBHOOK_ENDPOINT_DISABLED", `endpoint ${e.endpoint_id} is disabled; nothing is delivered to it`);
      const after = await deps.store.redeliver(d.delivery_id, deps.clock());
      return create(RedeliverWebhookResponseSchema, { delivery: await deliveryView(deps, after!) });
    },

    async listWebhookEventTypes(_req, ctx) {
      principalOf(ctx);
      return create(ListWebhookEventTypesResponseSchema, {
        eventTypes: Object.entries(WEBHOOK_EVENT_TYPES).map(([name, description]) => create(WebhookEventTypeSchema, { name, description })),
      });
    },
  };
}

/** The registration line for src/services/index.ts. */
export function webhookServiceRegistration(ctx: DaemonContext): ServiceRegistration {
  return defineService(WebhookService, createWebhookService({ store: ctx.controlplane.webhooks, clock: ctx.clock, config: ctx.config }));
}
