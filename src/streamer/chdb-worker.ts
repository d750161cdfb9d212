/**
 * The worker thread that owns the embedded chDB session. chDB's synchronous calls run here, off
 * the daemon's event loop; the main thread talks to it with ChdbRequest/ChdbResponse messages.
 * Requests are handled one at a time in arrival order, so the streamer's "data, then cursor"
 * ordering is preserved.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Session } from "chdb";
import type { ChdbRequest, ChdbResponse, ChdbWorkerData } from "./chdb-protocol.js";
import { encodeTsv, type ResultRow } from "./sink.js";

const port = parentPort;
if (!port) throw new Error("chdb-worker.ts must run in a worker thread");
const { path } = workerData as ChdbWorkerData;

const session = new Session(path, {
  connectionArgs: ["--output_format_json_quote_64bit_integers=1"],
});

function parseJsonEachRow(text: string): ResultRow[] {
  const rows: ResultRow[] = [];
  for (const line of text.split("\n")) {
    if (line.length > 0) rows.push(JSON.parse(line) as ResultRow);
  }
  return rows;
}

async function handle(req: ChdbRequest): Promise<ChdbResponse> {
  switch (req.op) {
    case "exec":
      session.query(req.sql, "TSV");
      return { id: req.id, ok: true };
    case "query":
      return { id: req.id, ok: true, rows: parseJsonEachRow(session.query(req.sql, "JSONEachRow")) };
    case "insert": {
      if (req.rows.length > 0) {
        await session.insert({
          table: req.table,
          columns: req.columns,
          values: Buffer.from(encodeTsv(req.rows)),
          format: "TSV",
        });
      }
      return { id: req.id, ok: true };
    }
    case "close":
      session.close();
      return { id: req.id, ok: true };
  }
}

let chain: Promise<void> = Promise.resolve();
port.on("message", (req: ChdbRequest) => {
  chain = chain.then(async () => {
    let res: ChdbResponse;
    try {
      res = await handle(req);
    } catch (err) {
      res = { id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    port.postMessage(res);
    if (req.op === "close") port.close();
  });
});
port.postMessage({ id: 0, ok: true } satisfies ChdbResponse);
