/** Messages between ChdbSink (main thread) and chdb-worker.ts (the thread that owns chDB). */
import type { ResultRow, Row } from "./sink.js";

export interface ChdbWorkerData {
  /** On-disk chDB directory (one per process: chDB's engine is a process singleton). */
  path: string;
}

export type ChdbRequest =
  | { id: number; op: "exec"; sql: string }
  | { id: number; op: "query"; sql: string }
  | { id: number; op: "insert"; table: string; columns: readonly string[]; rows: readonly Row[] }
  | { id: number; op: "close" };

export type ChdbResponse =
  | { id: number; ok: true; rows?: ResultRow[] }
  | { id: number; ok: false; error: string };
