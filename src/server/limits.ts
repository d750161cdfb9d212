/**
 * Transport limits shared by both listening ports (docs/adr/0006-transport-limits.md), and the
 * small TCP front both ports use to enforce the ones the HTTP stacks do not have: a cap on open
 * connections and a deadline for a new connection's first bytes.
 *
 * Every other limit is an option of the stack that already parses the traffic (grpc-js server
 * options; node:http and node:http2 server options), so refusals happen early, inside the
 * protocol code, before a request reaches the pipeline.
 */
import net from "node:net";
import type { Logger } from "pino";
import { ConfigError, type Config } from "../config.js";

/** Limits of one daemon's transports. Units in the names; all are upper bounds. */
export interface TransportLimits {
  /** Open connections per listening port. */
  maxConnections: number;
  /** Concurrent HTTP/2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreamsPerConnection: number;
  /** A connection without a call in flight is closed after this long. */
  idleTimeoutMs: number;
  /** A new connection must send its first bytes / first request headers within this. */
  headerTimeoutMs: number;
  /** A request must have arrived completely this long after its headers. */
  requestTimeoutMs: number;
  /** Largest request message (bytes). */
  maxMessageBytes: number;
  /** Largest request header block (bytes). */
  maxMetadataBytes: number;
  /** Longest request value repeated in an error or a log line (UTF-16 code units). */
  maxEchoChars: number;
}

/** The defaults of src/config.ts, for code that runs without a Config (tests, tools). */
export const DEFAULT_LIMITS: TransportLimits = {
  maxConnections: 1024,
  maxStreamsPerConnection: 100,
  idleTimeoutMs: 60_000,
  headerTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxMessageBytes: 4 * 1024 * 1024,
  maxMetadataBytes: 16 * 1024,
  maxEchoChars: 256,
};

export function limitsFromConfig(c: Config): TransportLimits {
  return {
    maxConnections: c.MASQUES_MAX_CONNECTIONS,
    maxStreamsPerConnection: c.MASQUES_MAX_STREAMS_PER_CONNECTION,
    idleTimeoutMs: c.MASQUES_IDLE_TIMEOUT_S * 1000,
    headerTimeoutMs: c.MASQUES_HEADER_TIMEOUT_S * 1000,
    requestTimeoutMs: c.MASQUES_HEADER_TIMEOUT_S * 3000,
    maxMessageBytes: c.MASQUES_MAX_MESSAGE_BYTES,
    maxMetadataBytes: c.MASQUES_MAX_METADATA_BYTES,
    maxEchoChars: c.MASQUES_MAX_ECHO_CHARS,
  };
}

/**
 * Cut a request-derived string to `max` code units, marking the cut and the original length.
 * Never splits a surrogate pair. O(1) for strings within the bound.
 */
export function boundEcho(value: string, max: number): string {
  if (value.length <= max) return value;
  let end = max;
  const last = value.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${value.slice(0, end)}…[${value.length} chars, cut]`;
}

/** Over the cap, at most this many connections wait (bounded by the header timeout) to be answered. */
const OVER_CAP_PENDING_MAX = 64;
/** First bytes read from a connection before it is dispatched. */
const HEAD_BYTES = 3;

export interface Front {
  readonly port: number;
  /** Open connections handed to the protocol server. */
  readonly sockets: ReadonlySet<net.Socket>;
  /** Stop accepting; resolves when every connection is gone. */
  close(): Promise<void>;
  /** Destroy every connection now. */
  destroyAll(): void;
}

export interface FrontOptions {
  host: string;
  port: number;
  /** The variable that sets this address (named when the port is taken). */
  variable: string;
  limits: TransportLimits;
  log: Logger;
  /** Hand a connection to the protocol server; `head` are its first bytes (already unshifted). */
  dispatch(socket: net.Socket, head: Buffer): void;
  /**
   * Over the connection cap: may answer from the first bytes (e.g. a health check) and must end
   * or destroy the socket. Without it, connections over the cap are destroyed at once.
   */
  overCap?(socket: net.Socket, head: Buffer): void;
}

/**
 * Listen on host:port and gate every connection: at most `maxConnections` open ones, each of
 * which must send its first bytes within `headerTimeoutMs`. EADDRINUSE becomes a ConfigError
 * naming the variable to change.
 */
export async function listenFront(o: FrontOptions): Promise<Front> {
  const sockets = new Set<net.Socket>();
  const overCapPending = new Set<net.Socket>();
  let refused = 0;
  let lastRefusalLogMs = 0;

  const readHead = (socket: net.Socket, onHead: (head: Buffer) => void): void => {
    let head: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), o.limits.headerTimeoutMs);
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      if (head.length < HEAD_BYTES) return;
      clearTimeout(timer);
      socket.removeListener("data", onData);
      socket.pause();
      socket.unshift(head);
      onHead(head);
      process.nextTick(() => socket.resume());
    };
    socket.on("data", onData);
    socket.once("close", () => clearTimeout(timer));
  };

  const server = net.createServer((socket) => {
    socket.on("error", () => socket.destroy());
    if (sockets.size >= o.limits.maxConnections) {
      refused += 1;
      const now = Date.now();
      if (now - lastRefusalLogMs > 10_000) {
        lastRefusalLogMs = now;
        o.log.warn({ port: o.variable, max_connections: o.limits.maxConnections, refused_total: refused }, "connection limit reached: refusing new connections");
      }
      if (!o.overCap || overCapPending.size >= OVER_CAP_PENDING_MAX) {
        socket.destroy();
        return;
      }
      const answer = o.overCap;
      overCapPending.add(socket);
      socket.once("close", () => overCapPending.delete(socket));
      readHead(socket, (head) => answer(socket, head));
      return;
    }
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    readHead(socket, (head) => o.dispatch(socket, head));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE" || err.code === "EACCES" || err.code === "EADDRNOTAVAIL") {
        const why = err.code === "EADDRINUSE" ? "is already in use (another daemon or program listens there)" : `cannot be bound (${err.code})`;
        reject(new ConfigError([{ variable: o.variable, message: `${o.host}:${o.port} ${why}; set ${o.variable} to a free address, e.g. ${o.host}:0 for any free port` }]));
      } else reject(err);
    });
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : o.port;
  return {
    port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of overCapPending) s.destroy();
        server.close(() => resolve());
      }),
    destroyAll() {
      for (const s of sockets) s.destroy();
      for (const s of overCapPending) s.destroy();
    },
  };
}
