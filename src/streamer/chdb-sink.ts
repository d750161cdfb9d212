/**
 * Embedded ClickHouse (chDB) sink. chDB's queries are synchronous native calls, so the session
 * lives in a worker thread (chdb-worker.ts) and this class only posts messages: the daemon's event
 * loop never waits on ClickHouse.
 */
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { ChdbRequest, ChdbResponse, ChdbWorkerData } from "./chdb-protocol.js";
import { SinkError, quoteIdent, type ResultRow, type Row, type Sink } from "./sink.js";

type Pending = { resolve: (r: ResultRow[] | undefined) => void; reject: (e: Error) => void; sql?: string };

/** Distributive Omit, so each request variant keeps its own fields. */
type RequestBody = ChdbRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

/**
 * Worker bootstrap. There is no build step (the project runs TypeScript through tsx), and on Node 20
 * a worker's `--import tsx` does not apply to the worker's own entry file, so the worker starts as
 * a tiny eval'd script that loads chdb-worker.ts through tsx's programmatic API (resolved from this
 * package, so it works whatever the cwd).
 */
function workerBootstrap(): string {
  const require = createRequire(import.meta.url);
  const api = pathToFileURL(require.resolve("tsx/esm/api").replace(/\.cjs$/, ".mjs")).href;
  const entry = new URL("./chdb-worker.ts", import.meta.url).href;
  return (
    `import(${JSON.stringify(api)}).then((m) => (m.tsImport ?? m.default.tsImport)(` +
    `${JSON.stringify(entry)}, ${JSON.stringify(import.meta.url)}))` +
    `.catch((e) => { setImmediate(() => { throw e; }); });`
  );
}

export class ChdbSink implements Sink {
  readonly kind = "chdb" as const;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private failure: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly database: string,
    readonly path: string,
  ) {}

  /** Open (or create) the chDB directory at `path` in a new worker thread. */
  static async open(opts: { path: string; database: string }): Promise<ChdbSink> {
    quoteIdent(opts.database);
    mkdirSync(opts.path, { recursive: true });
    const worker = new Worker(workerBootstrap(), {
      eval: true,
      workerData: { path: opts.path } satisfies ChdbWorkerData,
    });
    const sink = new ChdbSink(worker, opts.database, opts.path);
    await new Promise<void>((resolve, reject) => {
      const onReady = (msg: ChdbResponse) => {
        if (msg.id === 0) {
          worker.off("error", onError);
          resolve();
        }
      };
      const onError = (err: Error) => {
        worker.off("message", onReady);
        reject(new SinkError(`chDB at ${opts.path} failed to open: ${err.message}`));
      };
      worker.once("message", onReady);
      worker.once("error", onError);
    });
    worker.on("message", (msg: ChdbResponse) => sink.onMessage(msg));
    worker.on("error", (err: Error) => sink.fail(new SinkError(`chDB worker crashed: ${err.message}`)));
    worker.on("exit", (code) => {
      if (!sink.closed) sink.fail(new SinkError(`chDB worker exited (code ${code})`));
    });
    return sink;
  }

  private onMessage(msg: ChdbResponse): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.ok) p.resolve(msg.rows);
    else p.reject(new SinkError(msg.error, p.sql));
  }

  private fail(err: Error): void {
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private call(req: RequestBody, sql?: string): Promise<ResultRow[] | undefined> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new SinkError("chDB sink is closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, sql });
      this.worker.postMessage({ ...req, id } as ChdbRequest);
    });
  }

  async exec(sql: string): Promise<void> {
    await this.call({ op: "exec", sql }, sql);
  }

  async query(sql: string): Promise<ResultRow[]> {
    return (await this.call({ op: "query", sql }, sql)) ?? [];
  }

  async insert(table: string, columns: readonly string[], rows: readonly Row[]): Promise<void> {
    if (rows.length === 0) return;
    quoteIdent(table); // validates both names: chDB's insert takes a plain `db.table`
    await this.call({ op: "insert", table: `${this.database}.${table}`, columns, rows });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.failure) {
      try {
        await this.call({ op: "close" });
      } catch {
        // already failing: terminate below
      }
    }
    this.closed = true;
    await this.worker.terminate();
  }
}
