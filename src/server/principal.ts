/**
 * Who is calling. Every RPC runs with exactly one authenticated principal (from a bearer JWT,
 * see src/server/auth.ts). Handlers read it from the Connect handler context with
 * `ctx.values.get(principalKey)` and must check it against the resource they touch.
 */
import { createContextKey } from "@connectrpc/connect";
import type { RailName } from "../domain/codes.js";

export type Scope =
  /** Read own wallet / own earnings / own sessions. */
  | "ledger:read"
  /** Act on own wallet: don/doff/usage, open own accounts. */
  | "ledger:write"
  /** Rail adapters: credit deposits and settle payouts on their own rail. */
  | "rail:settle"
  /** Admins: open platform accounts, mint deposits by hand, read anything. */
  | "admin"
  /** Governance (issue 16, seed 003 FR-3): create and submit revenue rules (admins only). */
  | "admin:rules:write"
  /** Governance: approve (four-eyes), reject and activate revenue rules (admins only). */
  | "admin:rules:approve"
  /** Governance: emergency activation of a revenue rule, skipping approval and cooling (admins only). */
  | "admin:rules:emergency";

export type Principal =
  | { kind: "agent"; id: string; scopes: readonly Scope[] }
  | { kind: "author"; id: string; scopes: readonly Scope[] }
  | { kind: "rail"; id: RailName; scopes: readonly Scope[] }
  | { kind: "admin"; id: string; scopes: readonly Scope[] }
  /** An OTLP collector forwarding many agents' telemetry: its events are stored, never billed (issue 18). */
  | { kind: "collector"; id: string; scopes: readonly Scope[] };

export type PrincipalKind = Principal["kind"];

/** Set by the auth interceptor before any handler runs; handlers never see an unauthenticated call. */
export const principalKey = createContextKey<Principal | undefined>(undefined, {
  description: "authenticated principal",
});

/** Request id for structured logs (taken from `x-request-id` or generated). */
export const requestIdKey = createContextKey<string>("", { description: "request id" });
