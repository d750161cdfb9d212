/** 0001: price-book versions (ADR 0031, 0071). Never edit: add a new migration instead. */
import type { ControlPlaneMigration } from "../migrations.js";

export const m0001: ControlPlaneMigration = {
  name: "0001_price_books",
  statements: [
    `create table price_book (
      version integer primary key check (version >= 0 and version < 1073741824),
      masque_index bigint not null check (masque_index >= 1 and masque_index <= 281474976710655),
      masque_name text not null,
      author text not null,
      pricing text not null,
      source text not null check (source in ('catalog', 'jsonl-import')),
      first_seen timestamptz not null default now()
    )`,
    `create index price_book_author on price_book (author, masque_index)`,
  ],
};
