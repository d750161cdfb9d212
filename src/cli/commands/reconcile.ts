/**
 * `masques-ledger reconcile`: compare the ledger with its ClickHouse copy; non-zero on drift.
 * Opens the stores itself when nothing else holds them; against a running daemon it asks the
 * daemon to run it (AdminService.RunReconciliation), so reconciling needs no downtime.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  AdminService,
  ReconciliationSchema,
  type Reconciliation,
} from "../../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import type { Config } from "../../config.js";
import { controlPlaneOptions, openControlPlane } from "../../controlplane/index.js";
import { systemClock } from "../../daemon.js";
import type { AuditVerification } from "../../domain/audit-chain.js";
import { openLedger } from "../../ledger/index.js";
import { createAuditVerifier } from "../../services/governance-runtime.js";
import { DataDirInUseError } from "../../ledger/embedded/lock.js";
import { devKeyDir, loadOrCreateDevKeys, mintToken } from "../../server/auth.js";
import { formatReconcileReport, reconcileFromConfig } from "../../streamer/index.js";
import type { CliCommand } from "../command.js";
import { BaseRailConfigError } from "../../rails/base/config.js";
import { SolanaRailConfigError } from "../../rails/solana/config.js";
import { formatRailReconciliation, RailsConfigError, railReconciliationJson, reconcileRails } from "./reconcile-rails.js";
import { ExitCode, loadCommandConfig } from "../command.js";

const help = `Usage: masques-ledger reconcile [--no-sync] [--json] [--daemon] [--endpoint URL] [--token JWT]
       masques-ledger reconcile --rails [--json] [--endpoint URL] [--token JWT]

Compares the ledger (of record) with its ClickHouse copy and prints a report:
  - transfers: count, id digest, and per account the number and sum of debits and credits,
    up to the streamer's cursor;
  - balances: every account, ledger vs the ClickHouse mirror and vs balances re-derived from
    the copied transfers;
  - conservation: per ledger, total debits = total credits (posted and pending);
  - sessions: author + platform + refund = hold (+ soft-mode debt) for every session, and one
    session per hold;
  - usage after settlement: no usage event recorded after its session was settled or cancelled
    (every usage event answered APPLIED is in its session's price);
  - audit log (issue 16): the control plane's hash-chained audit log against itself and the
    anchors in the ledger; tampering reports the position of the first bad entry.
It first catches the copy up with the ledger (what the streamer would do next; already-copied
data is never rewritten, so this cannot hide drift). --no-sync compares as is.

A running daemon reconciles by itself every RECONCILE_INTERVAL_S and on request. When the
daemon holds the embedded stores (or with --daemon, --endpoint or MASQUES_ENDPOINT), this command
asks it to run one now (AdminService.RunReconciliation, admin only) instead of opening the
stores. The token is --token or MASQUES_TOKEN; without one, and when the daemon uses the local
dev key pair ($MASQUES_DATA_DIR/keys), a short-lived admin token is minted with it.

  --no-sync        do not copy new ledger events before comparing (only when the stores are
                   opened here; the daemon always catches up first)
  --json           print the report as one JSON object (through the daemon: the AdminService
                   Reconciliation message in proto3 JSON)
  --daemon         always ask the running daemon (never open the stores here)
  --endpoint URL   the daemon's gRPC URL  [MASQUES_ENDPOINT, default http://<MASQUES_GRPC_ADDR>]
  --token JWT      an admin bearer token  [MASQUES_TOKEN]
  --timeout-ms N   deadline of the daemon call (default 600000)
  --rails          instead: compare each configured rail's on-chain USDC (hot wallet + deposit
                   address, read through the chain ports with the adapters' environment:
                   BASE_*, SOLANA_*) with the ledger's rail accounts read through the daemon:
                   chain = RECONCILE_<RAIL>_FLOAT_MICRO + deposits credited − payouts posted,
                   allowing for payouts in flight; any other difference is drift (exit 1)

Exit codes: 0 no drift, 1 drift found or audit log tampered (or the token is refused), 2 bad flags or configuration,
3 ledger, ClickHouse or daemon unavailable.`;

/** The daemon's gRPC URL from its listen address (a wildcard host is reached on loopback). */
function daemonUrl(config: Config): string {
  const { host, port } = config.MASQUES_GRPC_ADDR;
  const h = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return `http://${h.includes(":") ? `[${h}]` : h}:${port}`;
}

/**
 * An admin token: the given one, else one minted with the local dev key pair when the daemon
 * trusts it (no MASQUES_JWT_PUBLIC_KEYS*, keys present). Never creates keys.
 */
async function adminToken(config: Config, given: string | undefined): Promise<string | undefined> {
  if (given) return given;
  if (config.MASQUES_JWT_PUBLIC_KEYS || config.MASQUES_JWT_PUBLIC_KEYS_FILE) return undefined;
  if (!existsSync(path.join(devKeyDir(config.dataDir), "dev-private.jwk.json"))) return undefined;
  const keys = await loadOrCreateDevKeys(config.dataDir);
  return mintToken(keys.privateJwk, {
    kind: "admin",
    id: "reconcile-cli",
    scopes: ["admin"],
    ttlS: 300,
    issuer: config.MASQUES_JWT_ISSUER,
    audience: config.MASQUES_JWT_AUDIENCE,
  });
}

const TOKEN_HINT =
  "set MASQUES_TOKEN (or --token) to an admin token, e.g. MASQUES_TOKEN=$(masques-ledger token --kind admin --id ops) with the daemon's MASQUES_DATA_DIR";

/** Human report of a run the daemon returned (same layout as a local run). */
export function formatReconciliation(r: Reconciliation): string {
  const lines: string[] = [];
  const at = r.finishedAt ? timestampDate(r.finishedAt).toISOString() : "?";
  if (r.error) {
    lines.push(`reconcile (by the daemon, ${at}): FAILED: ${r.error}`);
    return lines.join("\n");
  }
  lines.push(`reconcile (by the daemon, ${at}): ${r.ok ? "OK, no drift" : `DRIFT (${r.findings.length} differences)`}`);
  lines.push(`  caught up ${r.syncedTransfers} transfers before comparing`);
  lines.push(`  cursor ${r.cursorTimestamp} (${r.ledgerTransfersAfterCursor} ledger transfers after it)`);
  for (const c of r.checks) lines.push(`  [${c.ok ? "ok" : "DRIFT"}] ${c.name}: ${c.detail}`);
  for (const d of r.findings) {
    lines.push(`  - ${d.check}: ${d.subject}`);
    lines.push(`      ledger:     ${d.ledger}`);
    lines.push(`      clickhouse: ${d.clickhouse}`);
  }
  return lines.join("\n");
}

/** One line for the audit-log check (same wording locally and through the daemon). */
export function formatAuditCheck(v: { ok: boolean; entries: number | bigint; anchors: number | bigint; first_bad_seq: bigint | null; detail: string }): string {
  return v.ok
    ? `  [ok] audit log: ${v.entries} entries hash-chained, ${v.anchors} ledger anchors match`
    : `  [TAMPERED] audit log: first bad entry at position ${v.first_bad_seq}: ${v.detail} (${v.entries} entries, ${v.anchors} anchors)`;
}

/**
 * The audit log verified here (stores opened by this command). Null when there is no control
 * plane yet (a PGlite directory never created: no daemon ever ran on this data directory).
 */
async function verifyAuditLocally(config: Config): Promise<AuditVerification | null> {
  if (!config.DATABASE_URL && !existsSync(path.join(config.controlplaneDataDir, "pgdata"))) return null;
  const cp = await openControlPlane(controlPlaneOptions(config));
  try {
    const ledger = await openLedger(config);
    try {
      return await createAuditVerifier({ db: cp.db, ledger: ledger.client, clock: systemClock }).verify();
    } finally {
      await ledger.close();
    }
  } finally {
    await cp.close();
  }
}

const auditJson = (v: AuditVerification | null) =>
  v === null ? null : { ok: v.ok, entries: v.entries, anchors: v.anchors, first_bad_seq: v.first_bad_seq === null ? null : String(v.first_bad_seq), detail: v.detail };

async function reconcileThroughDaemon(
  config: Config,
  flags: { json?: boolean; endpoint?: string; token?: string; "timeout-ms"?: string },
  why: string | undefined,
): Promise<number> {
  const endpoint = flags.endpoint ?? (process.env["MASQUES_ENDPOINT"]?.trim() || daemonUrl(config));
  const token = await adminToken(config, flags.token ?? (process.env["MASQUES_TOKEN"]?.trim() || undefined));
  if (!token) {
    process.stderr.write(`masques-ledger reconcile: ${why ? `${why}; ` : ""}reconciling through the daemon at ${endpoint} needs an admin token: ${TOKEN_HINT}\n`);
    return ExitCode.usage;
  }
  if (why && !flags.json) process.stderr.write(`${why}: asking the daemon at ${endpoint} to reconcile (AdminService.RunReconciliation)\n`);
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const client = createClient(AdminService, createGrpcTransport({ baseUrl: endpoint, interceptors: [auth] }));
  const timeoutMs = Number(flags["timeout-ms"] ?? 600_000);
  try {
    const { reconciliation } = await client.runReconciliation({}, { timeoutMs });
    if (!reconciliation) throw new Error("the daemon returned no result");
    const a = await client.verifyAuditLog({}, { timeoutMs });
    const audit: AuditVerification = { ok: a.ok, entries: Number(a.entries), anchors: Number(a.anchors), first_bad_seq: a.ok ? null : a.firstBadSeq, detail: a.detail };
    if (flags.json) process.stdout.write(JSON.stringify({ ...(toJson(ReconciliationSchema, reconciliation) as object), audit: auditJson(audit) }) + "\n");
    else process.stdout.write(formatReconciliation(reconciliation) + "\n" + formatAuditCheck(audit) + "\n");
    if (reconciliation.error) return ExitCode.outage;
    return reconciliation.ok && audit.ok ? ExitCode.ok : ExitCode.user_error;
  } catch (err) {
    const e = ConnectError.from(err);
    const hint =
      e.code === Code.Unauthenticated || e.code === Code.PermissionDenied
        ? ` (${TOKEN_HINT})`
        : e.code === Code.Unavailable
          ? " (is the daemon running? set --endpoint or MASQUES_ENDPOINT to its gRPC address)"
          : "";
    process.stderr.write(`masques-ledger reconcile: the daemon at ${endpoint} answered ${Code[e.code]}: ${e.rawMessage}${hint}\n`);
    return e.code === Code.Unauthenticated || e.code === Code.PermissionDenied || e.code === Code.FailedPrecondition
      ? ExitCode.user_error
      : ExitCode.outage;
  }
}

/** `reconcile --rails`: exit 0 no drift, 1 drift (or token refused), 2 configuration, 3 outage. */
async function reconcileRailsCommand(config: Config, flags: { json?: boolean; endpoint?: string; token?: string; "timeout-ms"?: string }): Promise<number> {
  const endpoint = flags.endpoint ?? (process.env["MASQUES_ENDPOINT"]?.trim() || daemonUrl(config));
  const token = await adminToken(config, flags.token ?? (process.env["MASQUES_TOKEN"]?.trim() || undefined));
  if (!token) {
    process.stderr.write(`masques-ledger reconcile --rails: reading the ledger's rail accounts through the daemon at ${endpoint} needs an admin token: ${TOKEN_HINT}\n`);
    return ExitCode.usage;
  }
  let rs;
  try {
    rs = await reconcileRails({ env: process.env, endpoint, token, timeout_ms: Number(flags["timeout-ms"] ?? 600_000) });
  } catch (err) {
    if (err instanceof RailsConfigError || err instanceof BaseRailConfigError || err instanceof SolanaRailConfigError) {
      process.stderr.write(`masques-ledger reconcile --rails: ${(err as Error).message}\n`);
      return ExitCode.usage;
    }
    if (err instanceof ConnectError) {
      process.stderr.write(`masques-ledger reconcile --rails: the daemon at ${endpoint} answered ${Code[err.code]}: ${err.rawMessage}\n`);
      return err.code === Code.Unauthenticated || err.code === Code.PermissionDenied ? ExitCode.user_error : ExitCode.outage;
    }
    process.stderr.write(`masques-ledger reconcile --rails: ${(err as Error).message}\n`);
    return ExitCode.outage;
  }
  process.stdout.write((flags.json ? railReconciliationJson(rs) : formatRailReconciliation(rs)) + "\n");
  return rs.every((r) => r.ok) ? ExitCode.ok : ExitCode.user_error;
}

export const reconcileCommand: CliCommand = {
  name: "reconcile",
  summary: "Compare the ledger with ClickHouse (counts, sums, balances, conservation)",
  help,
  async run(argv) {
    let flags;
    try {
      flags = parseArgs({
        args: argv,
        options: {
          "no-sync": { type: "boolean" },
          json: { type: "boolean" },
          daemon: { type: "boolean" },
          endpoint: { type: "string" },
          token: { type: "string" },
          "timeout-ms": { type: "string" },
          rails: { type: "boolean" },
        },
        strict: true,
      }).values;
    } catch (err) {
      process.stderr.write(`reconcile: ${(err as Error).message}\n`);
      return ExitCode.usage;
    }
    if (flags["timeout-ms"] !== undefined && !/^[1-9]\d*$/.test(flags["timeout-ms"])) {
      process.stderr.write(`reconcile: --timeout-ms: expected a positive number of milliseconds, got ${JSON.stringify(flags["timeout-ms"])}\n`);
      return ExitCode.usage;
    }
    const config = loadCommandConfig("reconcile");
    if (config === null) return ExitCode.usage;
    if (flags.rails) {
      if (flags["no-sync"]) {
        process.stderr.write("reconcile: --no-sync does not apply to --rails\n");
        return ExitCode.usage;
      }
      return reconcileRailsCommand(config, flags);
    }
    const viaDaemon = flags.daemon || flags.endpoint !== undefined || Boolean(process.env["MASQUES_ENDPOINT"]?.trim());
    if (viaDaemon) {
      if (flags["no-sync"]) {
        process.stderr.write("reconcile: --no-sync applies only when reconcile opens the stores itself (the daemon always catches up first)\n");
        return ExitCode.usage;
      }
      return reconcileThroughDaemon(config, flags, undefined);
    }
    try {
      const { report, synced_transfers } = await reconcileFromConfig(config, { sync: !flags["no-sync"] });
      const audit = await verifyAuditLocally(config);
      if (flags.json) {
        process.stdout.write(JSON.stringify({ ...report, cursor_ts: String(report.cursor_ts), synced_transfers, audit: auditJson(audit) }) + "\n");
      } else {
        if (!flags["no-sync"]) process.stdout.write(`caught up ${synced_transfers} transfers before comparing\n`);
        process.stdout.write(formatReconcileReport(report) + "\n");
        process.stdout.write((audit ? formatAuditCheck(audit) : "  [ok] audit log: no control-plane database here yet (nothing to verify)") + "\n");
      }
      return report.ok && (audit?.ok ?? true) ? ExitCode.ok : ExitCode.user_error;
    } catch (err) {
      if (err instanceof DataDirInUseError) {
        // The daemon holds the embedded stores: it reconciles by itself, so ask it.
        return reconcileThroughDaemon(config, flags, `the daemon (pid ${err.pid}) holds the embedded ledger`);
      }
      process.stderr.write(`masques-ledger reconcile: ${(err as Error).message}\n`);
      return ExitCode.outage;
    }
  },
};
