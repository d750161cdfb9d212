/**
 * 0007: webhook endpoints and the durable delivery outbox (issue 16, ADR 0105). Events are
 * written by `enqueueWebhookEvent` in the caller's transaction, fanned out to one delivery per
 * matching endpoint; the dispatcher leases due deliveries by moving `next_attempt_time_ns`.
 * Never edit: add a new migration instead.
 */
import type { ControlPlaneMigration } from "../migrations.js";

export const m0007: ControlPlaneMigration = {
  name: "0007_webhooks",
  statements: [
    `create table webhook_endpoint (
      endpoint_id text primary key,
      owner_kind text not null check (owner_kind in ('admin', 'author')),
      owner_id text not null,
      url text not null check (length(url) <= 2048),
      secret text not null check (secret like 'whsec_%'),
      event_types text not null,
      allow_private_network boolean not null default false,
      disabled boolean not null default false,
      create_time_ns bigint not null
    )`,
    `create index webhook_endpoint_owner on webhook_endpoint (owner_kind, owner_id)`,
    `create table webhook_event (
      event_id text primary key,
      event_type text not null,
      author_id text,
      payload text not null,
      create_time_ns bigint not null
    )`,
    `create table webhook_delivery (
      delivery_id text primary key,
      event_id text not null references webhook_event (event_id),
      endpoint_id text not null references webhook_endpoint (endpoint_id),
      status text not null check (status in ('pending', 'succeeded', 'dead')),
      attempts integer not null default 0 check (attempts >= 0),
      next_attempt_time_ns bigint not null,
      create_time_ns bigint not null,
      update_time_ns bigint not null,
      unique (event_id, endpoint_id)
    )`,
    `create index webhook_delivery_due on webhook_delivery (next_attempt_time_ns) where status = 'pending'`,
    `create index webhook_delivery_endpoint on webhook_delivery (endpoint_id, create_time_ns desc, delivery_id desc)`,
    `create table webhook_attempt (
      delivery_id text not null references webhook_delivery (delivery_id),
      attempt_seq integer not null,
      attempt integer not null,
      attempt_time_ns bigint not null,
      http_status integer not null,
      error text not null,
      duration_ms integer not null,
      primary key (delivery_id, attempt_seq)
    )`,
  ],
};
