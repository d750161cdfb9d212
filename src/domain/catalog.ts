/**
 * The masque catalog: masque YAML files (seed 001 schema) plus an `author` and a `pricing` block,
 * loaded from MASQUES_DIR and validated with zod, plus the legacy file registry of price books.
 *
 * A price-book version is content-addressed: a 30-bit hash of the canonical (masque index, author,
 * exact pricing). It is stored in the session hold's user_data_32 (see sessions.ts), so a session
 * is always priced and paid with what was in force at Don, even after the YAML changes. Every
 * version ever loaded is stored in the control-plane database (src/controlplane/pricebooks.ts),
 * shared by every daemon and surviving restarts (ADR 0031, 0071).
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { canonicalPriceBook, priceBookFromCanonical, priceBookFromText, type PriceBook } from "./pricing.js";
import { parseUsdToMicro } from "./money.js";

/** The rule a YAML number breaks where a price is expected (floats are not exact). */
export const QUOTED_PRICE_RULE = 'write decimal prices as quoted strings, e.g. "0.01" (a YAML number is not exact)';
const priceString = () =>
  z.string({ error: (iss) => (typeof iss.input === "number" ? QUOTED_PRICE_RULE : undefined) });
const USD_RE = /^\d{1,18}(\.\d{1,6})?$/;
const usd = priceString().regex(USD_RE, "expected a decimal USD amount with at most 6 fractional digits, e.g. \"0.25\"");
const rate = priceString()
  .regex(/^\d{1,18}(\.\d{1,12})?$/, "expected a decimal USD rate with at most 12 fractional digits, e.g. \"0.0015\"");
/** YAML may give numbers; prices must stay exact, so only strings and integers are accepted. */
const decimal = <T extends z.ZodString>(s: T) =>
  z.preprocess((v) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? String(v) : v), s);
/**
 * A USD amount that passed its field's rule, in micro-USD; null when it did not (zod still runs
 * the object's refinement after a field's regex issue, and that field is already reported).
 */
const validMicro = (text: string | undefined): bigint | null =>
  text !== undefined && USD_RE.test(text) ? parseUsdToMicro(text) : null;

export const pricingSchema = z
  .object({
    flat_per_session: decimal(usd).optional(),
    per_minute: decimal(rate).optional(),
    per_1k_input_tokens: decimal(rate).optional(),
    per_1k_output_tokens: decimal(rate).optional(),
    per_tool_call: decimal(rate).optional(),
    cap_per_session: decimal(usd).optional(),
    reserve: decimal(usd),
  })
  .strict()
  .superRefine((p, ctx) => {
    const reserve = validMicro(p.reserve);
    if (reserve === null) return;
    const flat = validMicro(p.flat_per_session);
    if (flat !== null && flat > reserve) {
      ctx.addIssue({ code: "custom", path: ["reserve"], message: "reserve must cover flat_per_session" });
    }
    const cap = validMicro(p.cap_per_session);
    if (cap !== null && cap < reserve) {
      ctx.addIssue({ code: "custom", path: ["reserve"], message: "reserve must not exceed cap_per_session" });
    }
  });

export const AUTHOR_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;
export const MASQUE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,127}$/;

export const masqueSchema = z
  .object({
    name: z.string().regex(MASQUE_NAME_RE, "1-128 letters, digits, spaces or _.:-"),
    index: z.number().int().min(1).max(2 ** 48 - 1),
    version: z.string().regex(/^\d+\.\d+\.\d+$/, "expected a semantic version x.y.z"),
    ring: z.enum(["admin", "player", "guest", "outsider"]).default("player"),
    author: z.string().regex(AUTHOR_ID_RE, "expected an author id (letters, digits, _.:@-)"),
    attributes: z.record(z.string(), z.unknown()).optional(),
    intent: z
      .object({ allowed: z.array(z.string()).optional(), denied: z.array(z.string()).optional() })
      .optional(),
    context: z.string().optional(),
    lens: z.string().optional(),
    knowledge: z.array(z.string()).optional(),
    access: z.record(z.string(), z.unknown()).optional(),
    mcp: z.unknown().optional(),
    spinnerVerbs: z.unknown().optional(),
    pricing: pricingSchema,
  })
  .loose();

export interface Masque {
  name: string;
  index: number;
  version: string;
  ring: string;
  author: string;
  pricing: PriceBook;
  /** Price-book version (30 bits) of (index, author, pricing). */
  price_version: number;
  file: string;
}

export class CatalogError extends Error {}

/** 30-bit content hash of what a session is priced and paid by. */
export function priceBookVersion(masque_index: number, author: string, pb: PriceBook): number {
  const canonical = canonicalPriceBookEntry(masque_index, author, pb);
  const d = createHash("sha256").update("masques-ledger/pricebook/v1").update(canonical).digest();
  return d.readUInt32BE(0) >>> 2;
}

export function canonicalPriceBookEntry(masque_index: number, author: string, pb: PriceBook): string {
  return JSON.stringify([masque_index, author, canonicalPriceBook(pb)]);
}

/** Parse one masque YAML document (pure). Errors name the file and the field. */
export function parseMasque(text: string, file: string): Masque {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new CatalogError(`${file}: invalid YAML: ${(e as Error).message}`);
  }
  const r = masqueSchema.safeParse(doc);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new CatalogError(`${file}: ${msg}`);
  }
  const m = r.data;
  const pricing = priceBookFromText(m.pricing);
  return {
    name: m.name,
    index: m.index,
    version: m.version,
    ring: m.ring,
    author: m.author,
    pricing,
    price_version: priceBookVersion(m.index, m.author, pricing),
    file,
  };
}

export class Catalog {
  readonly byName = new Map<string, Masque>();
  readonly byIndex = new Map<number, Masque>();

  constructor(masques: readonly Masque[]) {
    for (const m of masques) {
      const a = this.byName.get(m.name);
      if (a) throw new CatalogError(`${m.file}: masque name "${m.name}" already defined in ${a.file}`);
      const b = this.byIndex.get(m.index);
      if (b) throw new CatalogError(`${m.file}: masque index ${m.index} already used by ${b.file}`);
      this.byName.set(m.name, m);
      this.byIndex.set(m.index, m);
    }
  }

  list(): Masque[] {
    return [...this.byIndex.values()].sort((x, y) => x.index - y.index);
  }

  /** Masque indexes (current catalog) authored by `author`. */
  indexesOfAuthor(author: string): number[] {
    return this.list().filter((m) => m.author === author).map((m) => m.index);
  }
}

/** One catalog file that was skipped, and why (file, then "field: rule"). */
export interface CatalogProblem {
  file: string;
  message: string;
}

/** Most YAML files read from MASQUES_DIR per scan; more is an error naming the limit. */
export const CATALOG_FILES_MAX = 10_000;
/** Largest masque file read, bytes. */
export const CATALOG_FILE_BYTES_MAX = 1024 * 1024;

/**
 * Read every *.yaml / *.yml file in `dir` (non-recursive, sorted), SKIPPING the invalid ones: a
 * file that does not parse, breaks the schema, or reuses a name or index of an earlier file (in
 * sorted order) is reported in `problems` and left out; the others form the catalog. A missing dir
 * is an empty catalog. Never throws for a file's content (ADR 0031 as amended by ADR 0107).
 */
export function scanCatalog(dir: string): { catalog: Catalog; problems: CatalogProblem[] } {
  const problems: CatalogProblem[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((f) => /\.ya?ml$/i.test(f)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { catalog: new Catalog([]), problems };
    return { catalog: new Catalog([]), problems: [{ file: dir, message: `cannot read the directory: ${(err as Error).message}` }] };
  }
  if (names.length > CATALOG_FILES_MAX) {
    problems.push({ file: dir, message: `${names.length} masque files; only the first ${CATALOG_FILES_MAX} are read` });
    names = names.slice(0, CATALOG_FILES_MAX);
  }
  const byName = new Map<string, Masque>();
  const byIndex = new Map<number, Masque>();
  for (const f of names) {
    const file = path.join(dir, f);
    try {
      const st = fs.statSync(file);
      if (!st.isFile()) continue;
      if (st.size > CATALOG_FILE_BYTES_MAX) throw new CatalogError(`${file}: (file): larger than ${CATALOG_FILE_BYTES_MAX} bytes`);
      const m = parseMasque(fs.readFileSync(file, "utf8"), file);
      const a = byName.get(m.name);
      if (a) throw new CatalogError(`${file}: name: masque name "${m.name}" already defined in ${a.file}`);
      const b = byIndex.get(m.index);
      if (b) throw new CatalogError(`${file}: index: masque index ${m.index} already used by ${b.file}`);
      byName.set(m.name, m);
      byIndex.set(m.index, m);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // removed while scanning
      const message = (err as Error).message;
      problems.push({ file, message: message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message });
    }
  }
  return { catalog: new Catalog([...byName.values()]), problems };
}

/** Load every *.yaml / *.yml file in `dir` (non-recursive, sorted). A missing dir = empty catalog. */
export function loadCatalog(dir: string): Catalog {
  if (!fs.existsSync(dir)) return new Catalog([]);
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/i.test(f))
    .sort();
  return new Catalog(files.map((f) => parseMasque(fs.readFileSync(path.join(dir, f), "utf8"), path.join(dir, f))));
}

export interface PriceBookEntry {
  version: number;
  masque_index: number;
  masque_name: string;
  author: string;
  pricing: PriceBook;
}

interface PriceBookLine {
  version: number;
  masque_index: number;
  masque_name: string;
  author: string;
  pricing: string;
  first_seen: string;
}

/**
 * LEGACY: the pre-database price-book registry, durable in `<dir>/pricebooks.jsonl` (append-only;
 * a torn last line from a crash is ignored). The daemon no longer uses it: price books live in the
 * control-plane database (src/controlplane/pricebooks.ts, ADR 0071) and migration 0002 imports an
 * existing file once. Kept only so tests can write the legacy files that migration reads.
 */
export class PriceBookRegistry {
  private readonly versions = new Map<number, PriceBookEntry>();
  private readonly file: string | null;

  constructor(dir: string | null) {
    this.file = dir === null ? null : path.join(dir, "pricebooks.jsonl");
    if (this.file && fs.existsSync(this.file)) {
      for (const line of fs.readFileSync(this.file, "utf8").split("\n")) {
        if (!line.trim()) continue;
        let l: PriceBookLine;
        try {
          l = JSON.parse(line) as PriceBookLine;
        } catch {
          continue; // torn tail
        }
        this.versions.set(l.version, {
          version: l.version,
          masque_index: l.masque_index,
          masque_name: l.masque_name,
          author: l.author,
          pricing: priceBookFromCanonical(l.pricing),
        });
      }
    }
  }

  get(version: number): PriceBookEntry | undefined {
    return this.versions.get(version);
  }

  all(): PriceBookEntry[] {
    return [...this.versions.values()];
  }

  /** Masque indexes (any version ever seen) authored by `author`. */
  indexesOfAuthor(author: string): number[] {
    const s = new Set<number>();
    for (const e of this.versions.values()) if (e.author === author) s.add(e.masque_index);
    return [...s].sort((a, b) => a - b);
  }

  /** Record the catalog's versions (durably, before any session can use them). */
  registerCatalog(catalog: Catalog): void {
    const fresh: PriceBookLine[] = [];
    for (const m of catalog.list()) {
      const have = this.versions.get(m.price_version);
      const canonical = canonicalPriceBookEntry(m.index, m.author, m.pricing);
      if (have) {
        if (canonicalPriceBookEntry(have.masque_index, have.author, have.pricing) !== canonical) {
          throw new CatalogError(
            `${m.file}: price-book version ${m.price_version} collides with an earlier, different price book of masque ${have.masque_index}; change the pricing slightly`,
          );
        }
        continue;
      }
      this.versions.set(m.price_version, {
        version: m.price_version,
        masque_index: m.index,
        masque_name: m.name,
        author: m.author,
        pricing: m.pricing,
      });
      fresh.push({
        version: m.price_version,
        masque_index: m.index,
        masque_name: m.name,
        author: m.author,
        pricing: canonicalPriceBook(m.pricing),
        first_seen: new Date().toISOString(),
      });
    }
    if (this.file && fresh.length > 0) {
      fs.mkdirSync(path.dirname(this.file), { recursive: true });
      // A torn last line (crash mid-append) is ended first so the new lines parse.
      const size = fs.existsSync(this.file) ? fs.statSync(this.file).size : 0;
      let lead = "";
      if (size > 0) {
        const last = Buffer.alloc(1);
        const rfd = fs.openSync(this.file, "r");
        fs.readSync(rfd, last, 0, 1, size - 1);
        fs.closeSync(rfd);
        if (last[0] !== 0x0a) lead = "\n";
      }
      const fd = fs.openSync(this.file, "a");
      try {
        fs.writeSync(fd, lead + fresh.map((l) => JSON.stringify(l)).join("\n") + "\n");
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  }
}
