/**
 * Who may read which analytics (docs/adr/0120): the same rule as every other read — nobody reads
 * someone else's figures. An author reads its own earnings, an agent its own spend, both with a
 * ledger scope; an admin reads anyone's (naming whose) and the operator views (platform revenue,
 * streamer status). Refusals are PERMISSION_DENIED before any query runs.
 */
import type { Principal } from "../../server/principal.js";
import { isAdmin, requireScope } from "../authz.js";
import { permissionDenied } from "../errors.js";

function who(p: Principal): string {
  return `${p.kind} ${JSON.stringify(p.id)}`;
}

/** Returns the author whose earnings to read ("" when an admin named none: a field violation). */
export function authorizeAuthorEarnings(p: Principal, requested: string): string {
  if (isAdmin(p)) return requested;
  requireScope(p, ["ledger:read", "ledger:write"], "read author earnings");
  if (p.kind !== "author" || (requested !== "" && requested !== p.id)) {
    throw permissionDenied(
      `${who(p)} may not read the earnings${requested ? ` of author ${JSON.stringify(requested)}` : ""}: only its own`,
      { principal_kind: p.kind },
    );
  }
  return p.id;
}

/** Returns the agent whose spend to read ("" when an admin named none: a field violation). */
export function authorizeAgentSpend(p: Principal, requested: string): string {
  if (isAdmin(p)) return requested;
  requireScope(p, ["ledger:read", "ledger:write"], "read agent spend");
  if (p.kind !== "agent" || (requested !== "" && requested !== p.id)) {
    throw permissionDenied(
      `${who(p)} may not read the spend${requested ? ` of agent ${JSON.stringify(requested)}` : ""}: only its own`,
      { principal_kind: p.kind },
    );
  }
  return p.id;
}

/** Operator views: admins only. */
export function authorizeOperatorView(p: Principal, action: string): void {
  if (!isAdmin(p)) throw permissionDenied(`${who(p)} may not ${action}: admin only`, { principal_kind: p.kind });
}
