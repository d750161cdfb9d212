/**
 * What one api_requests row costs embedded ClickHouse (chDB), by insert size (issue 18, ADR 0132).
 *
 *   npm run bench:analytics-insert               # table
 *   npm run bench:analytics-insert -- --json     # one JSON object with the same figures
 * Options: --rows N (rows per insert size, default 100000), --sizes a,b,c (rows per insert,
 * default 500,2000,10000,50000), --no-attributes (leave attributes_json empty, to show its share).
 *
 * The daemon's real schema (sql/ migrations, applied by the streamer's `migrate`) in a fresh chDB
 * directory, written through the daemon's own sink (`ChdbSink.insert`, TSV). The rows are shaped
 * like Claude Code's `claude_code.api_request` events as OTLP ingest stores them (ADR 0118), with
 * a 14-attribute attributes_json. For each insert size: process CPU (user + system, all threads:
 * chDB runs on libuv's pool) from the first insert until ClickHouse's background merges of the
 * new parts have finished, per row. This is the floor of what OTLP ingest pays per event for
 * its api_requests row, whatever the daemon does around it; RecordUsage pays none of it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ChdbSink } from "../src/streamer/chdb-sink.js";
import { migrate } from "../src/streamer/migrations.js";
import type { Row } from "../src/streamer/sink.js";

const argv = process.argv.slice(2);
const json = argv.includes("--json");
function arg(name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
}
const rowsPerSize = Number(arg("rows", "100000"));
const sizes = arg("sizes", "500,2000,10000,50000").split(",").map(Number);
const withAttributes = !argv.includes("--no-attributes");
if (!Number.isInteger(rowsPerSize) || rowsPerSize <= 0) throw new Error("--rows must be a positive integer");
for (const s of sizes) if (!Number.isInteger(s) || s <= 0) throw new Error("--sizes must be positive integers");

/** The columns OTLP ingest writes (src/telemetry/ingest.ts API_REQUEST_COLUMNS). */
const COLUMNS = [
  "timestamp", "request_id", "session_id", "agent_id", "service_name", "model", "operation", "status_code", "duration_ms",
  "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "cost_micro", "trace_id", "span_id", "attributes_json",
] as const;

let serial = 0;
/** `n` Claude-Code-shaped api_requests rows with fresh request ids (32 sessions, one day). */
function claudeRows(n: number): Row[] {
  const rows: Row[] = new Array<Row>(n);
  for (let i = 0; i < n; i++) {
    serial++;
    const claude = `3f1c9a0e-8d2b-4c7a-9e61-${(serial % 32).toString(16).padStart(12, "0")}`;
    const attributes = withAttributes
      ? JSON.stringify({
          "event.name": "api_request", "event.timestamp": "2026-11-30T10:00:00.000Z", "event.sequence": String(serial),
          "session.id": claude, "prompt.id": `p-${serial}`, "user.id": "a3b1c2", "organization.id": "org-1",
          "terminal.type": "vscode", "app.version": "2.0.14", model: "claude-sonnet-4-5", input_tokens: "1200",
          output_tokens: "300", cost_usd: "0.0081", duration_ms: "1834",
        })
      : "";
    const ns = 1_796_032_800_000_000_000n + BigInt(serial) * 1000n;
    const s = ns / 1_000_000_000n;
    const time = new Date(Number(s) * 1000).toISOString().slice(0, 19).replace("T", " ") + "." + (ns % 1_000_000_000n).toString().padStart(9, "0");
    rows[i] = [
      time, serial.toString(16).padStart(32, "0"), BigInt(serial % 32) * 0x9e3779b97f4a7c15n, "agent-bench", "claude-code",
      "claude-sonnet-4-5", "api_request", 200, 1834, 1200n, 300n, 0n, 0n, 8100n, "", "", attributes,
    ];
  }
  return rows;
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function mergesSettled(sink: ChdbSink): Promise<void> {
  for (;;) {
    const r = await sink.query(`SELECT count() AS n FROM system.merges WHERE database = '${sink.database}'`);
    if (Number(r[0]?.n ?? 0) === 0) return;
    await new Promise((res) => setTimeout(res, 50));
  }
}

const dir = mkdtempSync(path.join(tmpdir(), "bench-analytics-insert-"));
const results: { rows_per_insert: number; inserts: number; cpu_us_per_row: number; wall_us_per_row: number }[] = [];
const sink = await ChdbSink.open({ path: dir, database: "masques" });
try {
  await migrate(sink);
  // Warm-up: the first insert into a table pays one-off costs.
  await sink.insert("api_requests", COLUMNS, claudeRows(1000));
  await mergesSettled(sink);
  for (const size of sizes) {
    const inserts = Math.max(1, Math.round(rowsPerSize / size));
    const batches = Array.from({ length: inserts }, () => claudeRows(size));
    const cpu0 = cpuUs();
    const t0 = performance.now();
    for (const b of batches) await sink.insert("api_requests", COLUMNS, b);
    await mergesSettled(sink);
    const rows = inserts * size;
    results.push({
      rows_per_insert: size,
      inserts,
      cpu_us_per_row: Math.round(((cpuUs() - cpu0) / rows) * 10) / 10,
      wall_us_per_row: Math.round((((performance.now() - t0) * 1000) / rows) * 10) / 10,
    });
  }
} finally {
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
}
if (json) console.log(JSON.stringify({ attributes_json: withAttributes, results }));
else {
  console.log(`api_requests rows into embedded chDB (attributes_json ${withAttributes ? "filled" : "empty"}); CPU includes the merges of the new parts`);
  console.log("rows/insert  inserts  CPU µs/row  wall µs/row");
  for (const r of results) {
    console.log(`${String(r.rows_per_insert).padStart(11)}  ${String(r.inserts).padStart(7)}  ${String(r.cpu_us_per_row).padStart(10)}  ${String(r.wall_us_per_row).padStart(11)}`);
  }
}
