/**
 * The /ui/ routes alone (src/dashboard/routes.ts) on a real HTTP server: files come only from the
 * build directory (no path traversal), every answer carries the CSP that keeps the page on the
 * daemon, an unbuilt dashboard says how to build it, and the dev login exists only when the
 * daemon has dev keys — and then only for loopback Host and Origin, never for admins.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateKeyPair, exportJWK, jwtVerify } from "jose";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDashboardRoutes, devLoginRefusal, hostOfHeader, hostOfOrigin, type DaemonDevLogin } from "../../src/dashboard/routes.js";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, method: string, urlPath: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: urlPath, headers, setHost: !("host" in headers) }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function serve(routes: ReturnType<typeof createDashboardRoutes>): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (!routes(req, res)) {
      res.statusCode = 404;
      res.end("api");
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

describe("dashboard routes", () => {
  const log = pino({ level: "silent" });
  let root: string;
  let built: { port: number; close(): Promise<void> };
  let unbuilt: { port: number; close(): Promise<void> };
  let publicKey: Awaited<ReturnType<typeof generateKeyPair>>["publicKey"];

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), "masques-ui-"));
    const dist = path.join(root, "dist");
    mkdirSync(path.join(dist, "assets"), { recursive: true });
    writeFileSync(path.join(dist, "index.html"), "<!doctype html><title>app</title>");
    writeFileSync(path.join(dist, "assets", "index-abc.js"), "console.log(1)");
    writeFileSync(path.join(root, "secret.txt"), "outside the build");
    const keys = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    publicKey = keys.publicKey;
    const devLogin: DaemonDevLogin = { privateJwk: { ...(await exportJWK(keys.privateKey)), alg: "EdDSA" }, issuer: "iss-test", audience: "aud-test" };
    built = await serve(createDashboardRoutes({ distDir: dist, devLogin, log }));
    unbuilt = await serve(createDashboardRoutes({ distDir: path.join(root, "missing"), log }));
  });
  afterAll(async () => {
    await built?.close();
    await unbuilt?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("serves the build with a strict CSP, client routes land on index.html, nothing outside the build", async () => {
    const index = await request(built.port, "GET", "/ui/");
    expect(index.status).toBe(200);
    expect(index.body).toContain("<title>app</title>");
    expect(index.headers["content-security-policy"]).toContain("default-src 'self'");
    expect(index.headers["content-security-policy"]).toContain("connect-src 'self'");
    expect(index.headers["x-content-type-options"]).toBe("nosniff");
    expect(index.headers["cache-control"]).toBe("no-cache");
    const asset = await request(built.port, "GET", "/ui/assets/index-abc.js");
    expect(asset.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(asset.headers["cache-control"]).toContain("immutable");
    expect((await request(built.port, "GET", "/ui/author")).body).toContain("<title>app</title>");
    expect((await request(built.port, "GET", "/ui")).headers.location).toBe("/ui/");
    for (const p of ["/ui/..%2fsecret.txt", "/ui/assets/..%2f..%2fsecret.txt", "/ui/%2e%2e/secret.txt"]) {
      const r = await request(built.port, "GET", p);
      expect(r.status, p).toBe(404);
      expect(r.body).not.toContain("outside the build");
    }
    expect((await request(built.port, "GET", "/ui/nope.js")).status).toBe(404);
    expect((await request(built.port, "POST", "/ui/")).status).toBe(405);
    // other paths are not the dashboard's
    expect((await request(built.port, "GET", "/masques.ledger.v1.AccountService/GetAccount")).body).toBe("api");
  });

  it("an unbuilt dashboard answers 503 saying how to build it", async () => {
    const r = await request(unbuilt.port, "GET", "/ui/");
    expect(r.status).toBe(503);
    expect(r.body).toContain("npm run build:ui");
  });

  it("dev login: off without dev keys; with them only for loopback Host and Origin, agents and authors", async () => {
    const port = built.port;
    const json = { "content-type": "application/json" };
    const off = await request(unbuilt.port, "POST", "/ui/api/dev-login", { ...json, origin: `http://127.0.0.1:${unbuilt.port}` }, '{"kind":"author","id":"a"}');
    expect(off.status).toBe(403);
    expect(off.body).toContain("dev login is off");
    expect(JSON.parse((await request(unbuilt.port, "GET", "/ui/api/sign-in")).body)).toEqual({ dev_login: false });
    expect(JSON.parse((await request(port, "GET", "/ui/api/sign-in")).body)).toEqual({ dev_login: true });

    const ok = await request(port, "POST", "/ui/api/dev-login", { ...json, origin: `http://localhost:${port}` }, '{"kind":"agent","id":"bob"}');
    expect(ok.status).toBe(200);
    const { token, expires_in_s } = JSON.parse(ok.body) as { token: string; expires_in_s: number };
    const { payload } = await jwtVerify(token, publicKey, { issuer: "iss-test", audience: "aud-test" });
    expect(payload).toMatchObject({ sub: "bob", kind: "agent", scopes: ["ledger:read", "ledger:write"] });
    expect(expires_in_s).toBe(3600);

    const refused = async (headers: Record<string, string>, body = '{"kind":"author","id":"a"}') => request(port, "POST", "/ui/api/dev-login", headers, body);
    expect((await refused({ ...json, host: "evil.example", origin: "http://evil.example" })).status).toBe(403);
    expect((await refused({ ...json, origin: "http://evil.example" })).status).toBe(403);
    expect((await refused({ ...json, origin: "null" })).status).toBe(403);
    expect((await refused({ ...json })).status).toBe(403);
    expect((await refused({ ...json, host: "localhost.evil.example", origin: `http://localhost:${port}` })).status).toBe(403);
    expect((await refused({ "content-type": "text/plain", origin: `http://127.0.0.1:${port}` })).status).toBe(415);
    const admin = await refused({ ...json, origin: `http://127.0.0.1:${port}` }, '{"kind":"admin","id":"root"}');
    expect(admin.status).toBe(400);
    expect(admin.body).toContain("kind: must be agent or author");
    const rail = await refused({ ...json, origin: `http://127.0.0.1:${port}` }, '{"kind":"rail","id":"base"}');
    expect(rail.status).toBe(400);
    const badId = await refused({ ...json, origin: `http://127.0.0.1:${port}` }, '{"kind":"author","id":"a b"}');
    expect(badId.body).toContain("id: may contain only");
    expect((await refused({ ...json, origin: `http://127.0.0.1:${port}` }, "x".repeat(2000))).status).toBe(413);
    expect((await request(port, "GET", "/ui/api/dev-login")).status).toBe(405);
  });

  it("parses Host and Origin names strictly", () => {
    expect(hostOfHeader("127.0.0.1:8080")).toBe("127.0.0.1");
    expect(hostOfHeader("[::1]:8080")).toBe("::1");
    expect(hostOfHeader("LOCALHOST")).toBe("localhost");
    expect(hostOfHeader("")).toBeNull();
    expect(hostOfOrigin("http://[::1]:8080")).toBe("::1");
    expect(hostOfOrigin("null")).toBeNull();
    expect(hostOfOrigin("file:///x")).toBeNull();
    expect(devLoginRefusal("127.0.0.1.nip.io:80", "http://127.0.0.1")).toMatch(/Host/);
    expect(devLoginRefusal("127.0.0.1:80", "http://127.0.0.1.nip.io")).toMatch(/Origin/);
    expect(devLoginRefusal("[::1]:80", "http://localhost:80")).toBeNull();
  });
});
