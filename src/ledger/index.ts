/**
 * Ledger backend selection. The daemon talks to the ledger only through tigerbeetle-node's
 * `Client` interface: either a real TigerBeetle cluster (LEDGER=tigerbeetle, TB_ADDRESSES,
 * TB_CLUSTER_ID) or the embedded engine (LEDGER=embedded, the default, state in
 * LEDGER_DATA_DIR). `openLedger` optionally wraps it in the request coalescer.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createClient, type Client } from "tigerbeetle-node";
import type { Config } from "../config.js";
import { createCoalescedClient } from "./coalescer.js";
import type { EngineLog } from "./embedded/engine.js";

export interface OpenedLedger {
  /** What services use (coalesced unless MASQUES_COALESCE=false). */
  client: Client;
  /** Human-readable description for the start-up log (no secrets). */
  describe: string;
  /** Release the backend (flushes and unlocks the embedded engine). */
  close(): Promise<void>;
}

/**
 * `<MASQUES_DATA_DIR>/ledger.marker`: written once an embedded ledger exists, so that a ledger
 * directory that later goes missing or empty is noticed instead of silently starting a new ledger.
 */
export const LEDGER_MARKER = "ledger.marker";

/** The embedded ledger is gone although this data directory has held one: the daemon refuses to start. */
export class LedgerMissingError extends Error {
  readonly acceptToken: string;
  constructor(ledgerDir: string, evidence: string[], token: string) {
    super(
      `embedded ledger: ${ledgerDir} holds no ledger, but ${evidence.join(" and ")}: acknowledged data may be lost; refusing to start a new, empty ledger ` +
        `(restore the ledger directory from a backup, point LEDGER_DATA_DIR at it, or accept starting an empty ledger by restarting once with LEDGER_ACCEPT_DATA_LOSS=${token})`,
    );
    this.name = "LedgerMissingError";
    this.acceptToken = token;
  }
}

interface Marker {
  ledger_id: string;
  ledger_data_dir: string;
}

function readMarker(file: string): Marker | null {
  try {
    const m = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<Marker>;
    return { ledger_id: String(m.ledger_id ?? "unknown"), ledger_data_dir: String(m.ledger_data_dir ?? "") };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    return { ledger_id: "unreadable", ledger_data_dir: "" };
  }
}

function nonEmptyDir(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

/**
 * Before the embedded engine opens (and would create an empty ledger): if the ledger directory
 * holds no ledger while the data directory shows one existed (the marker, or embedded analytics
 * streamed from a ledger), refuse unless LEDGER_ACCEPT_DATA_LOSS names exactly this loss. After it
 * opens, (re)write the marker. Issue 11.
 */
function checkLedgerPresence(config: Config, hasLedgerState: (dir: string) => boolean, log: EngineLog): () => void {
  const markerFile = path.join(config.dataDir, LEDGER_MARKER);
  const marker = readMarker(markerFile);
  const writeMarker = (fresh = false): void => {
    if (!fresh && marker && marker.ledger_data_dir === config.ledgerDataDir) return;
    const m: Marker = { ledger_id: crypto.randomUUID(), ledger_data_dir: config.ledgerDataDir };
    fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(markerFile, JSON.stringify(m) + "\n", { mode: 0o600, flush: true });
  };
  if (hasLedgerState(config.ledgerDataDir)) return () => writeMarker();
  const evidence: string[] = [];
  if (marker) evidence.push(`${markerFile} records that ledger ${marker.ledger_id} was created${marker.ledger_data_dir ? ` in ${marker.ledger_data_dir}` : ""}`);
  const chdb = config.CHDB_PATH ?? path.join(config.dataDir, "chdb");
  if (!config.CLICKHOUSE_URL && nonEmptyDir(chdb)) evidence.push(`the embedded analytics in ${chdb} were streamed from a ledger`);
  if (evidence.length === 0) return () => writeMarker();
  const token = `ledger-${marker?.ledger_id ?? "analytics"}@missing`;
  if (config.LEDGER_ACCEPT_DATA_LOSS !== token) throw new LedgerMissingError(config.ledgerDataDir, evidence, token);
  log.error(
    { ledger_data_dir: config.ledgerDataDir, accepted: token, evidence },
    "embedded ledger: LEDGER_ACCEPT_DATA_LOSS accepted starting an empty ledger where one existed; every acknowledged write of the old ledger is lost (there is no audit log yet, this line is the record)",
  );
  return () => writeMarker(true);
}

/**
 * Open the configured ledger. `log` receives the embedded engine's recovery warnings and errors;
 * `clock` (ns since the epoch) drives the embedded engine's timestamps and expiries (tests move the
 * daemon's time with it); a TigerBeetle cluster keeps its own.
 */
export async function openLedger(
  config: Config,
  opts: { log?: EngineLog; clock?: () => bigint } = {},
): Promise<OpenedLedger> {
  const log = opts.log;
  let inner: Client;
  let describe: string;
  let close: () => Promise<void>;
  if (config.LEDGER === "tigerbeetle") {
    const addresses = (config.TB_ADDRESSES ?? "").split(",").map((a) => a.trim()).filter(Boolean);
    inner = createClient({ cluster_id: config.TB_CLUSTER_ID, replica_addresses: addresses });
    describe = `tigerbeetle cluster ${config.TB_CLUSTER_ID} (${addresses.length} replica address(es))`;
    const tb = inner;
    close = async () => tb.destroy();
  } else {
    const { createEmbeddedClient, hasLedgerState, stderrLog } = await import("./embedded/index.js");
    const engineLog = log ?? stderrLog;
    const opened = checkLedgerPresence(config, hasLedgerState, engineLog);
    const embedded = createEmbeddedClient({
      dataDir: config.ledgerDataDir,
      log: engineLog,
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(config.LEDGER_ACCEPT_DATA_LOSS ? { acceptDataLoss: config.LEDGER_ACCEPT_DATA_LOSS } : {}),
    });
    opened();
    inner = embedded;
    describe = `embedded engine at ${config.ledgerDataDir}`;
    close = () => embedded.close();
  }
  const client = config.MASQUES_COALESCE ? createCoalescedClient(inner) : inner;
  return {
    client,
    describe,
    close,
  };
}
