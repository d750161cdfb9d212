/**
 * 0002: import the legacy `$MASQUES_DATA_DIR/sessions/pricebooks.jsonl` of the daemon that applies
 * it, once (the migration is recorded; rows already stored are left alone), and keep a record of
 * the import. The file itself is left in place. Never edit: add a new migration instead.
 */
import path from "node:path";
import type { ControlPlaneMigration } from "../migrations.js";
import { importPriceBooksJsonl } from "../pricebooks.js";

/** Where PriceBookRegistry kept its file, relative to MASQUES_DATA_DIR. */
export const LEGACY_PRICEBOOKS_FILE = path.join("sessions", "pricebooks.jsonl");

export const m0002: ControlPlaneMigration = {
  name: "0002_import_pricebooks_jsonl",
  statements: [
    `create table price_book_import (
      file text not null,
      sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
      lines_read integer not null check (lines_read >= 0),
      rows_inserted integer not null check (rows_inserted >= 0),
      imported_at timestamptz not null default now(),
      primary key (file, sha256)
    )`,
  ],
  data: {
    id: "import sessions/pricebooks.jsonl v1",
    async run(trx, env) {
      const r = await importPriceBooksJsonl(trx, path.join(env.dataDir, LEGACY_PRICEBOOKS_FILE));
      if (r) await trx.insertInto("price_book_import").values(r).execute();
    },
  },
};
