/**
 * Authorization: nobody acts for someone else (the confused-deputy rule of seed 003).
 *
 * A principal's rights come from who it is (the token's subject), never from the request body:
 * the set of ledger accounts a principal owns is derived from its identity with the same
 * deterministic id functions that created them, and a request naming any other account is
 * refused with PERMISSION_DENIED before anything is looked up or moved (so a refusal also tells
 * the caller nothing about whether the other account exists).
 */
import type { HandlerContext } from "@connectrpc/connect";
import type { RailName } from "../domain/codes.js";
import {
  agentCreditLineId,
  agentDebtId,
  agentWalletId,
  authorEarningsId,
  railAccountId,
} from "../domain/accounts.js";
import { idToHex } from "../domain/ids.js";
import { principalKey, type Principal, type Scope } from "../server/principal.js";
import { permissionDenied, unauthenticated } from "./errors.js";

/** The authenticated principal of a call (auth runs before every handler). */
export function principalOf(ctx: HandlerContext): Principal {
  const p = ctx.values.get(principalKey);
  if (p === undefined) throw unauthenticated();
  return p;
}

export function hasScope(p: Principal, scope: Scope): boolean {
  return p.scopes.includes(scope);
}

/** An admin is an admin principal holding the admin scope. */
export function isAdmin(p: Principal): boolean {
  return p.kind === "admin" && hasScope(p, "admin");
}

function who(p: Principal): string {
  return `${p.kind} ${JSON.stringify(p.id)}`;
}

export function requireAdmin(p: Principal, action: string): void {
  if (!isAdmin(p)) throw permissionDenied(`${who(p)} may not ${action}: admin only`, { principal_kind: p.kind });
}

/** Require one of `scopes` (admins always pass). */
export function requireScope(p: Principal, scopes: readonly Scope[], action: string): void {
  if (isAdmin(p)) return;
  if (!scopes.some((s) => hasScope(p, s))) {
    throw permissionDenied(`${who(p)} may not ${action}: token lacks scope ${scopes.join(" or ")}`, {
      principal_kind: p.kind,
    });
  }
}

/** The accounts a (non-admin) principal owns. */
export function ownedAccountIds(p: Principal): Set<bigint> {
  switch (p.kind) {
    case "agent": {
      const wallet = agentWalletId(p.id);
      return new Set([wallet, agentCreditLineId(wallet), agentDebtId(p.id)]);
    }
    case "author":
      return new Set([authorEarningsId(p.id)]);
    case "rail":
      return new Set([railAccountId("rail_inbound", p.id), railAccountId("rail_outbound", p.id)]);
    case "admin":
      return new Set();
  }
}

/** Reading an account: admins read anything; others only accounts they own, with a read scope. */
export function authorizeRead(p: Principal, accountId: bigint): void {
  if (isAdmin(p)) return;
  const scopes: Scope[] = p.kind === "rail" ? ["ledger:read", "rail:settle"] : ["ledger:read"];
  requireScope(p, scopes, "read accounts");
  if (!ownedAccountIds(p).has(accountId)) {
    throw permissionDenied(`${who(p)} may not read account ${idToHex(accountId)}: not its own`, {
      principal_kind: p.kind,
      account_id: idToHex(accountId),
    });
  }
}

/** Opening an agent wallet / author earnings: the owner itself (ledger:write) or an admin. */
export function authorizeOpenOwn(p: Principal, ownerKind: "agent" | "author", ownerId: string): void {
  if (isAdmin(p)) return;
  const action = ownerKind === "agent" ? "open an agent wallet" : "open an author earnings account";
  if (p.kind !== ownerKind || p.id !== ownerId) {
    throw permissionDenied(`${who(p)} may not ${action} for ${ownerKind} ${JSON.stringify(ownerId)}`, {
      principal_kind: p.kind,
    });
  }
  requireScope(p, ["ledger:write"], action);
}

/**
 * Deposits: a rail adapter (rail:settle) from its own rail's inbound account only; manual
 * deposits (no rail, from the operator account) and deposits on any rail by admins.
 */
export function authorizeDeposit(p: Principal, rail: RailName | null): void {
  if (isAdmin(p)) return;
  if (p.kind !== "rail") {
    throw permissionDenied(`${who(p)} may not deposit: only rail adapters and admins credit deposits`, {
      principal_kind: p.kind,
    });
  }
  if (rail === null) {
    throw permissionDenied(`rail adapter ${JSON.stringify(p.id)} may not make manual deposits: admin only`, {
      principal_kind: p.kind,
    });
  }
  if (rail !== p.id) {
    throw permissionDenied(
      `rail adapter ${JSON.stringify(p.id)} may not deposit from rail ${JSON.stringify(rail)}: only from its own rail`,
      { principal_kind: p.kind, rail },
    );
  }
  requireScope(p, ["rail:settle"], "deposit");
}
