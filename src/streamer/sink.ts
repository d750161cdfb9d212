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

/**
 * A row its producer has already encoded as one TabSeparated line, without the trailing newline
 * (OTLP's api_requests rows, built in one pass: src/telemetry/ingest.ts). The producer answers for
 * the column count and the escaping; the constructor refuses a line break, which would split it.
 */
export class TsvLine {
  constructor(readonly text: string) {
    if (text.includes("\n") || text.includes("\r")) throw new Error("TsvLine: a TabSeparated line must not contain a line break");
  }
}

/** What `Sink.insert` takes: cells to encode, or a line encoded already. */
export type InsertRow = Row | TsvLine;

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
  insert(table: string, columns: readonly string[], rows: readonly InsertRow[]): Promise<void>;
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
 * Encode rows as TabSeparated text (the cheapest format for ClickHouse to parse): one line per row,
 * cells separated by tabs, every line ending in "\n". Strings are escaped as the TSV format
 * requires (backslash, tab, newline, carriage return); bigints and numbers in decimal; booleans
 * as 1 / 0. A TsvLine is copied as it is.
 *
 * This runs on the daemon's event loop for every row the streamer copies, so it joins each line
 * from one reused cell array (flat lines: no tree of concatenated pieces for the GC to copy when
 * a scavenge falls inside a large batch) and, per column, reuses the decimal text of the last two 128-bit values, which repeat from row
 * to row (account and session ids) and cost ~130 ns each to print (ADR 0118, amendment
 * otlp-rows). The reuse compares values, never hashes them: V8 hashes a BigInt map key by its low
 * 64 bits only, and our ids differ from each other in their top byte (a session's meters and
 * transfers), so a Map of them would chain.
 */
export function encodeTsv(rows: readonly InsertRow[]): string {
  const wide: WideMemo = { values: [], texts: [] };
  const lines = new Array<string>(rows.length);
  const cells: string[] = [];
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    if (row instanceof TsvLine) {
      lines[r] = row.text;
      continue;
    }
    cells.length = row.length;
    for (let c = 0; c < row.length; c++) cells[c] = cellText(row[c]!, c, wide);
    lines[r] = cells.join("\t");
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

/** The last two wide values of each column and their text: slots 2c and 2c + 1 (newest first). */
interface WideMemo {
  values: (bigint | undefined)[];
  texts: string[];
}

function cellText(v: Cell, column: number, wide: WideMemo): string {
  if (typeof v !== "bigint") return typeof v === "number" ? "" + v : typeof v === "string" ? escapeTsv(v) : v ? "1" : "0";
  if (v < U64_LIMIT) return bigintText(v);
  const i = 2 * column;
  const { values, texts } = wide;
  if (values[i] === v) return texts[i]!;
  if (values[i + 1] === v) return texts[i + 1]!;
  const text = v.toString();
  values[i + 1] = values[i];
  texts[i + 1] = texts[i]!;
  values[i] = v;
  texts[i] = text;
  return text;
}

const SAFE_INTEGER = BigInt(Number.MAX_SAFE_INTEGER);
const U64_LIMIT = 1n << 64n;

/** A bigint in decimal, as `v.toString()` prints it (cheaper through a number below 2^53). */
export function bigintText(v: bigint): string {
  return v >= 0n && v <= SAFE_INTEGER ? "" + Number(v) : v.toString();
}

const TSV_SPECIAL = /[\\\t\n\r]/;
/** A string escaped for a TSV cell (backslash, tab, newline, carriage return). */
export function escapeTsv(s: string): string {
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
