/**
 * The web dashboard on the daemon's HTTP port (issue 19, docs/adr/0121, 0122):
 *
 *   GET  /ui/…                 the built Vite app (ui/dist), every file served by the daemon
 *                              itself (no external fonts or scripts; a strict CSP says so);
 *   GET  /ui/api/sign-in       {"dev_login": bool}: whether the one-click dev login is offered;
 *   POST /ui/api/dev-login     {"kind":"agent"|"author","id":"…"} -> {"token", "expires_in_s"}.
 *
 * The dashboard has no backend of its own: the browser calls the daemon's Connect API with the
 * user's bearer token. The only route that does more than serve files is the dev login, which
 * mints what `masques-ledger token` would mint, under the same rule (the daemon runs on loopback
 * with its dev key pair; DaemonDevLogin is only built then) plus two more for browsers: the
 * request's Host and Origin must both be loopback names (a page elsewhere that rebinds its DNS
 * name to 127.0.0.1 sends its own name in both and is refused), and never for an admin or rail
 * principal (those tokens are pasted).
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type http from "node:http";
import type http2 from "node:http2";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { JWK } from "jose";
import type { Logger } from "pino";
import { z } from "zod";
import { isLoopbackHost } from "../config.js";
import { DEFAULT_SCOPES, mintToken } from "../server/auth.js";

type Req = http.IncomingMessage | http2.Http2ServerRequest;
type Res = http.ServerResponse | http2.Http2ServerResponse;

/** Present only when the daemon verifies tokens with its local dev key pair on loopback. */
export interface DaemonDevLogin {
  privateJwk: JWK;
  issuer: string;
  audience: string;
}

export interface DashboardOptions {
  /** The Vite build output (index.html + assets/). */
  distDir: string;
  devLogin?: DaemonDevLogin;
  log: Logger;
}

/** The build output of ui/ in this installation (`npm run build:ui`). */
export const DEFAULT_UI_DIR = fileURLToPath(new URL("../../ui/dist", import.meta.url));

/** Lifetime of a dev-login token (seconds). */
export const DEV_LOGIN_TTL_S = 3600;
/** Largest dev-login request body accepted (bytes). */
const DEV_LOGIN_MAX_BODY = 1024;

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

/** Every response from /ui/ carries these: nothing is loaded from elsewhere, nothing frames it. */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const devLoginSchema = z.object({
  kind: z.enum(["agent", "author"], { message: "must be agent or author (admin and rail tokens are never minted by the dev login: paste one)" }),
  id: z
    .string()
    .min(1, { message: "is required" })
    .max(128, { message: "must be at most 128 characters" })
    .regex(/^[A-Za-z0-9._@-]+$/, { message: "may contain only letters, digits, '.', '_', '@' and '-'" }),
});

/** The host name of a Host header value ("127.0.0.1:8080", "[::1]:80", "localhost"), lowercased. */
export function hostOfHeader(value: string): string | null {
  const v = value.trim().toLowerCase();
  if (v === "") return null;
  if (v.startsWith("[")) {
    const end = v.indexOf("]");
    return end > 0 ? v.slice(1, end) : null;
  }
  const colon = v.indexOf(":");
  return colon < 0 ? v : v.slice(0, colon);
}

/** The host name of an Origin header value ("http://localhost:8080"); null for "null" or garbage. */
export function hostOfOrigin(value: string): string | null {
  try {
    const u = new URL(value);
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    return u.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  } catch {
    return null;
  }
}

function header(req: Req, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Host of the request (HTTP/1.1 Host or HTTP/2 :authority). */
function requestHost(req: Req): string | undefined {
  return header(req, "host") ?? header(req, ":authority");
}

/**
 * Whether a request may use the dev login: Host and Origin both present and loopback names.
 * Returns the reason it may not, or null.
 */
export function devLoginRefusal(host: string | undefined, origin: string | undefined): string | null {
  const h = host === undefined ? null : hostOfHeader(host);
  if (h === null || !isLoopbackHost(h)) return `Host ${JSON.stringify(host ?? "")} is not a loopback name`;
  const o = origin === undefined ? null : hostOfOrigin(origin);
  if (o === null || !isLoopbackHost(o)) return `Origin ${JSON.stringify(origin ?? "")} is not a loopback origin`;
  return null;
}

function send(res: Res, status: number, body: string, type: string, extra: Record<string, string> = {}): void {
  const buf = Buffer.from(body);
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": type, "content-length": String(buf.byteLength), "cache-control": "no-store", ...extra });
  res.end(buf);
}

function sendJson(res: Res, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), "application/json");
}

function readBody(req: Req, maxBytes: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      total += c.byteLength;
      if (total > maxBytes) over = true;
      else chunks.push(c);
    });
    req.on("end", () => resolve(over ? null : Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/**
 * The /ui/ routes as a fallback for the HTTP listener: returns true when it answered the request
 * (the path is under /ui), false to let the caller answer 404.
 */
export function createDashboardRoutes(opts: DashboardOptions): (req: Req, res: Res) => boolean {
  const root = path.resolve(opts.distDir);

  async function serveFile(res: Res, urlPath: string, method: string): Promise<void> {
    let rel: string;
    try {
      rel = decodeURIComponent(urlPath.slice("/ui/".length));
    } catch {
      send(res, 400, "bad path\n", "text/plain; charset=utf-8");
      return;
    }
    if (rel === "" || !path.extname(rel)) rel = "index.html"; // client-side routes (#/author, …) land on the app
    const file = path.resolve(root, rel);
    if (file !== root && !file.startsWith(root + path.sep)) {
      send(res, 404, "not found\n", "text/plain; charset=utf-8");
      return;
    }
    let size: number;
    try {
      const st = await stat(file);
      if (!st.isFile()) throw new Error("not a file");
      size = st.size;
    } catch {
      if (rel === "index.html") {
        send(
          res,
          503,
          "The dashboard is not built: run `npm run build:ui` (npm install runs it) and reload.\n",
          "text/plain; charset=utf-8",
        );
      } else send(res, 404, "not found\n", "text/plain; charset=utf-8");
      return;
    }
    const type = CONTENT_TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream";
    // Vite names assets by content hash: cache them for good; index.html always revalidates.
    const cache = rel.startsWith("assets/") ? "public, max-age=31536000, immutable" : "no-cache";
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": type, "content-length": String(size), "cache-control": cache });
    if (method === "HEAD") {
      res.end();
      return;
    }
    const stream = createReadStream(file);
    stream.on("error", (err) => {
      opts.log.warn({ err, file: rel }, "dashboard file read failed");
      res.destroy();
    });
    stream.pipe(res as NodeJS.WritableStream);
  }

  async function devLogin(req: Req, res: Res): Promise<void> {
    const dev = opts.devLogin;
    if (!dev) {
      sendJson(res, 403, { error: "dev login is off: the daemon verifies tokens with configured keys (MASQUES_JWT_PUBLIC_KEYS); paste a token" });
      return;
    }
    const refusal = devLoginRefusal(requestHost(req), header(req, "origin"));
    if (refusal) {
      opts.log.warn({ host: requestHost(req), origin: header(req, "origin") }, "dev login refused: not a loopback Host/Origin");
      sendJson(res, 403, { error: `dev login refused: ${refusal} (only pages served from a loopback address may use it)` });
      return;
    }
    const ct = (header(req, "content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (ct !== "application/json") {
      sendJson(res, 415, { error: "content-type must be application/json" });
      return;
    }
    const text = await readBody(req, DEV_LOGIN_MAX_BODY);
    if (text === null) {
      sendJson(res, 413, { error: `body must be at most ${DEV_LOGIN_MAX_BODY} bytes` });
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      sendJson(res, 400, { error: "body must be JSON {\"kind\": \"agent\"|\"author\", \"id\": \"…\"}" });
      return;
    }
    const parsed = devLoginSchema.safeParse(json);
    if (!parsed.success) {
      const error = parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
      sendJson(res, 400, { error });
      return;
    }
    const { kind, id } = parsed.data;
    const token = await mintToken(dev.privateJwk, {
      kind,
      id,
      scopes: DEFAULT_SCOPES[kind],
      ttlS: DEV_LOGIN_TTL_S,
      issuer: dev.issuer,
      audience: dev.audience,
    });
    opts.log.info({ kind, id }, "dev login: token minted for a loopback browser");
    sendJson(res, 200, { token, kind, id, expires_in_s: DEV_LOGIN_TTL_S });
  }

  return (req, res) => {
    const url = req.url ?? "";
    const q = url.indexOf("?");
    const p = q < 0 ? url : url.slice(0, q);
    if (p !== "/ui" && !p.startsWith("/ui/")) return false;
    const method = req.method ?? "GET";
    const fail = (err: unknown) => {
      opts.log.error({ err }, "dashboard route failed");
      if (!res.headersSent) send(res, 500, "internal error\n", "text/plain; charset=utf-8");
      else res.end();
    };
    if (p === "/ui") {
      res.writeHead(308, { location: "/ui/" });
      res.end();
    } else if (p === "/ui/api/dev-login") {
      if (method !== "POST") sendJson(res, 405, { error: "POST only" });
      else devLogin(req, res).catch(fail);
    } else if (p === "/ui/api/sign-in") {
      const offered = opts.devLogin !== undefined && devLoginRefusal(requestHost(req), `http://${requestHost(req) ?? ""}`) === null;
      sendJson(res, 200, { dev_login: offered });
    } else if (p.startsWith("/ui/api/")) {
      sendJson(res, 404, { error: "no such dashboard route" });
    } else if (method === "GET" || method === "HEAD") {
      serveFile(res, p, method).catch(fail);
    } else {
      send(res, 405, "GET only\n", "text/plain; charset=utf-8");
    }
    return true;
  };
}
