/**
 * Ledger backend selection. The daemon talks to the ledger only through tigerbeetle-node's
 * `Client` interface: either a real TigerBeetle cluster (LEDGER=tigerbeetle, TB_ADDRESSES,
 * TB_CLUSTER_ID) or the embedded engine (LEDGER=embedded, the default, state in
 * LEDGER_DATA_DIR). `openLedger` optionally wraps it in the request coalescer.
 */
import { createClient, type Client } from "tigerbeetle-node";
import type { Config } from "../config.js";
import { createCoalescedClient } from "./coalescer.js";

export interface OpenedLedger {
  /** What services use (coalesced unless MASQUES_COALESCE=false). */
  client: Client;
  /** Human-readable description for the start-up log (no secrets). */
  describe: string;
  /** Release the backend (flushes and unlocks the embedded engine). */
  close(): Promise<void>;
}

/**
 * Open the configured ledger. `clock` (ns since the epoch) drives the embedded engine's timestamps
 * and expiries (tests move the daemon's time with it); a TigerBeetle cluster keeps its own.
 */
export async function openLedger(config: Config, opts: { clock?: () => bigint } = {}): Promise<OpenedLedger> {
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
    const { createEmbeddedClient } = await import("./embedded/index.js");
    const embedded = createEmbeddedClient({ dataDir: config.ledgerDataDir, ...(opts.clock ? { clock: opts.clock } : {}) });
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
