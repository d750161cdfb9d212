/**
 * Signing in: a bearer token pasted by the user, or (local development only) one minted by the
 * daemon's dev login, which the daemon offers only on loopback with its dev keys and only to
 * loopback Host/Origin requests, and never for admins (docs/adr/0122). The token lives in
 * sessionStorage: gone when the tab closes, never sent anywhere but this daemon.
 */
const KEY = "masques-ledger.token";

export type Kind = "agent" | "author" | "rail" | "admin";

export interface Identity {
  token: string;
  kind: Kind;
  id: string;
  /** Expiry, ms since the epoch (0 when the token has none). */
  expires_ms: number;
}

/** Read kind/sub/exp from a JWT for display and routing (the daemon verifies it on every call). */
export function identityOf(token: string): Identity | null {
  const parts = token.trim().split(".");
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1]!.replace(/-/g, "+").replace(/_/g, "/"));
    const claims = JSON.parse(json) as { kind?: unknown; sub?: unknown; exp?: unknown };
    const kinds: Kind[] = ["agent", "author", "rail", "admin"];
    const kind = kinds.find((k) => k === claims.kind);
    if (!kind || typeof claims.sub !== "string") return null;
    return { token: token.trim(), kind, id: claims.sub, expires_ms: typeof claims.exp === "number" ? claims.exp * 1000 : 0 };
  } catch {
    return null;
  }
}

export function currentIdentity(): Identity | null {
  const t = sessionStorage.getItem(KEY);
  if (!t) return null;
  const who = identityOf(t);
  if (!who || (who.expires_ms > 0 && who.expires_ms < Date.now())) {
    sessionStorage.removeItem(KEY);
    return null;
  }
  return who;
}

export function signIn(token: string): Identity {
  const who = identityOf(token);
  if (!who) throw new Error("That is not a bearer token from this daemon (expected a JWT with `kind` and `sub` claims).");
  sessionStorage.setItem(KEY, who.token);
  return who;
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}

/** Whether the daemon offers the one-click dev login to this page. */
export async function devLoginOffered(): Promise<boolean> {
  try {
    const r = await fetch("/ui/api/sign-in", { headers: { accept: "application/json" } });
    if (!r.ok) return false;
    const body = (await r.json()) as { dev_login?: unknown };
    return body.dev_login === true;
  } catch {
    return false;
  }
}

/** Ask the daemon's dev login for a token (agent or author). Throws with the daemon's reason. */
export async function devLogin(kind: "agent" | "author", id: string): Promise<Identity> {
  const r = await fetch("/ui/api/dev-login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind, id }),
  });
  const body = (await r.json().catch(() => ({}))) as { token?: unknown; error?: unknown };
  if (!r.ok || typeof body.token !== "string") throw new Error(typeof body.error === "string" ? body.error : `dev login failed (HTTP ${r.status})`);
  return signIn(body.token);
}
