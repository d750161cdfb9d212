/**
 * The live catalog's store (issue 16, ADR 0107): every published version of every masque.
 *
 * A publish is one transaction that locks the masque's versions (`for update`), checks the
 * masque's owner and index against them, and appends the next version: two concurrent publishes
 * of one masque are serialised, two masques can never share an index. Versions are never updated
 * or deleted. Price books themselves are stored, content-addressed, in `price_book` (ADR 0071)
 * BEFORE the version row, so a Don can never pin a version the database lacks.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "./schema.js";

/** Most versions `all()` returns (every version of every published masque); more is an error. */
export const CATALOG_VERSIONS_MAX = 100_000;

export interface CatalogVersionRow {
  masque_name: string;
  seq: number;
  masque_index: number;
  author: string;
  version: string;
  ring: string;
  price_version: number;
  /** The YAML as published. */
  spec: string;
  /** Principal id that published it (the author, or an admin). */
  published_by: string;
  publish_time_ns: bigint;
  effective_time_ns: bigint;
}

/** Why a publish was refused by the stored versions. */
export type PublishRefusal =
  | { refused: "owner"; author: string }
  | { refused: "index_changed"; masque_index: number }
  | { refused: "index_taken"; masque_name: string };

export interface CatalogStore {
  /**
   * Append the next version of `v.masque_name`, its effective time computed by `effective(previous)`
   * from the latest stored version (null: the first). Returns the stored row or why it was refused.
   */
  publish(
    v: Omit<CatalogVersionRow, "seq" | "effective_time_ns">,
    effective: (previous: CatalogVersionRow | null) => bigint,
  ): Promise<CatalogVersionRow | PublishRefusal>;
  /** Every version of every masque, by name then seq. Throws past CATALOG_VERSIONS_MAX. */
  all(): Promise<CatalogVersionRow[]>;
  /** The versions of one masque, oldest first. */
  versions(masque_name: string): Promise<CatalogVersionRow[]>;
}

const COLUMNS = sql.raw(
  "masque_name, seq, masque_index::text as masque_index, author, version, ring, price_version, spec, published_by, publish_time_ns::text as publish_time_ns, effective_time_ns::text as effective_time_ns",
);

function toRow(r: Record<string, unknown>): CatalogVersionRow {
  return {
    masque_name: String(r.masque_name),
    seq: Number(r.seq),
    masque_index: Number(r.masque_index),
    author: String(r.author),
    version: String(r.version),
    ring: String(r.ring),
    price_version: Number(r.price_version),
    spec: String(r.spec),
    published_by: String(r.published_by),
    publish_time_ns: BigInt(String(r.publish_time_ns)),
    effective_time_ns: BigInt(String(r.effective_time_ns)),
  };
}

export function createCatalogStore(db: Kysely<Database>): CatalogStore {
  return {
    async publish(v, effective) {
      return db.transaction().execute(async (trx) => {
        const prior = (await sql<Record<string, unknown>>`select ${COLUMNS} from catalog_masque_version where masque_name = ${v.masque_name}
          order by seq desc for update`.execute(trx)).rows.map(toRow);
        const last = prior[0] ?? null;
        if (last !== null && last.author !== v.author) return { refused: "owner", author: last.author } as const;
        if (last !== null && last.masque_index !== v.masque_index) return { refused: "index_changed", masque_index: last.masque_index } as const;
        // Serialise publishers of one index (different names) on a transaction-scoped advisory lock.
        await sql`select pg_advisory_xact_lock(${sql.lit(160_010)}, ${v.masque_index % 2_000_000_000})`.execute(trx);
        const other = (await sql<{ masque_name: string }>`select masque_name from catalog_masque_version
          where masque_index = ${String(v.masque_index)} and masque_name <> ${v.masque_name} limit 1`.execute(trx)).rows[0];
        if (other) return { refused: "index_taken", masque_name: other.masque_name } as const;
        const seq = (last?.seq ?? 0) + 1;
        const eff = effective(last);
        const r = await sql<Record<string, unknown>>`insert into catalog_masque_version
          (masque_name, seq, masque_index, author, version, ring, price_version, spec, published_by, publish_time_ns, effective_time_ns)
          values (${v.masque_name}, ${seq}, ${String(v.masque_index)}, ${v.author}, ${v.version}, ${v.ring}, ${v.price_version}, ${v.spec},
            ${v.published_by}, ${v.publish_time_ns.toString()}, ${eff.toString()})
          returning ${COLUMNS}`.execute(trx);
        return toRow(r.rows[0]!);
      });
    },
    async all() {
      const r = await sql<Record<string, unknown>>`select ${COLUMNS} from catalog_masque_version order by masque_name, seq limit ${CATALOG_VERSIONS_MAX + 1}`.execute(db);
      if (r.rows.length > CATALOG_VERSIONS_MAX) throw new Error(`more than ${CATALOG_VERSIONS_MAX} published masque versions`);
      return r.rows.map(toRow);
    },
    async versions(name) {
      const r = await sql<Record<string, unknown>>`select ${COLUMNS} from catalog_masque_version where masque_name = ${name} order by seq`.execute(db);
      return r.rows.map(toRow);
    },
  };
}
