/**
 * The webhook part of the control plane (issue 16, ADR 0105): endpoints, the durable outbox of
 * events and their deliveries, and the history of every attempt.
 *
 *   await db.transaction().execute((trx) => enqueueWebhookEvent(trx, event, now_ns));
 *
 * `enqueueWebhookEvent` is the one way in for producers (sessions today; revenue rules and payouts
 * later): call it inside the transaction that records the fact, so the event exists if and only if
 * the fact does. It is idempotent by event id. The dispatcher (src/webhooks/dispatcher.ts) leases
 * due deliveries with one conditional statement (`for update skip locked`), so several daemons
 * share one outbox and a delivery is attempted by one of them at a time; a lease that a crashed
 * daemon held simply expires and the delivery is attempted again (at least once).
 */
import { randomBytes } from "node:crypto";
import { sql, type Kysely } from "kysely";
import { webhookPayload, type WebhookEvent } from "../webhooks/events.js";
import type { Database } from "./schema.js";

export type WebhookOwnerKind = "admin" | "author";
export type WebhookDeliveryStatus = "pending" | "succeeded" | "dead";

/** Most deliveries one `claim` returns. */
export const WEBHOOK_CLAIM_MAX = 256;
/** Most attempts kept per delivery in its history (older ones are still stored, not listed). */
export const WEBHOOK_HISTORY_MAX = 100;

export interface WebhookEndpointRow {
  endpoint_id: string;
  owner_kind: WebhookOwnerKind;
  owner_id: string;
  url: string;
  secret: string;
  /** Empty: every type the owner may receive. */
  event_types: string[];
  allow_private_network: boolean;
  disabled: boolean;
  create_time_ns: bigint;
}

export interface WebhookAttemptRow {
  attempt: number;
  attempt_time_ns: bigint;
  http_status: number;
  error: string;
  duration_ms: number;
}

export interface WebhookDeliveryRow {
  delivery_id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  status: WebhookDeliveryStatus;
  attempts: number;
  next_attempt_time_ns: bigint;
  create_time_ns: bigint;
  payload: string;
}

/** A leased delivery with what the dispatcher needs to send it. */
export interface ClaimedDelivery extends WebhookDeliveryRow {
  url: string;
  secret: string;
  owner_kind: WebhookOwnerKind;
  allow_private_network: boolean;
  /** The lease: the result is recorded only while next_attempt_time_ns still equals it. */
  lease_until_ns: bigint;
}

/** The outcome of one attempt, as the dispatcher saw it. */
export interface AttemptOutcome {
  ok: boolean;
  http_status: number;
  error: string;
  duration_ms: number;
  attempt_time_ns: bigint;
}

export interface WebhookStore {
  createEndpoint(e: Omit<WebhookEndpointRow, "endpoint_id" | "secret" | "disabled">): Promise<WebhookEndpointRow>;
  getEndpoint(endpoint_id: string): Promise<WebhookEndpointRow | null>;
  /** Endpoints of one owner (or all with `owner` null), oldest first, at most `limit`. */
  listEndpoints(owner: { kind: WebhookOwnerKind; id: string } | null, limit: number): Promise<WebhookEndpointRow[]>;
  countEndpoints(kind: WebhookOwnerKind, id: string): Promise<number>;
  /** Disables the endpoint and dead-letters its pending deliveries. */
  disableEndpoint(endpoint_id: string, now_ns: bigint): Promise<WebhookEndpointRow | null>;
  /**
   * `enqueueWebhookEvent` on its own (one statement), skipped without I/O when this daemon's copy
   * of the endpoints' routes says nobody can receive the event. Returns the deliveries created.
   */
  enqueue(event: WebhookEvent, now_ns: bigint): Promise<number>;
  /**
   * Whether some enabled endpoint may receive events of `type` about `author_id` (the routes copy
   * `enqueue` asks, same freshness): lets a producer skip building an event nobody receives.
   */
  mayReceive(type: WebhookEvent["type"], author_id: string | null): Promise<boolean>;
  /** Leases up to `max` due pending deliveries until `lease_until_ns`. */
  claim(now_ns: bigint, lease_until_ns: bigint, max: number): Promise<ClaimedDelivery[]>;
  /**
   * Records an attempt while the lease holds: succeeded, pending again at `retry_at_ns`, or dead
   * (`retry_at_ns` null). False when the lease was lost (redelivered, or another daemon took it).
   */
  recordAttempt(d: ClaimedDelivery, o: AttemptOutcome, retry_at_ns: bigint | null): Promise<boolean>;
  getDelivery(delivery_id: string): Promise<WebhookDeliveryRow | null>;
  /** Deliveries of an endpoint, newest first, strictly after the cursor. */
  listDeliveries(
    endpoint_id: string,
    status: WebhookDeliveryStatus | null,
    before: { create_time_ns: bigint; delivery_id: string } | null,
    limit: number,
  ): Promise<WebhookDeliveryRow[]>;
  attempts(delivery_id: string): Promise<WebhookAttemptRow[]>;
  /** Pending again now, with a fresh attempt budget (history kept). Null: unknown delivery. */
  redeliver(delivery_id: string, now_ns: bigint): Promise<WebhookDeliveryRow | null>;
}

const big = (v: unknown): bigint => BigInt(String(v));

function toEndpoint(r: Record<string, unknown>): WebhookEndpointRow {
  const types = String(r.event_types);
  return {
    endpoint_id: String(r.endpoint_id),
    owner_kind: String(r.owner_kind) as WebhookOwnerKind,
    owner_id: String(r.owner_id),
    url: String(r.url),
    secret: String(r.secret),
    event_types: types === "" ? [] : types.split(","),
    allow_private_network: r.allow_private_network === true,
    disabled: r.disabled === true,
    create_time_ns: big(r.create_time_ns),
  };
}

function toDelivery(r: Record<string, unknown>): WebhookDeliveryRow {
  return {
    delivery_id: String(r.delivery_id),
    endpoint_id: String(r.endpoint_id),
    event_id: String(r.event_id),
    event_type: String(r.event_type),
    status: String(r.status) as WebhookDeliveryStatus,
    attempts: Number(r.attempts),
    next_attempt_time_ns: big(r.next_attempt_time_ns),
    create_time_ns: big(r.create_time_ns),
    payload: String(r.payload),
  };
}

const ENDPOINT_COLUMNS = sql.raw(
  "endpoint_id, owner_kind, owner_id, url, secret, event_types, allow_private_network, disabled, create_time_ns::text as create_time_ns",
);
const DELIVERY_COLUMNS = sql.raw(
  "d.delivery_id, d.endpoint_id, d.event_id, v.event_type, d.status, d.attempts, d.next_attempt_time_ns::text as next_attempt_time_ns, d.create_time_ns::text as create_time_ns, v.payload",
);

/** A new signing secret: `whsec_` + base64 of 32 random bytes (Standard Webhooks). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/**
 * Store `event` and one pending delivery per matching enabled endpoint: every admin endpoint, and
 * the endpoints of `event.author_id`; each only if it subscribed to the type (or to all). ONE
 * statement (a data-modifying CTE), so it is atomic on its own and cheap on the hot path; run it
 * in the transaction that records the fact when there is one. An event no endpoint matches is not
 * stored (an endpoint receives the events of facts recorded after its registration). Idempotent:
 * an event id already stored adds nothing. Returns the deliveries created.
 */
export async function enqueueWebhookEvent(trx: Kysely<Database>, event: WebhookEvent, now_ns: bigint): Promise<number> {
  const now = now_ns.toString();
  const r = await sql`with targets as (
      select e.endpoint_id from webhook_endpoint e
      where not e.disabled
        and (e.owner_kind = 'admin' or (e.owner_kind = 'author' and e.owner_id = ${event.author_id}))
        and (e.event_types = '' or position(${"," + event.type + ","} in ',' || e.event_types || ',') > 0)
    ), ev as (
      insert into webhook_event (event_id, event_type, author_id, payload, create_time_ns)
      select ${event.event_id}, ${event.type}, ${event.author_id}, ${webhookPayload(event)}, ${now}
      where exists (select 1 from targets)
      on conflict (event_id) do nothing returning event_id
    )
    insert into webhook_delivery (delivery_id, event_id, endpoint_id, status, attempts, next_attempt_time_ns, create_time_ns, update_time_ns)
    select 'dl_' || substr(md5(ev.event_id || ':' || t.endpoint_id), 1, 26), ev.event_id, t.endpoint_id, 'pending', 0, ${now}, ${now}, ${now}
    from ev cross join targets t
    on conflict (event_id, endpoint_id) do nothing`.execute(trx);
  return Number(r.numAffectedRows ?? 0n);
}

/** How long a daemon trusts its copy of the enabled endpoints' routes (see `enqueue`). */
export const WEBHOOK_ROUTES_TTL_MS = 1_000;

/** Who may receive what, from the enabled endpoints: `*` = every type. */
interface Routes {
  admin: Set<string>;
  authors: Map<string, Set<string>>;
  loaded_ms: number;
}

function routeMatches(types: Set<string> | undefined, type: string): boolean {
  return types !== undefined && (types.has("*") || types.has(type));
}

/**
 * Factory over `db`. Every state change is one conditional statement or one transaction.
 *
 * `enqueue` first asks an in-memory copy of the enabled endpoints' routes (owner, types), read at
 * most every WEBHOOK_ROUTES_TTL_MS and at once after this daemon registers or disables one: an
 * event nobody can receive costs no database round trip (most Doffs, on a platform with few
 * endpoints). So an endpoint registered through ANOTHER daemon receives this daemon's events from
 * at most WEBHOOK_ROUTES_TTL_MS after its registration (ADR 0105).
 */
export function createWebhookStore(db: Kysely<Database>): WebhookStore {
  let routes: Routes | null = null;
  let loading: Promise<Routes> | null = null;
  const loadRoutes = (): Promise<Routes> =>
    (loading ??= (async () => {
      const rows = (await sql<{ owner_kind: string; owner_id: string; event_types: string }>`select owner_kind, owner_id, event_types
        from webhook_endpoint where not disabled`.execute(db)).rows;
      const next: Routes = { admin: new Set(), authors: new Map(), loaded_ms: Date.now() };
      for (const r of rows) {
        const types = r.event_types === "" ? ["*"] : r.event_types.split(",");
        const set = r.owner_kind === "admin" ? next.admin : (next.authors.get(r.owner_id) ?? new Set<string>());
        for (const t of types) set.add(t);
        if (r.owner_kind === "author") next.authors.set(r.owner_id, set);
      }
      routes = next;
      return next;
    })().finally(() => {
      loading = null;
    }));
  const mayReceive = async (type: WebhookEvent["type"], author_id: string | null): Promise<boolean> => {
    const r = routes !== null && Date.now() - routes.loaded_ms < WEBHOOK_ROUTES_TTL_MS ? routes : await loadRoutes();
    return routeMatches(r.admin, type) || (author_id !== null && routeMatches(r.authors.get(author_id), type));
  };
  const invalidate = () => {
    routes = null;
  };
  const one = async <T>(q: { execute(db: Kysely<Database>): Promise<{ rows: T[] }> }): Promise<T | null> => (await q.execute(db)).rows[0] ?? null;
  const getDelivery = async (id: string) => {
    const r = await one(sql<Record<string, unknown>>`select ${DELIVERY_COLUMNS} from webhook_delivery d join webhook_event v on v.event_id = d.event_id where d.delivery_id = ${id}`);
    return r ? toDelivery(r) : null;
  };
  return {
    async createEndpoint(e) {
      const endpoint_id = `ep_${randomBytes(12).toString("hex")}`;
      const r = await one(sql<Record<string, unknown>>`insert into webhook_endpoint (endpoint_id, owner_kind, owner_id, url, secret, event_types, allow_private_network, create_time_ns)
        values (${endpoint_id}, ${e.owner_kind}, ${e.owner_id}, ${e.url}, ${newWebhookSecret()}, ${e.event_types.join(",")}, ${e.allow_private_network}, ${e.create_time_ns.toString()})
        returning ${ENDPOINT_COLUMNS}`);
      invalidate();
      return toEndpoint(r!);
    },
    async getEndpoint(id) {
      const r = await one(sql<Record<string, unknown>>`select ${ENDPOINT_COLUMNS} from webhook_endpoint where endpoint_id = ${id}`);
      return r ? toEndpoint(r) : null;
    },
    async listEndpoints(owner, limit) {
      const where = owner ? sql`where owner_kind = ${owner.kind} and owner_id = ${owner.id}` : sql``;
      const r = await sql<Record<string, unknown>>`select ${ENDPOINT_COLUMNS} from webhook_endpoint ${where} order by create_time_ns, endpoint_id limit ${limit}`.execute(db);
      return r.rows.map(toEndpoint);
    },
    async countEndpoints(kind, id) {
      const r = await one(sql<{ n: string }>`select count(*)::text as n from webhook_endpoint where owner_kind = ${kind} and owner_id = ${id} and not disabled`);
      return Number(r?.n ?? 0);
    },
    async disableEndpoint(id, now_ns) {
      return db.transaction().execute(async (trx) => {
        const r = (await sql<Record<string, unknown>>`update webhook_endpoint set disabled = true where endpoint_id = ${id} returning ${ENDPOINT_COLUMNS}`.execute(trx)).rows[0];
        if (!r) return null;
        await sql`update webhook_delivery set status = 'dead', update_time_ns = ${now_ns.toString()} where endpoint_id = ${id} and status = 'pending'`.execute(trx);
        return toEndpoint(r);
      }).finally(invalidate);
    },
    enqueue: async (event, now_ns) => ((await mayReceive(event.type, event.author_id)) ? enqueueWebhookEvent(db, event, now_ns) : 0),
    mayReceive,
    async claim(now_ns, lease_until_ns, max) {
      if (!(Number.isInteger(max) && max >= 1 && max <= WEBHOOK_CLAIM_MAX)) throw new Error(`claim max ${max} must be 1..${WEBHOOK_CLAIM_MAX}`);
      const r = await sql<Record<string, unknown>>`with c as (
          update webhook_delivery set next_attempt_time_ns = ${lease_until_ns.toString()}, update_time_ns = ${now_ns.toString()}
          where delivery_id in (
            select d.delivery_id from webhook_delivery d join webhook_endpoint e on e.endpoint_id = d.endpoint_id
            where d.status = 'pending' and d.next_attempt_time_ns <= ${now_ns.toString()} and not e.disabled
            order by d.next_attempt_time_ns, d.delivery_id limit ${max}
            for update of d skip locked)
          returning *)
        select c.delivery_id, c.endpoint_id, c.event_id, v.event_type, c.status, c.attempts, c.next_attempt_time_ns::text as next_attempt_time_ns,
          c.create_time_ns::text as create_time_ns, v.payload, e.url, e.secret, e.owner_kind, e.allow_private_network
        from c join webhook_event v on v.event_id = c.event_id join webhook_endpoint e on e.endpoint_id = c.endpoint_id
        order by c.next_attempt_time_ns, c.delivery_id`.execute(db);
      return r.rows.map((row) => ({
        ...toDelivery(row),
        url: String(row.url),
        secret: String(row.secret),
        owner_kind: String(row.owner_kind) as WebhookOwnerKind,
        allow_private_network: row.allow_private_network === true,
        lease_until_ns,
      }));
    },
    async recordAttempt(d, o, retry_at_ns) {
      return db.transaction().execute(async (trx) => {
        const status: WebhookDeliveryStatus = o.ok ? "succeeded" : retry_at_ns === null ? "dead" : "pending";
        const next = retry_at_ns ?? d.lease_until_ns;
        const u = await sql<{ attempts: number }>`update webhook_delivery
          set status = ${status}, attempts = attempts + 1, next_attempt_time_ns = ${next.toString()}, update_time_ns = ${o.attempt_time_ns.toString()}
          where delivery_id = ${d.delivery_id} and status = 'pending' and next_attempt_time_ns = ${d.lease_until_ns.toString()}
          returning attempts`.execute(trx);
        const row = u.rows[0];
        if (!row) return false;
        await sql`insert into webhook_attempt (delivery_id, attempt_seq, attempt, attempt_time_ns, http_status, error, duration_ms)
          select ${d.delivery_id}, coalesce(max(attempt_seq), 0) + 1, ${row.attempts}, ${o.attempt_time_ns.toString()}, ${o.http_status}, ${o.error.slice(0, 1000)}, ${o.duration_ms}
          from webhook_attempt where delivery_id = ${d.delivery_id}`.execute(trx);
        return true;
      });
    },
    getDelivery,
    async listDeliveries(endpoint_id, status, before, limit) {
      const s = status ? sql`and d.status = ${status}` : sql``;
      const b = before
        ? sql`and (d.create_time_ns, d.delivery_id) < (${before.create_time_ns.toString()}::bigint, ${before.delivery_id})`
        : sql``;
      const r = await sql<Record<string, unknown>>`select ${DELIVERY_COLUMNS} from webhook_delivery d join webhook_event v on v.event_id = d.event_id
        where d.endpoint_id = ${endpoint_id} ${s} ${b} order by d.create_time_ns desc, d.delivery_id desc limit ${limit}`.execute(db);
      return r.rows.map(toDelivery);
    },
    async attempts(delivery_id) {
      const r = await sql<Record<string, unknown>>`select attempt, attempt_time_ns::text as attempt_time_ns, http_status, error, duration_ms
        from webhook_attempt where delivery_id = ${delivery_id} order by attempt_seq limit ${WEBHOOK_HISTORY_MAX}`.execute(db);
      return r.rows.map((x) => ({
        attempt: Number(x.attempt),
        attempt_time_ns: big(x.attempt_time_ns),
        http_status: Number(x.http_status),
        error: String(x.error),
        duration_ms: Number(x.duration_ms),
      }));
    },
    async redeliver(delivery_id, now_ns) {
      await sql`update webhook_delivery set status = 'pending', attempts = 0, next_attempt_time_ns = ${now_ns.toString()}, update_time_ns = ${now_ns.toString()}
        where delivery_id = ${delivery_id}`.execute(db);
      return getDelivery(delivery_id);
    },
  };
}
