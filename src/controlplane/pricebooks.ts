/**
 * The price-book store: every price-book version ever registered (ADR 0031), in the control-plane
 * database so a version written by one daemon is seen by every other (ADR 0071).
 *
 * Versions are content-addressed and immutable, so a cached entry never goes stale: `get` answers
 * from a bounded in-process cache and reads through to the database on a miss. Writes are
 * `insert … on conflict do nothing` followed by a read of the stored row: concurrent writers of
 * one version from any number of daemons all end up with the first writer's row, and a different
 * price book under an existing version (a 30-bit hash collision) is refused with CatalogError.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import { sql, type Kysely } from "kysely";
import {
  AUTHOR_ID_RE,
  CatalogError,
  canonicalPriceBookEntry,
  priceBookVersion,
  type Catalog,
  type PriceBookEntry,
} from "../domain/catalog.js";
import { canonicalPriceBook, priceBookFromCanonical } from "../domain/pricing.js";
import type { Database } from "./schema.js";

/** Most entries kept in one store's cache (oldest evicted first; a miss reads the database). */
export const PRICE_BOOK_CACHE_MAX = 65_536;
/** Most price books `all()` returns; more is an error, not a slow path. */
export const PRICE_BOOK_ALL_MAX = 100_000;
/** Rows per insert statement (6 parameters each, far below PostgreSQL's 65535). */
const INSERT_CHUNK = 1_000;
/** Largest masque index (ADR 0032: user_data_64 carries it, 48 bits). */
const MASQUE_INDEX_MAX = 2 ** 48 - 1;

export type PriceBookSource = "catalog" | "jsonl-import";

/** The API the session service uses (replaces src/domain/catalog.ts PriceBookRegistry). */
export interface PriceBookStore {
  /** The cached entry, without I/O (undefined when not cached, even if stored). */
  peek(version: number): PriceBookEntry | undefined;
  /** The entry of `version`: from the cache, else from the database (then cached). */
  get(version: number): Promise<PriceBookEntry | undefined>;
  /** Every stored entry (all daemons'), version order. Throws past PRICE_BOOK_ALL_MAX. */
  all(): Promise<PriceBookEntry[]>;
  /** Masque indexes (any version ever stored) whose price book pays `author`, ascending. */
  indexesOfAuthor(author: string): Promise<number[]>;
  /**
   * Store entries durably (committed before this resolves) and return the stored rows, which
   * are the caller's unless another writer stored the same version first (then equal in all but
   * possibly `masque_name`). Throws CatalogError on a version collision or a bad entry.
   */
  putMany(entries: readonly PriceBookEntry[], source?: PriceBookSource): Promise<PriceBookEntry[]>;
  /** `putMany` for one entry. */
  put(entry: PriceBookEntry, source?: PriceBookSource): Promise<PriceBookEntry>;
  /** Store every masque's current price book (before any session can use it). */
  registerCatalog(catalog: Catalog): Promise<void>;
}

interface Deps {
  readonly db: Kysely<Database>;
  readonly cache: Map<number, PriceBookEntry>;
}

/** Factory: a store over `db` with its own cache (one per daemon is the intent). */
export function createPriceBookStore(deps: { db: Kysely<Database> }): PriceBookStore {
  const d: Deps = { db: deps.db, cache: new Map() };
  return {
    peek: (version) => d.cache.get(version),
    get: (version) => getPriceBook(d, version),
    all: () => allPriceBooks(d),
    indexesOfAuthor: (author) => indexesOfAuthor(d, author),
    putMany: (entries, source = "catalog") => putPriceBooks(d.db, entries, source).then((rows) => remember(d, rows)),
    put: async (entry, source = "catalog") => (await putPriceBooks(d.db, [entry], source).then((rows) => remember(d, rows)))[0]!,
    registerCatalog: async (catalog) => {
      const entries = catalog.list().map((m) => ({
        version: m.price_version,
        masque_index: m.index,
        masque_name: m.name,
        author: m.author,
        pricing: m.pricing,
      }));
      try {
        await putPriceBooks(d.db, entries, "catalog").then((rows) => remember(d, rows));
      } catch (err) {
        if (err instanceof CatalogError) {
          const m = catalog.list().find((x) => err.message.includes(`version ${x.price_version} `));
          throw new CatalogError(m ? `${m.file}: ${err.message}` : err.message);
        }
        throw err;
      }
    },
  };
}

function remember(d: Deps, rows: PriceBookEntry[]): PriceBookEntry[] {
  for (const e of rows) cache(d, e);
  return rows;
}

function cache(d: Deps, e: PriceBookEntry): void {
  if (d.cache.has(e.version)) return;
  if (d.cache.size >= PRICE_BOOK_CACHE_MAX) {
    const oldest = d.cache.keys().next();
    if (!oldest.done) d.cache.delete(oldest.value);
  }
  d.cache.set(e.version, e);
}

interface Row {
  version: number;
  masque_index: string;
  masque_name: string;
  author: string;
  pricing: string;
}

function selectRows(db: Kysely<Database>) {
  return db
    .selectFrom("price_book")
    .select(["version", sql<string>`masque_index::text`.as("masque_index"), "masque_name", "author", "pricing"]);
}

function fromRow(r: Row): PriceBookEntry {
  return {
    version: Number(r.version),
    masque_index: Number(r.masque_index),
    masque_name: r.masque_name,
    author: r.author,
    pricing: priceBookFromCanonical(r.pricing),
  };
}

async function getPriceBook(d: Deps, version: number): Promise<PriceBookEntry | undefined> {
  const hit = d.cache.get(version);
  if (hit) return hit;
  if (!isVersion(version)) return undefined;
  const row = await selectRows(d.db).where("version", "=", version).executeTakeFirst();
  if (!row) return undefined;
  const e = fromRow(row);
  cache(d, e);
  return e;
}

async function allPriceBooks(d: Deps): Promise<PriceBookEntry[]> {
  const rows = await selectRows(d.db).orderBy("version").limit(PRICE_BOOK_ALL_MAX + 1).execute();
  if (rows.length > PRICE_BOOK_ALL_MAX) throw new Error(`more than ${PRICE_BOOK_ALL_MAX} price books stored; page them`);
  const out = rows.map(fromRow);
  for (const e of out) cache(d, e);
  return out;
}

async function indexesOfAuthor(d: Deps, author: string): Promise<number[]> {
  const rows = await d.db
    .selectFrom("price_book")
    .select(sql<string>`masque_index::text`.as("masque_index"))
    .distinct()
    .where("author", "=", author)
    .execute();
  return rows.map((r) => Number(r.masque_index)).sort((a, b) => a - b);
}

function isVersion(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < 2 ** 30;
}

/** Refuse an entry that is not what its version says (the version is a content hash). */
function assertEntry(e: PriceBookEntry): void {
  if (!Number.isInteger(e.masque_index) || e.masque_index < 1 || e.masque_index > MASQUE_INDEX_MAX) {
    throw new CatalogError(`price book ${e.version}: masque_index ${e.masque_index} must be 1..${MASQUE_INDEX_MAX}`);
  }
  if (!AUTHOR_ID_RE.test(e.author)) throw new CatalogError(`price book ${e.version}: author ${JSON.stringify(e.author)} is not an author id`);
  const want = priceBookVersion(e.masque_index, e.author, e.pricing);
  if (e.version !== want) {
    throw new CatalogError(`price book ${e.version}: version does not match its content (expected ${want})`);
  }
}

/** Insert (first writer wins), then read back and compare every entry with the stored row. */
export async function putPriceBooks(db: Kysely<Database>, entries: readonly PriceBookEntry[], source: PriceBookSource): Promise<PriceBookEntry[]> {
  if (entries.length === 0) return [];
  for (const e of entries) assertEntry(e);
  const byVersion = new Map<number, PriceBookEntry>();
  for (const e of entries) {
    const prev = byVersion.get(e.version);
    if (prev && canonicalPriceBookEntry(prev.masque_index, prev.author, prev.pricing) !== canonicalPriceBookEntry(e.masque_index, e.author, e.pricing)) {
      throw new CatalogError(`price-book version ${e.version} collides: two different price books in one write`);
    }
    if (!prev) byVersion.set(e.version, e);
  }
  // Version order: concurrent multi-row inserts then take the unique-index locks in one order
  // (two writers inserting the same versions in different orders deadlock on PostgreSQL).
  const unique = [...byVersion.values()].sort((x, y) => x.version - y.version);
  for (let i = 0; i < unique.length; i += INSERT_CHUNK) {
    await db
      .insertInto("price_book")
      .values(
        unique.slice(i, i + INSERT_CHUNK).map((e) => ({
          version: e.version,
          masque_index: String(e.masque_index),
          masque_name: e.masque_name,
          author: e.author,
          pricing: canonicalPriceBook(e.pricing),
          source,
        })),
      )
      .onConflict((oc) => oc.column("version").doNothing())
      .execute();
  }
  const stored = new Map<number, PriceBookEntry>();
  for (let i = 0; i < unique.length; i += INSERT_CHUNK) {
    const versions = unique.slice(i, i + INSERT_CHUNK).map((e) => e.version);
    for (const r of await selectRows(db).where("version", "in", versions).execute()) stored.set(Number(r.version), fromRow(r));
  }
  return [...byVersion.values()].map((e) => {
    const s = stored.get(e.version);
    // Rows are never deleted: a row missing right after its insert is a broken invariant.
    if (!s) throw new Error(`price book ${e.version} missing right after insert`);
    if (canonicalPriceBookEntry(s.masque_index, s.author, s.pricing) !== canonicalPriceBookEntry(e.masque_index, e.author, e.pricing)) {
      throw new CatalogError(
        `price-book version ${e.version} collides with an earlier, different price book of masque ${s.masque_index}; change the pricing slightly`,
      );
    }
    return s;
  });
}

/** What one legacy import did. */
export interface JsonlImport {
  readonly file: string;
  readonly sha256: string;
  readonly lines_read: number;
  readonly rows_inserted: number;
}

interface LegacyLine {
  version: number;
  masque_index: number;
  masque_name: string;
  author: string;
  pricing: string;
  first_seen?: string;
}

/**
 * Import a legacy `pricebooks.jsonl` (written by PriceBookRegistry) into `db` (idempotent: a
 * version already stored is left alone). A torn last line (crash mid-append) is skipped, as the
 * old registry did; any other unparsable line or a line whose version does not match its content
 * throws, naming the file and line. Returns null when the file does not exist.
 */
export async function importPriceBooksJsonl(db: Kysely<Database>, file: string): Promise<JsonlImport | null> {
  if (!fs.existsSync(file)) return null;
  const text = fs.readFileSync(file, "utf8");
  const lines = text.split("\n");
  const entries: (PriceBookEntry & { first_seen: string | undefined })[] = [];
  let read = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.trim()) continue;
    read++;
    const torn = i === lines.length - 1; // no newline after it
    let l: LegacyLine;
    try {
      l = JSON.parse(line) as LegacyLine;
    } catch {
      if (torn) continue;
      throw new CatalogError(`${file}:${i + 1}: not a JSON line; fix or remove the line, then start again`);
    }
    let e: PriceBookEntry;
    try {
      e = { version: l.version, masque_index: l.masque_index, masque_name: String(l.masque_name), author: l.author, pricing: priceBookFromCanonical(l.pricing) };
      assertEntry(e);
    } catch (err) {
      throw new CatalogError(`${file}:${i + 1}: ${(err as Error).message}`);
    }
    entries.push({ ...e, first_seen: typeof l.first_seen === "string" && !Number.isNaN(Date.parse(l.first_seen)) ? l.first_seen : undefined });
  }
  let inserted = 0;
  for (const e of entries) {
    const r = await db
      .insertInto("price_book")
      .values({
        version: e.version,
        masque_index: String(e.masque_index),
        masque_name: e.masque_name,
        author: e.author,
        pricing: canonicalPriceBook(e.pricing),
        source: "jsonl-import",
        ...(e.first_seen ? { first_seen: e.first_seen } : {}),
      })
      .onConflict((oc) => oc.column("version").doNothing())
      .returning("version")
      .execute();
    inserted += r.length;
  }
  // Lines of the same version must agree with what is stored (a collision would misprice).
  await putPriceBooks(db, entries, "jsonl-import");
  const sha256 = createHash("sha256").update(text).digest("hex");
  return { file, sha256, lines_read: read, rows_inserted: inserted };
}
