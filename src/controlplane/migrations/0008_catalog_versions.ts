/**
 * 0008: the live catalog (issue 16, ADR 0107): every published version of every masque, kept
 * forever. A version's price book lives in `price_book` (content-addressed, ADR 0071); the row
 * records when the version was published and from when it applies to new sessions (the notice
 * period for a price change). Never edit: add a new migration instead.
 */
import type { ControlPlaneMigration } from "../migrations.js";

export const m0008: ControlPlaneMigration = {
  name: "0008_catalog_versions",
  statements: [
    `create table catalog_masque_version (
      masque_name text not null,
      seq integer not null check (seq >= 1),
      masque_index bigint not null check (masque_index >= 1 and masque_index <= 281474976710655),
      author text not null,
      version text not null,
      ring text not null,
      price_version integer not null check (price_version >= 0 and price_version < 1073741824),
      spec text not null,
      published_by text not null,
      publish_time_ns bigint not null,
      effective_time_ns bigint not null check (effective_time_ns >= publish_time_ns),
      primary key (masque_name, seq)
    )`,
    `create index catalog_masque_version_index on catalog_masque_version (masque_index)`,
  ],
};
