/**
 * An HTTP/1.1 reverse proxy for tests that must see what a client actually sent: it forwards every
 * request to the daemon's HTTP (Connect) port unchanged and records each request's path,
 * content type and body. Responses pass through untouched.
 */
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";

export interface RecordedRequest {
  /** e.g. "/masques.ledger.v1.SessionService/Don" */
  path: string;
  content_type: string;
  body: Buffer;
}

export class RecordingProxy {
  readonly requests: RecordedRequest[] = [];
  private readonly server: Server;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        this.requests.push({ path: req.url ?? "", content_type: String(req.headers["content-type"] ?? ""), body });
        const headers: IncomingHttpHeaders = { ...req.headers, host: `${this.target.host}:${this.target.port}` };
        const up = request({ host: this.target.host, port: this.target.port, method: req.method, path: req.url, headers }, (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        up.on("error", () => res.destroy());
        up.end(body);
      });
    });
  }

  /** Listen on a free loopback port; returns the proxy's base URL. */
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    const addr = this.server.address();
    if (addr === null || typeof addr === "string") throw new Error("proxy: no TCP address");
    return `http://127.0.0.1:${addr.port}`;
  }

  /** Requests recorded for one RPC method (the path's last segment, e.g. "Don"). */
  calls(method: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.endsWith(`/${method}`));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
