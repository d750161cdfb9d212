/**
 * The live catalog (issue 16, ADR 0107): what a Don can use right now, merged from
 * - the operator's folder MASQUES_DIR (re-read on change: fs.watch plus a periodic rescan; an
 *   invalid file is reported with file, field and rule and skipped, never fatal), and
 * - the versions authors published through CatalogService (control-plane database), each in force
 *   from its effective time (a price change waits out CATALOG_PRICE_NOTICE_S).
 * When a masque name or index exists in both, THE FILE WINS: the operator's folder is the
 * platform's own definition; publishing over it is refused (MASQUE_DEFINED_BY_FILE), and a file
 * added later for a published name shadows it with a warning naming both.
 *
 * Every price book is committed to the database before the catalog that offers it is swapped in
 * (ADR 0071's order), so no hold can pin a version the database lacks.
 */
import fs from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import type { CatalogStore, CatalogVersionRow } from "../../controlplane/catalog.js";
import type { PriceBookStore } from "../../controlplane/pricebooks.js";
import { Catalog, CatalogError, parseMasque, scanCatalog, type CatalogProblem, type Masque } from "../../domain/catalog.js";

/** `file` of a published masque: where it came from, for messages. */
export function publishedFile(name: string, seq: number): string {
  return `published:${name}@${seq}`;
}

/** The Masque a published version describes (its YAML was validated at publish). */
export function masqueOfVersion(v: CatalogVersionRow): Masque {
  const m = parseMasque(v.spec, publishedFile(v.masque_name, v.seq));
  if (m.price_version !== v.price_version || m.index !== v.masque_index || m.author !== v.author) {
    throw new Error(`published version ${v.masque_name}@${v.seq} does not match its stored spec`);
  }
  return m;
}

/**
 * Effective time of a new version (ADR 0107): the first version of a masque applies at once; a
 * version whose price book differs from the previous version's applies `notice_ns` after it was
 * published; effective times never go backwards (a later version never applies before an earlier
 * one, so a pending price change cannot be brought forward by another edit).
 */
export function effectiveTimeNs(previous: Pick<CatalogVersionRow, "price_version" | "effective_time_ns"> | null, price_version: number, publish_ns: bigint, notice_ns: bigint): bigint {
  if (previous === null) return publish_ns;
  const own = previous.price_version === price_version ? publish_ns : publish_ns + notice_ns;
  return own > previous.effective_time_ns ? own : previous.effective_time_ns;
}

export interface LiveCatalog {
  /** The catalog in force at `now_ns` (memoised until the next effective time or change). */
  at(now_ns: bigint): Catalog;
  /** The folder's catalog as last scanned. */
  files(): Catalog;
  /** Invalid files of the last scan. */
  problems(): readonly CatalogProblem[];
  /** Re-read MASQUES_DIR now; resolves when the new catalog is in force (or kept on failure). */
  rescanFiles(): Promise<void>;
  /** Re-read the published versions now. */
  refreshPublished(): Promise<void>;
  /** Start watching the folder and rescanning periodically (idempotent). */
  watch(): void;
  stop(): void;
}

export interface LiveCatalogDeps {
  dir: string;
  rescan_ms: number;
  store: CatalogStore;
  priceBooks: PriceBookStore;
  log: Logger;
}

/** Build it with the folder scanned once (synchronously; problems logged, never thrown). */
export function createLiveCatalog(d: LiveCatalogDeps): LiveCatalog {
  let scanned = scanCatalog(d.dir);
  let files = scanned.catalog;
  let problems = scanned.problems;
  let lastProblemText = "";
  let published = new Map<string, { row: CatalogVersionRow; masque: Masque }[]>();
  let memo: { catalog: Catalog; from_ns: bigint; until_ns: bigint } | null = null;
  let watcher: fs.FSWatcher | null = null;
  let timer: NodeJS.Timeout | null = null;
  let debounce: NodeJS.Timeout | null = null;
  let scanning: Promise<void> | null = null;
  const shadowWarned = new Set<string>();

  const reportProblems = () => {
    const text = JSON.stringify(problems);
    if (text === lastProblemText) return;
    lastProblemText = text;
    for (const p of problems) d.log.error({ file: p.file, problem: p.message }, `masque file skipped: ${p.file}: ${p.message}`);
  };
  reportProblems();

  const build = (now: bigint): { catalog: Catalog; until_ns: bigint } => {
    const masques: Masque[] = [...files.list()];
    let until = BigInt("0x7fffffffffffffff");
    for (const [name, versions] of published) {
      let inForce: Masque | null = null;
      for (const v of versions) {
        if (v.row.effective_time_ns <= now) inForce = v.masque;
        else if (v.row.effective_time_ns < until) until = v.row.effective_time_ns;
      }
      if (inForce === null) continue;
      const byName = files.byName.get(name);
      const byIndex = files.byIndex.get(inForce.index);
      if (byName || byIndex) {
        const key = `${name}:${(byName ?? byIndex)!.file}`;
        if (!shadowWarned.has(key)) {
          shadowWarned.add(key);
          d.log.warn({ masque: name, file: (byName ?? byIndex)!.file }, `published masque "${name}" is shadowed by the file ${(byName ?? byIndex)!.file} in MASQUES_DIR: the file wins`);
        }
        continue;
      }
      masques.push(inForce);
    }
    return { catalog: new Catalog(masques), until_ns: until };
  };

  const swapFiles = async () => {
    const next = scanCatalog(d.dir);
    try {
      await d.priceBooks.registerCatalog(next.catalog);
    } catch (err) {
      if (!(err instanceof CatalogError)) throw err;
      problems = [...next.problems, { file: d.dir, message: err.message }];
      reportProblems();
      return; // keep the previous catalog: a collision is refused, never half-applied
    }
    // A new author's earnings account is created by the first settlement that pays it (settle.ts).
    const changed = JSON.stringify(files.list().map((m) => [m.name, m.index, m.price_version, m.version, m.file])) !==
      JSON.stringify(next.catalog.list().map((m) => [m.name, m.index, m.price_version, m.version, m.file]));
    files = next.catalog;
    problems = next.problems;
    memo = null;
    reportProblems();
    if (changed) d.log.info({ dir: d.dir, masques: files.list().length, skipped: problems.length }, "masque folder re-read");
  };

  const rescanFiles = (): Promise<void> => {
    scanning ??= swapFiles()
      .catch((err: unknown) => d.log.error({ err }, "re-reading MASQUES_DIR failed; the previous catalog stays"))
      .finally(() => {
        scanning = null;
      });
    return scanning;
  };

  const refreshPublished = async () => {
    const rows = await d.store.all();
    const next = new Map<string, { row: CatalogVersionRow; masque: Masque }[]>();
    for (const row of rows) {
      let masque: Masque;
      try {
        masque = masqueOfVersion(row);
      } catch (err) {
        d.log.error({ err, masque: row.masque_name, seq: row.seq }, "published masque version unreadable; skipped");
        continue;
      }
      const list = next.get(row.masque_name) ?? [];
      list.push({ row, masque });
      next.set(row.masque_name, list);
    }
    published = next;
    memo = null;
  };

  const tick = () => {
    void rescanFiles();
    refreshPublished().catch((err: unknown) => d.log.error({ err }, "reading published masques failed; will retry"));
  };

  return {
    at(now) {
      if (memo && now >= memo.from_ns && now < memo.until_ns) return memo.catalog;
      const b = build(now);
      memo = { catalog: b.catalog, from_ns: now, until_ns: b.until_ns };
      return b.catalog;
    },
    files: () => files,
    problems: () => problems,
    rescanFiles,
    refreshPublished,
    watch() {
      if (timer) return;
      timer = setInterval(tick, d.rescan_ms);
      timer.unref();
      try {
        watcher = fs.watch(d.dir, { persistent: false }, () => {
          if (debounce) clearTimeout(debounce);
          debounce = setTimeout(() => void rescanFiles(), 50);
          debounce.unref();
        });
        watcher.on("error", (err) => d.log.warn({ err, dir: d.dir }, "watching MASQUES_DIR failed; the periodic rescan continues"));
      } catch (err) {
        d.log.warn({ err, dir: path.resolve(d.dir) }, "cannot watch MASQUES_DIR (missing?); rescanning every CATALOG_RESCAN_MS");
      }
    },
    stop() {
      if (timer) clearInterval(timer);
      if (debounce) clearTimeout(debounce);
      watcher?.close();
      timer = null;
    },
  };
}
