/**
 * The embedded ledger: TigerBeetle's state machine in-process, durable on local disk, behind
 * tigerbeetle-node's `Client` interface. It is the daemon's default ledger.
 *
 *   const client = createEmbeddedClient({ dataDir: "/var/lib/masques-ledger" });
 *   await client.createTransfers([...]);   // resolves once the batch is fsynced
 *   await client.close();                  // or client.destroy()
 *
 * Opening is synchronous: lock the directory, restore the newest snapshot, replay the log after it
 * (cutting a torn tail a crash left, refusing any other damage). See engine.ts, docs/adr/0010 and 0011.
 */
import { createStateMachine, restoreStateMachine } from "./state-machine.js";
import { openEmbeddedClient, type EmbeddedClient, type EmbeddedClientOptions } from "./engine.js";

export { BATCH_MAX, stderrLog, type EmbeddedClient, type EmbeddedClientOptions, type EmbeddedStats, type EngineLog } from "./engine.js";
export { LedgerCorruptionError, hasLedgerState } from "./files.js";
export { DataDirInUseError } from "./lock.js";

export function createEmbeddedClient(options: EmbeddedClientOptions): EmbeddedClient {
  return openEmbeddedClient(options, {
    create: () => createStateMachine(),
    restore: (chunks) => restoreStateMachine(chunks),
  });
}
