/**
 * A ClickHouse sink: the one seam between the streamer and ClickHouse. Two implementations run
 * the same SQL text: embedded chDB (chdb-sink.ts, the default, async API off the event loop) and a ClickHouse
 * server over HTTP (clickhouse-sink.ts, when CLICKHOUSE_URL is set).
 *
 * Results come back as JSONEachRow objects with every integer of 64 bits or more quoted
 * (output_format_json_quote_64bit_integers=1), so UInt128 ids and amounts stay exact strings.
 */

/** One value of a row to insert. bigint for UInt64/UInt128, string for strings/enums. */
export type Cell = string | number | bigint | boolean;
export type Row = readonly Cell[];

/** A result row: column name -> value; 64-bit and wider integers are decimal strings. */
export type ResultRow = Record<string, string | number | boolean | null>;

export interface Sink {
  readonly kind: "chdb" | "clickhouse";
  /** The ClickHouse database every table lives in. */
  readonly database: string;
  /** Run one statement (DDL, INSERT ... SELECT, ALTER ...). */
  exec(sql: string): Promise<void>;
  /** Run one SELECT and return its rows. */
  query(sql: string): Promise<ResultRow[]>;
  /** Insert rows positionally into `table` (unqualified: the sink's database is used). */
  insert(table: string, columns: readonly string[], rows: readonly Row[]): Promise<void>;
  /**
   * A lane of this sink whose calls are not ordered after its other calls, so they never wait
   * behind the streamer's queued work (OTLP's api_requests). Lane calls run one at a time among
   * themselves, in call order. Closed with the sink.
   */
  unordered(): SinkLane;
  close(): Promise<void>;
}

/** See `Sink.unordered`. */
export type SinkLane = Pick<Sink, "query" | "insert">;

export class SinkError extends Error {
  constructor(
    message: string,
    readonly sql?: string,
  ) {
    super(message);
    this.name = "SinkError";
  }
}

/**
 * Encode rows as TabSeparated text (the cheapest format for ClickHouse to parse). Strings are
 * escaped as the TSV format requires (backslash, tab, newline, carriage return).
 */
export function encodeTsv(rows: readonly Row[]): string {
  // Cells into an array joined once per row: ~6x faster than `line += ...` with String(bigint)
  // (this runs on the daemon's event loop for every copied row).
  const lines: string[] = new Array<string>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    const cells: string[] = new Array<string>(row.length);
    for (let c = 0; c < row.length; c++) {
      const v = row[c]!;
      cells[c] =
        typeof v === "bigint"
          ? v === 0n
            ? "0"
            : v.toString()
          : typeof v === "number"
            ? "" + v
            : typeof v === "string"
              ? escapeTsv(v)
              : v
                ? "1"
                : "0";
    }
    lines[r] = cells.join("\t");
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

const TSV_SPECIAL = /[\\\t\n\r]/;
function escapeTsv(s: string): string {
  if (!TSV_SPECIAL.test(s)) return s;
  return s.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r");
}

/** Substitute the database into SQL text written with the `{{db}}` placeholder. */
export function bindDatabase(sql: string, database: string): string {
  return sql.replaceAll("{{db}}", quoteIdent(database));
}

/** Quote an identifier for ClickHouse (backticks). */
export function quoteIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new SinkError(`invalid ClickHouse identifier: ${JSON.stringify(name)}`);
  }
  return `\`${name}\``;
}

/** A SQL literal for a UInt128 (big literals must not go through Float64). */
export function u128(v: bigint): string {
  return `toUInt128('${v.toString()}')`;
}

/** A SQL Array(UInt128) literal. */
export function u128Array(values: Iterable<bigint>): string {
  const parts: string[] = [];
  for (const v of values) parts.push(`'${v.toString()}'`);
  return `CAST([${parts.join(",")}] AS Array(UInt128))`;
}
