/**
 * Embedded ClickHouse (chDB) sink, on disk under the data directory.
 *
 * Every call uses chDB's asynchronous API (`queryAsync`, `insert`): the engine runs the query on
 * libuv's thread pool, so the daemon's event loop never waits on ClickHouse. (chDB in a
 * worker_threads Worker was tried first and rejected: chDB crashes the process when a thread that
 * ran it exits, including at process exit. See docs/adr/0040-cdc-streamer.md.)
 *
 * chDB's engine is a process singleton: one directory per process at a time. Sinks opened on the
 * same directory share its session (reference counted). Calls are executed one at a time in call
 * order, so "the data, then the cursor" holds without the caller awaiting each step.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Session } from "chdb";
import { encodeTsv, quoteIdent, SinkError, type InsertRow, type ResultRow, type Sink, type SinkLane } from "./sink.js";

/**
 * chDB is loaded on first use, never at import: an image built for a ClickHouse server
 * (Dockerfile target `daemon-server`) does not install it, and the daemon must still start.
 */
async function loadChdb(): Promise<typeof import("chdb")> {
  try {
    return await import("chdb");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") {
      throw new SinkError(
        "the embedded analytics engine (npm package chdb) is not installed in this build (e.g. the daemon-server image): set CLICKHOUSE_URL to a ClickHouse server, or STREAMER_ENABLED=false",
      );
    }
    throw err;
  }
}

let current: { path: string; session: Session; refs: number } | null = null;

/** chDB's connection arguments (every connection this process opens). */
const CONNECTION_ARGS = ["--output_format_json_quote_64bit_integers=1"];

function parseJsonEachRow(text: string): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const line of text.split("\n")) {
    if (line.length > 0) rows.push(JSON.parse(line) as ResultRow);
  }
  return rows;
}

export class ChdbSink implements Sink {
  readonly kind = "chdb" as const;
  private closed = false;
  /** The tail of this sink's call queue. */
  private tail: Promise<unknown> = Promise.resolve();
  /** The unordered lane (see `unordered`), opened on first use. */
  private lane: ChdbSink | null = null;

  private constructor(
    private readonly session: Session,
    readonly database: string,
    readonly path: string,
    private readonly openConnection: (() => Session) | null,
  ) {}

  /**
   * Open (or create) the chDB directory at `path`. One directory per process at a time: opening a
   * second directory while one is open fails; sinks on the same directory share its session.
   */
  static async open(opts: { path: string; database: string }): Promise<ChdbSink> {
    quoteIdent(opts.database);
    // Loaded before the checks below, so they and the session creation run without an await.
    const { Session } = await loadChdb();
    const dir = path.resolve(opts.path);
    if (current && current.path !== dir) {
      throw new SinkError(`chDB directory ${current.path} is already open in this process; chDB hosts one directory per process`);
    }
    if (current) current.refs++;
    else {
      try {
        // Owner-only (analytics rows are balances), whatever the umask.
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        current = {
          path: dir,
          session: new Session(dir, { connectionArgs: CONNECTION_ARGS }),
          refs: 1,
        };
      } catch (err) {
        throw new SinkError(`chDB at ${dir} failed to open: ${(err as Error).message}`);
      }
    }
    return new ChdbSink(current.session, opts.database, dir, () => new Session(dir, { connectionArgs: CONNECTION_ARGS }));
  }

  /** Run `fn` after every earlier call of this sink settled. */
  private enqueue<T>(fn: () => Promise<T>, sql?: string): Promise<T> {
    if (this.closed) return Promise.reject(new SinkError("chDB sink is closed", sql));
    const run = this.tail.then(fn, fn).catch((err: unknown) => {
      throw err instanceof SinkError ? err : new SinkError((err as Error).message, sql);
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  exec(sql: string): Promise<void> {
    return this.enqueue(async () => {
      await this.session.queryAsync(sql, { format: "TSV" });
    }, sql);
  }

  query(sql: string): Promise<ResultRow[]> {
    return this.enqueue(async () => parseJsonEachRow((await this.session.queryAsync(sql, { format: "JSONEachRow" })).text()), sql);
  }

  insert(table: string, columns: readonly string[], rows: readonly InsertRow[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    quoteIdent(table); // validates both names: chDB's insert takes a plain `db.table`
    const values = Buffer.from(encodeTsv(rows));
    return this.enqueue(async () => {
      await this.session.insert({ table: `${this.database}.${table}`, columns, values, format: "TSV" });
    });
  }

  /**
   * The unordered lane: a second chDB connection on the same directory with its own call queue.
   * chDB runs connections to one directory in parallel over the same data, so a lane call never
   * waits behind this sink's queue (the streamer's inserts and recomputes, which can hold it for
   * seconds).
   */
  unordered(): SinkLane {
    if (this.closed) throw new SinkError("chDB sink is closed");
    if (!this.openConnection) return this;
    if (!this.lane) {
      try {
        this.lane = new ChdbSink(this.openConnection(), this.database, this.path, null);
      } catch (err) {
        throw new SinkError(`chDB lane connection failed to open: ${(err as Error).message}`);
      }
    }
    return this.lane;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.tail;
    if (this.lane) {
      const lane = this.lane;
      this.lane = null;
      lane.closed = true; // no new calls; the queued ones drain first
      await lane.tail;
      lane.session.close();
    }
    this.closed = true;
    if (current && current.path === this.path && --current.refs === 0) {
      current.session.close();
      current = null;
    }
  }
}
