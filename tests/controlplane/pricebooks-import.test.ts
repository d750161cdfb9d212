/**
 * Migration 0002 imports the legacy `$MASQUES_DATA_DIR/sessions/pricebooks.jsonl` (written by
 * PriceBookRegistry) once, atomically with the migration record. Both engines (support.ts).
 */
import fs from "node:fs";
import path from "node:path";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Catalog, parseMasque, PriceBookRegistry, type Masque } from "../../src/domain/catalog.js";
import { createTestDb, ENGINE, type TestDb } from "./support.js";

let t: TestDb;
beforeEach(async () => {
  t = await createTestDb();
});
afterEach(async () => {
  await t.dispose();
});

function masque(name: string, index: number, author: string, reserve: string): Masque {
  return parseMasque(
    `name: ${name}\nindex: ${index}\nversion: 1.0.0\nauthor: ${author}\npricing:\n  flat_per_session: "0.10"\n  per_1k_output_tokens: "0.000000000015"\n  reserve: "${reserve}"\n`,
    `${name}.yaml`,
  );
}

/** Write the legacy file the way the old daemon did. */
function legacy(masques: Masque[]): { file: string; registry: PriceBookRegistry } {
  const dir = path.join(t.dataDir, "sessions");
  const registry = new PriceBookRegistry(dir);
  registry.registerCatalog(new Catalog(masques));
  return { file: path.join(dir, "pricebooks.jsonl"), registry };
}

describe(`pricebooks.jsonl import (${ENGINE})`, () => {
  it("imports every version of the file once, skips a torn last line, and never imports again", async () => {
    legacy([masque("alpha", 1, "ada", "1"), masque("beta", 2, "bob", "2")]);
    const { file, registry } = legacy([masque("alpha", 1, "ada", "5")]); // alpha re-priced: a third version
    expect(registry.all()).toHaveLength(3);
    fs.appendFileSync(file, '{"version":12,"masque_ind'); // crash mid-append

    const cp = await t.open();
    try {
      expect(cp.migrations.applied).toContain("0002_import_pricebooks_jsonl");
      const stored = await cp.priceBooks.all();
      const want = new PriceBookRegistry(path.dirname(file)).all().sort((a, b) => a.version - b.version);
      expect(stored).toEqual(want);
      const sources = await sql<{ source: string; n: number }>`select source, count(*)::int as n from price_book group by source`.execute(cp.db);
      expect(sources.rows).toEqual([{ source: "jsonl-import", n: 3 }]);
      const imports = await sql<{ file: string; lines_read: number; rows_inserted: number }>`select file, lines_read, rows_inserted from price_book_import`.execute(cp.db);
      expect(imports.rows).toEqual([{ file, lines_read: 4, rows_inserted: 3 }]);
    } finally {
      await cp.close();
    }

    // The old daemon writes one more version after the import: a restart does not import again.
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/\{"version":12,"masque_ind$/, ""));
    const late = legacy([masque("gamma", 3, "ada", "3")]).registry.all().find((e) => e.masque_name === "gamma")!;
    const again = await t.open();
    try {
      expect(again.migrations.applied).toEqual([]);
      expect(await again.priceBooks.get(late.version)).toBeUndefined();
      expect(await again.priceBooks.all()).toHaveLength(3);
      const imports = await sql<{ n: number }>`select count(*)::int as n from price_book_import`.execute(again.db);
      expect(imports.rows[0]!.n).toBe(1);
    } finally {
      await again.close();
    }
  });

  it("without a legacy file the migration records no import", async () => {
    const cp = await t.open();
    try {
      expect(await cp.priceBooks.all()).toEqual([]);
      const imports = await sql<{ n: number }>`select count(*)::int as n from price_book_import`.execute(cp.db);
      expect(imports.rows[0]!.n).toBe(0);
    } finally {
      await cp.close();
    }
  });

  it("a corrupt line refuses the start naming file and line, and leaves the database unmigrated", async () => {
    const { file } = legacy([masque("alpha", 1, "ada", "1"), masque("beta", 2, "bob", "2")]);
    const lines = fs.readFileSync(file, "utf8").split("\n");
    const tampered = JSON.parse(lines[1]!) as { pricing: string };
    tampered.pricing = tampered.pricing.replace('"2000000"', '"2000001"'); // reserve changed: version no longer matches
    lines[1] = JSON.stringify(tampered);
    fs.writeFileSync(file, lines.join("\n"));
    await expect(t.open()).rejects.toThrow(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:2: price book \\d+: version does not match its content`));

    // Fixing the file lets the next start import it (nothing of the failed attempt was kept).
    fs.rmSync(file);
    legacy([masque("alpha", 1, "ada", "1"), masque("beta", 2, "bob", "2")]);
    const cp = await t.open();
    try {
      expect(cp.migrations.applied.slice(0, 2)).toEqual(["0001_price_books", "0002_import_pricebooks_jsonl"]); // later migrations follow
      expect(await cp.priceBooks.all()).toHaveLength(2);
    } finally {
      await cp.close();
    }
  });
});
