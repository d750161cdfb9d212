/**
 * The control-plane database (ADR 0070): everything daemons must share that is not money, in
 * PostgreSQL (`DATABASE_URL`) or embedded PGlite (default, `CONTROLPLANE_DATA_DIR`), same SQL.
 *
 *   const cp = await openControlPlane(controlPlaneOptions(config));  // migrates, or refuses
 *   await cp.priceBooks.registerCatalog(catalog);
 *   await cp.close();
 *
 * The ledger decides, the database records, recovery reconciles the database to the ledger.
 * One module per kind of state (pricebooks.ts, …); migrations in ./migrations/.
 */
import type { Kysely } from "kysely";
import type { Config } from "../config.js";
import { openDatabase, type EngineKind, type EngineOptions } from "./engine.js";
import { migrate, type ControlPlaneMigration, type MigrateResult } from "./migrations.js";
import { MIGRATIONS } from "./migrations/index.js";
import { createPriceBookStore, type PriceBookStore } from "./pricebooks.js";
import { createDepositStore, createSettlementStore, type DepositStore, type SettlementStore } from "./settlement.js";
import { createLightningStore, type LightningStore } from "./lightning.js";
import type { Database } from "./schema.js";
import { createWebhookStore, type WebhookStore } from "./webhooks.js";
import { createCatalogStore, type CatalogStore } from "./catalog.js";

export { MigrationRefusedError } from "./migrations.js";
export type { PriceBookStore } from "./pricebooks.js";
export type { SettlementStore, PayoutRow, StoredChallenge, DepositStore, DepositRow } from "./settlement.js";
export type { LightningStore, LightningPayoutRow, DepositInvoiceRow } from "./lightning.js";
export type { EngineKind } from "./engine.js";
export { enqueueWebhookEvent, type WebhookStore } from "./webhooks.js";
export type { CatalogStore, CatalogVersionRow } from "./catalog.js";

export interface ControlPlane {
  /** The query builder over the chosen engine (for the stores in this folder). */
  readonly db: Kysely<Database>;
  readonly engine: EngineKind;
  /** For logs: engine and location, never a password. */
  readonly describe: string;
  /** What the start-up migration did. */
  readonly migrations: MigrateResult;
  readonly priceBooks: PriceBookStore;
  /** Payout destinations, ownership challenges, payouts (ADR 0086). */
  readonly settlement: SettlementStore;
  /** Deposit sources, reported deposits, refused reports (ADR 0087). */
  readonly deposits: DepositStore;
  /** Webhook endpoints and the delivery outbox (ADR 0105); producers call `enqueueWebhookEvent`. */
  readonly webhooks: WebhookStore;
  /** Published masque versions (the live catalog, ADR 0107). */
  readonly catalog: CatalogStore;
  /** Lightning payout invoices and deposit invoices (issue 15, ADR 0095). */
  readonly lightning: LightningStore;
  /** Close the connections (and release PGlite's directory lock). Idempotent. */
  close(): Promise<void>;
}

export interface ControlPlaneOptions extends EngineOptions {
  /** MASQUES_DATA_DIR, resolved: where migrations find legacy files (pricebooks.jsonl). */
  dataDir: string;
  /** The migration list (default: all of this build's). Tests pass others. */
  migrations?: readonly ControlPlaneMigration[];
}

/** The options `serve` uses, from the validated configuration. */
export function controlPlaneOptions(config: Config): ControlPlaneOptions {
  return {
    databaseUrl: config.DATABASE_URL,
    poolMax: config.DATABASE_POOL_MAX,
    pgliteDir: config.controlplaneDataDir,
    dataDir: config.dataDir,
  };
}

/**
 * Open the engine, check the applied migrations and apply pending ones. Throws
 * MigrationRefusedError (nothing changed) when the database has an unknown or changed migration.
 */
export async function openControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const opened = await openDatabase(opts);
  let migrations: MigrateResult;
  try {
    migrations = await migrate(opened.db, opts.migrations ?? MIGRATIONS, { dataDir: opts.dataDir });
  } catch (err) {
    await opened.close();
    throw err;
  }
  return {
    db: opened.db,
    engine: opened.engine,
    describe: opened.describe,
    migrations,
    priceBooks: createPriceBookStore({ db: opened.db }),
    settlement: createSettlementStore(opened.db),
    deposits: createDepositStore(opened.db),
    webhooks: createWebhookStore(opened.db),
    catalog: createCatalogStore(opened.db),
    lightning: createLightningStore(opened.db),
    close: () => opened.close(),
  };
}
