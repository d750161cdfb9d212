/**
 * Row types of the control-plane database (Kysely's `Database` interface). One table group per
 * kind of state; every table is created by a numbered migration in ./migrations/.
 *
 * Money never lives here (ADR 0070): rows reference ledger ids; balances and movements stay in
 * the ledger. Integers wider than 2^31 are `bigint` columns and are read as text (`::text`) so
 * both engines (node-postgres, PGlite) return the same JavaScript type.
 */
import type { ColumnType, Generated } from "kysely";

/** One price-book version (ADR 0031): content-addressed, immutable once written. */
export interface PriceBookTable {
  /** 30-bit content hash of (masque_index, author, pricing); the hold's user_data_32 carries it. */
  version: number;
  /** Masque index (1..2^48-1), a `bigint` column. */
  masque_index: ColumnType<string, string, never>;
  masque_name: string;
  author: string;
  /** `canonicalPriceBook` text: exact decimal strings in a fixed key order. */
  pricing: string;
  /** Where the row came from: "catalog" (MASQUES_DIR) or "jsonl-import" (legacy file). */
  source: string;
  first_seen: ColumnType<Date, string | undefined, never>;
}

/** One import of a legacy `pricebooks.jsonl` (migration 0002), kept as evidence. */
export interface PriceBookImportTable {
  file: string;
  sha256: string;
  lines_read: number;
  rows_inserted: number;
  imported_at: Generated<Date>;
}

/** Checksums of applied migrations, checked at every start (ADR 0070). */
export interface MigrationChecksumTable {
  name: string;
  sha256: string;
}

/** Kysely Migrator's own record (name, timestamp). */
export interface MigrationTable {
  name: string;
  timestamp: string;
}

export interface Database {
  price_book: PriceBookTable;
  price_book_import: PriceBookImportTable;
  controlplane_migration_checksum: MigrationChecksumTable;
  controlplane_migration: MigrationTable;
}
