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
import { walletOf } from "../domain/session-accounts.js";
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

/**
 * Governance (issue 16): an admin principal holding the action's own scope. The `admin` scope
 * alone does not approve or activate rules (seed 003 FR-3: scopes per action).
 */
export function requireGovernanceScope(p: Principal, scope: "admin:rules:write" | "admin:rules:approve" | "admin:rules:emergency", action: string): void {
  if (p.kind !== "admin" || !hasScope(p, scope)) {
    throw permissionDenied(`${who(p)} may not ${action}: requires an admin token with scope ${scope}`, { principal_kind: p.kind, scope });
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
    case "collector":
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
 * AccountService.Deposit: admins only — manual deposits (no rail, from the operator account) and
 * corrections on a rail, both logged with the admin's identity. Rail adapters never credit
 * through this path (issue 13: keyed by (rail, idempotency key) it could credit one chain
 * transaction twice); they report verified deposits through SettlementService.ReportDeposit,
 * credited once per chain event (docs/adr/0087).
 */
export function authorizeDeposit(p: Principal, rail: RailName | null): void {
  if (isAdmin(p)) return;
  if (p.kind === "rail") {
    throw permissionDenied(
      `rail adapter ${JSON.stringify(p.id)} may not deposit through AccountService.Deposit${rail ? ` (rail ${rail})` : ""}: ` +
        "report verified chain deposits with SettlementService.ReportDeposit; manual deposits are admin only",
      { principal_kind: p.kind },
    );
  }
  throw permissionDenied(`${who(p)} may not deposit: manual deposits are admin only`, { principal_kind: p.kind });
}

// ---- SessionService ----------------------------------------------------------------------------
// An agent acts on and reads only its own sessions (the session's hold names its wallet); an
// author reads and lists sessions whose pinned price book pays them; admins do everything.

/**
 * Don: an agent for itself (ledger:write), without overriding the billing mode; an admin for any
 * agent. Returns the agent the session is for ("" when an admin named none: a field violation).
 */
export function authorizeDon(p: Principal, requestedAgentId: string, overridesBillingMode: boolean): string {
  if (isAdmin(p)) return requestedAgentId;
  requireScope(p, ["ledger:write"], "don a masque");
  if (p.kind !== "agent") throw permissionDenied(`${who(p)} may not don a masque: agents only`, { principal_kind: p.kind });
  if (requestedAgentId && requestedAgentId !== p.id) {
    throw permissionDenied(`agent ${JSON.stringify(p.id)} may not don a masque for agent ${JSON.stringify(requestedAgentId)}`, {
      principal_kind: p.kind,
    });
  }
  if (overridesBillingMode) {
    throw permissionDenied(`${who(p)} may not override the billing mode: admin only`, { principal_kind: p.kind });
  }
  return p.id;
}

/** RecordUsage, the call: agents (ledger:write) and admins; each event is then checked with usageAgentFor. */
export function authorizeRecordUsage(p: Principal): void {
  if (isAdmin(p)) return;
  requireScope(p, ["ledger:write"], "record usage");
  if (p.kind !== "agent") throw permissionDenied(`${who(p)} may not record usage: agents only`, { principal_kind: p.kind });
}

/**
 * RecordUsage, each event: the agent whose meters take the usage, or null (PERMISSION_DENIED).
 * Only the session's own agent records usage; an admin cannot (it cannot know the agent id
 * behind a wallet, and nobody records usage for another agent).
 */
export function usageAgentFor(p: Principal, sessionWalletId: bigint): string | null {
  return p.kind === "agent" && walletOf(p.id) === sessionWalletId ? p.id : null;
}

/** Doff, Cancel, Heartbeat: the session's own agent (ledger:write) or an admin. */
export function authorizeActOnSession(p: Principal, sessionWalletId: bigint, sessionId: bigint, action: string): void {
  if (isAdmin(p)) return;
  requireScope(p, ["ledger:write"], action);
  if (p.kind !== "agent" || walletOf(p.id) !== sessionWalletId) {
    throw permissionDenied(`${who(p)} may not ${action} session ${idToHex(sessionId)}: not its own`, {
      principal_kind: p.kind,
      session_id: idToHex(sessionId),
    });
  }
}

/**
 * GetSession: the session's agent, the author its pinned price book pays (a read scope), or an
 * admin. `session` null (no such session): only the scope is checked, so NOT_FOUND follows.
 */
export function authorizeReadSession(
  p: Principal,
  session: { wallet_id: bigint; session_id: bigint; payee_author: string | null } | null,
): void {
  if (isAdmin(p)) return;
  requireScope(p, ["ledger:read", "ledger:write"], "read sessions");
  if (session === null) return;
  const ok =
    (p.kind === "agent" && walletOf(p.id) === session.wallet_id) ||
    (p.kind === "author" && session.payee_author === p.id);
  if (!ok) {
    throw permissionDenied(`${who(p)} may not read session ${idToHex(session.session_id)}`, {
      principal_kind: p.kind,
      session_id: idToHex(session.session_id),
    });
  }
}

/** A ListSessions owner filter. */
export type SessionOwner = { case: "agentId" | "masque" | "author"; value: string } | { case: undefined; value: string };

/**
 * ListSessions: an agent lists its own sessions, an author those of its masques (by author or by
 * one of its masque names), an admin anything. Returns the owner filter to apply (an unset
 * filter becomes the caller's own). `masqueAuthor` names a masque's author in the catalog.
 */
export function authorizeListSessions(p: Principal, owner: SessionOwner, masqueAuthor: (name: string) => string | undefined): SessionOwner {
  if (isAdmin(p)) return owner;
  requireScope(p, ["ledger:read", "ledger:write"], "list sessions");
  if (p.kind === "agent") {
    const o: SessionOwner = owner.case === undefined ? { case: "agentId", value: p.id } : owner;
    if (o.case !== "agentId" || o.value !== p.id) {
      throw permissionDenied(`${who(p)} may list only its own sessions`, { principal_kind: p.kind });
    }
    return o;
  }
  if (p.kind === "author") {
    const o: SessionOwner = owner.case === undefined ? { case: "author", value: p.id } : owner;
    const ownMasque = o.case === "masque" && masqueAuthor(o.value) === p.id;
    if (!(o.case === "author" && o.value === p.id) && !ownMasque) {
      throw permissionDenied(`${who(p)} may list only sessions of its own masques`, { principal_kind: p.kind });
    }
    return o;
  }
  throw permissionDenied(`${who(p)} may not list sessions`, { principal_kind: p.kind });
}

/** ListMasques: any principal with a ledger scope. */
export function authorizeListMasques(p: Principal): void {
  requireScope(p, ["ledger:read", "ledger:write"], "list masques");
}

// ---- SettlementService -------------------------------------------------------------------------
// An author manages only its own destinations and payouts; a rail adapter acts only on its own
// rail's payouts; admins read everything (docs/adr/0086).

/** Author actions on its own payouts and destinations (ledger:write). Returns the author id. */
export function authorizeAuthorPayouts(p: Principal, action: string): string {
  if (p.kind !== "author") throw permissionDenied(`${who(p)} may not ${action}: authors only`, { principal_kind: p.kind });
  requireScope(p, ["ledger:write"], action);
  return p.id;
}

/**
 * Reading payouts / destinations: an author its own (an empty `requested` means itself), an
 * admin anyone's (must name the author). Returns the author whose rows to read ("" when an admin
 * named none: a field violation).
 */
export function authorizeReadPayouts(p: Principal, requested: string, action: string): string {
  if (isAdmin(p)) return requested;
  requireScope(p, ["ledger:read", "ledger:write"], action);
  if (p.kind !== "author" || (requested !== "" && requested !== p.id)) {
    throw permissionDenied(`${who(p)} may not ${action}${requested ? ` of author ${JSON.stringify(requested)}` : ""}: only its own`, {
      principal_kind: p.kind,
    });
  }
  return p.id;
}

/** Whether `p` may see one payout of `author_id` (the caller answers PAYOUT_NOT_FOUND otherwise). */
export function canSeePayout(p: Principal, author_id: string, rail: RailName): boolean {
  return isAdmin(p) || (p.kind === "author" && p.id === author_id) || (p.kind === "rail" && p.id === rail);
}

/** A rail adapter acting on `rail`: the rail principal of that very rail, with rail:settle. */
export function authorizeRailAdapter(p: Principal, rail: RailName, action: string): void {
  if (p.kind !== "rail") throw permissionDenied(`${who(p)} may not ${action}: rail adapters only`, { principal_kind: p.kind });
  if (p.id !== rail) {
    throw permissionDenied(`rail adapter ${JSON.stringify(p.id)} may not ${action} on rail ${JSON.stringify(rail)}: only on its own rail`, {
      principal_kind: p.kind,
      rail,
    });
  }
  requireScope(p, ["rail:settle"], action);
}

/** BindDepositSource: an agent for itself (ledger:write). Returns the agent id. */
export function authorizeBindDepositSource(p: Principal): string {
  if (p.kind !== "agent") throw permissionDenied(`${who(p)} may not bind a deposit source: agents only`, { principal_kind: p.kind });
  requireScope(p, ["ledger:write"], "bind a deposit source");
  return p.id;
}

/**
 * Reading deposits / deposit sources: an agent its own (an empty `requested` means itself), an
 * admin anyone's. Returns the agent whose rows to read; "" only for an admin who named none
 * (ListDeposits then lists the HELD deposits, the admin's review queue).
 */
export function authorizeReadDeposits(p: Principal, requested: string, action: string): string {
  if (isAdmin(p)) return requested;
  requireScope(p, ["ledger:read", "ledger:write"], action);
  if (p.kind !== "agent" || (requested !== "" && requested !== p.id)) {
    throw permissionDenied(`${who(p)} may not ${action}${requested ? ` of agent ${JSON.stringify(requested)}` : ""}: only its own`, {
      principal_kind: p.kind,
    });
  }
  return p.id;
}

// ---- limits, peer transfers, refunds (issue 17, ADR 0110-0113) --------------------------------

/**
 * Spending limits and peer transfers of agent `agentId`: the agent itself with `scope`, or an
 * admin. (Whether an agent's cap change is a raise is decided by the ledger, ADR 0110.)
 */
export function authorizeAgentOwn(p: Principal, agentId: string, scope: Scope, action: string): void {
  if (isAdmin(p)) return;
  if (p.kind !== "agent" || p.id !== agentId) {
    throw permissionDenied(`${who(p)} may not ${action} of agent ${JSON.stringify(agentId)}: not its own`, { principal_kind: p.kind });
  }
  requireScope(p, [scope], action);
}

/**
 * RefundSession: an admin, or the session's author (their earnings account received its share)
 * with ledger:write while `now_ns` <= settlement + `window_s` (0: never). ADR 0112.
 */
export function authorizeRefund(
  p: Principal,
  session: { session_id: bigint; earnings_id: bigint; settled_ns: bigint },
  now_ns: bigint,
  window_s: number,
): void {
  if (isAdmin(p)) return;
  if (p.kind !== "author" || authorEarningsId(p.id) !== session.earnings_id) {
    throw permissionDenied(`${who(p)} may not refund session ${idToHex(session.session_id)}: admins, or its masque's author, only`, { principal_kind: p.kind });
  }
  requireScope(p, ["ledger:write"], "refund a session");
  if (window_s === 0 || now_ns > session.settled_ns + BigInt(window_s) * 1_000_000_000n) {
    throw permissionDenied(`the author may refund session ${idToHex(session.session_id)} only within ${window_s} s of its settlement; ask an admin`, {
      principal_kind: p.kind,
      reason: "REFUND_WINDOW_CLOSED",
    });
  }
}
