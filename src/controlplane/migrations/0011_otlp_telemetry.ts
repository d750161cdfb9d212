/**
 * 0011: OTLP telemetry in (issue 18, ADR 0115): the Claude Code session each masque session was
 * donned in (written before the Don's hold, never changed), and the identity of every OTLP event
 * already stored in ClickHouse (so an exporter's retry does not insert it twice). Rows reference
 * ledger ids (session_id = the masque session, 32 hex). Never edit: add a new migration instead.
 */
import type { ControlPlaneMigration } from "../migrations.js";

export const m0011: ControlPlaneMigration = {
  name: "0011_otlp_telemetry",
  statements: [
    `create table otlp_session_binding (
      session_id text primary key,
      claude_session_id text not null,
      agent_id text not null,
      bind_time_ns bigint not null,
      doff_time_ns bigint
    )`,
    `create index otlp_session_binding_claude on otlp_session_binding (claude_session_id, bind_time_ns desc)`,
    `create table otlp_event (
      event_id text primary key,
      event_name text not null,
      claude_session_id text not null,
      store_time_ns bigint not null
    )`,
  ],
};
