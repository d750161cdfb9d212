/** AdminService views: a reconciliation run (src/streamer/reconciler.ts) as its proto message. */
import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  ReconciliationCheckSchema,
  ReconciliationFindingSchema,
  ReconciliationSchema,
  ReconciliationTrigger,
  type Reconciliation,
} from "../../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { runOk, type ReconciliationRun } from "../../streamer/reconciler.js";

/** ns since the epoch -> google.protobuf.Timestamp. */
export function timestampOfNs(ns: bigint): Timestamp {
  return create(TimestampSchema, { seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) });
}

const TRIGGERS = {
  schedule: ReconciliationTrigger.SCHEDULE,
  request: ReconciliationTrigger.REQUEST,
} as const;

/** One run as the API returns it (findings are the report's drift items, at most 200). */
export function reconciliationView(run: ReconciliationRun): Reconciliation {
  const r = run.report;
  return create(ReconciliationSchema, {
    startedAt: timestampOfNs(run.started_at_ns),
    finishedAt: timestampOfNs(run.finished_at_ns),
    trigger: TRIGGERS[run.trigger],
    ok: runOk(run),
    error: run.error ?? "",
    syncedTransfers: BigInt(run.synced_transfers),
    cursorTimestamp: r?.cursor_ts ?? 0n,
    ledgerTransfersAfterCursor: BigInt(r?.ledger_events_after_cursor ?? 0),
    ledgerTransfers: BigInt(r?.ledger_transfers ?? 0),
    clickhouseTransfers: BigInt(r?.clickhouse_transfers ?? 0),
    accounts: BigInt(r?.accounts ?? 0),
    sessions: BigInt(r?.sessions ?? 0),
    checks: (r?.checks ?? []).map((c) => create(ReconciliationCheckSchema, c)),
    findings: (r?.drift ?? []).map((d) => create(ReconciliationFindingSchema, d)),
  });
}
