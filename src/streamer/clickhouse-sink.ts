/**
 * ClickHouse server sink (@clickhouse/client over HTTP), used when CLICKHOUSE_URL is set. It runs
 * exactly the SQL the embedded chDB sink runs; only the transport differs. Inserts send the same
 * TabSeparated payload the chDB sink builds.
 */
import { Readable } from "node:stream";
import { createClient, type ClickHouseClient } from "@clickhouse/client";

/** @clickhouse/client's pluggable connection (its type is not re-exported by name). */
export type ClickHouseConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>["connection"]>;
import { encodeTsv, quoteIdent, SinkError, type InsertRow, type ResultRow, type Sink, type SinkLane } from "./sink.js";

export interface ClickHouseSinkOptions {
  url: string;
  database: string;
  username?: string;
  password?: string;
  /** Per-request timeout. Default 60 s. */
  request_timeout_ms?: number;
  /**
   * A custom @clickhouse/client connection instead of HTTP to `url` (e.g. chdb/connection's
   * in-process engine, which is how the test suite exercises this sink without a server).
   */
  connection?: ClickHouseConnection;
}

export class ClickHouseSink implements Sink {
  readonly kind = "clickhouse" as const;
  readonly database: string;
  private readonly client: ClickHouseClient;

  constructor(opts: ClickHouseSinkOptions) {
    quoteIdent(opts.database);
    this.database = opts.database;
    this.client = createClient({
      url: opts.url,
      ...(opts.connection ? { connection: opts.connection } : {}),
      username: opts.username,
      password: opts.password,
      request_timeout: opts.request_timeout_ms ?? 60_000,
      clickhouse_settings: {
        output_format_json_quote_64bit_integers: 1,
        // Inserts are synchronous and acknowledged only once written: the cursor follows the data.
        async_insert: 0,
        wait_end_of_query: 1,
      },
    });
  }

  async exec(sql: string): Promise<void> {
    try {
      await this.client.command({ query: sql });
    } catch (err) {
      throw new SinkError(`ClickHouse: ${(err as Error).message}`, sql);
    }
  }

  async query(sql: string): Promise<ResultRow[]> {
    try {
      const rs = await this.client.query({ query: sql, format: "JSONEachRow" });
      return await rs.json<ResultRow>();
    } catch (err) {
      throw new SinkError(`ClickHouse: ${(err as Error).message}`, sql);
    }
  }

  async insert(table: string, columns: readonly string[], rows: readonly InsertRow[]): Promise<void> {
    if (rows.length === 0) return;
    const target = `${quoteIdent(this.database)}.${quoteIdent(table)}`;
    const cols = columns.map(quoteIdent).join(", ");
    try {
      await this.client.exec({
        query: `INSERT INTO ${target} (${cols}) FORMAT TabSeparated`,
        values: Readable.from([encodeTsv(rows)]),
      }).then((r) => drain(r.stream));
    } catch (err) {
      throw new SinkError(`ClickHouse insert into ${table}: ${(err as Error).message}`);
    }
  }

  /** Server calls are independent HTTP requests already: the sink itself. */
  unordered(): SinkLane {
    return this;
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

async function drain(stream: NodeJS.ReadableStream): Promise<void> {
  for await (const _ of stream as AsyncIterable<unknown>) {
    // the response body of an INSERT is empty; read it so the socket is released
  }
}
