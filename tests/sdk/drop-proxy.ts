/**
 * A TCP proxy for tests that can drop a connection *after* the daemon handled a request but
 * *before* the client sees the response — the case where a naive retry would charge twice.
 *
 * For HTTP/2 (gRPC) it parses the server->client frame stream and cuts the connection at the
 * first response HEADERS frame (type 0x1 on a non-zero stream); connection-level frames
 * (SETTINGS, PING, WINDOW_UPDATE) pass through. For HTTP/1.1 (Connect) it cuts at the first
 * response byte. Each armed drop affects one response; later connections pass through untouched.
 */
import { createServer, connect, type Server, type Socket } from "node:net";

export class DropProxy {
  /** Responses dropped so far. */
  dropped = 0;
  private armed = 0;
  private server: Server;
  private sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly target: { host: string; port: number },
    private readonly protocol: "h2" | "http1",
  ) {
    this.server = createServer((client) => this.onConnection(client));
  }

  /** Drop the next `n` responses. */
  dropNext(n = 1): void {
    this.armed += n;
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as { port: number }).port;
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private onConnection(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", kill);
    upstream.on("error", kill);
    client.on("close", () => {
      this.sockets.delete(client);
      upstream.destroy();
    });
    upstream.on("close", () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    client.on("data", (b) => upstream.write(b));

    let buf = Buffer.alloc(0);
    upstream.on("data", (chunk: Buffer) => {
      if (this.protocol === "http1") {
        if (this.armed > 0) {
          this.armed--;
          this.dropped++;
          kill();
          return;
        }
        client.write(chunk);
        return;
      }
      // HTTP/2: forward whole frames; cut before the first response HEADERS while armed.
      buf = Buffer.concat([buf, chunk]);
      let out = 0;
      while (buf.length - out >= 9) {
        const len = buf.readUIntBE(out, 3);
        const type = buf[out + 3]!;
        const stream = buf.readUInt32BE(out + 5) & 0x7fffffff;
        if (buf.length - out < 9 + len) break;
        if (type === 0x1 && stream !== 0 && this.armed > 0) {
          this.armed--;
          this.dropped++;
          if (out > 0) client.write(buf.subarray(0, out));
          kill();
          return;
        }
        out += 9 + len;
      }
      if (out > 0) {
        client.write(buf.subarray(0, out));
        buf = buf.subarray(out);
      }
    });
  }
}
