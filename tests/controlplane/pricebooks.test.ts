/**
 * The price-book store in the control-plane database (ADR 0071): durable, shared by every
 * daemon over one database, first writer wins, collisions refused. Both engines (support.ts).
 */
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ControlPlane } from "../../src/controlplane/index.js";
import { Catalog, CatalogError, parseMasque, priceBookVersion, type PriceBookEntry } from "../../src/domain/catalog.js";
import { canonicalPriceBook, priceBookFromText } from "../../src/domain/pricing.js";
import { createTestDb, ENGINE, type TestDb } from "./support.js";

let t: TestDb;
let cp: ControlPlane;
beforeEach(async () => {
  t = await createTestDb();
  cp = await t.open();
});
afterEach(async () => {
  await cp.close();
  await t.dispose();
});

function entry(masque_index: number, author: string, reserve: string, name = `masque-${masque_index}`): PriceBookEntry {
  const pricing = priceBookFromText({ per_minute: "0.0015", per_1k_input_tokens: "0.003", cap_per_session: "50", reserve });
  return { version: priceBookVersion(masque_index, author, pricing), masque_index, masque_name: name, author, pricing };
}

describe(`price-book store (${ENGINE})`, () => {
  it("stores entries exactly (bigint prices, 48-bit masque index) and answers get, all and indexesOfAuthor", async () => {
    const big = entry(2 ** 48 - 1, "ada", "12.345678");
    const a = entry(5, "ada", "1");
    const b = entry(6, "bob", "2");
    const a2 = entry(5, "ada", "3"); // same masque re-priced: a second version
    expect(await cp.priceBooks.putMany([big, a, b, a2])).toEqual([big, a, b, a2]);
    const fresh = await t.peer(cp);
    try {
      expect(fresh.priceBooks.peek(a.version)).toBeUndefined();
      expect(await fresh.priceBooks.get(big.version)).toEqual(big);
      expect(fresh.priceBooks.peek(big.version)).toEqual(big);
      expect(await fresh.priceBooks.get(priceBookVersion(9, "nobody", a.pricing))).toBeUndefined();
      expect(await fresh.priceBooks.get(-1)).toBeUndefined();
      expect((await fresh.priceBooks.all()).map((e) => e.version)).toEqual([big, a, b, a2].map((e) => e.version).sort((x, y) => x - y));
      expect(await fresh.priceBooks.indexesOfAuthor("ada")).toEqual([5, 2 ** 48 - 1]);
      expect(await fresh.priceBooks.indexesOfAuthor("carol")).toEqual([]);
    } finally {
      await fresh.close();
    }
  });

  it("a price book written by one store is seen by another through its cache miss", async () => {
    const other = await t.peer(cp);
    try {
      const e = entry(11, "ada", "4");
      expect(await other.priceBooks.get(e.version)).toBeUndefined(); // a miss is not cached
      await cp.priceBooks.put(e);
      expect(await other.priceBooks.get(e.version)).toEqual(e);
      expect((await other.priceBooks.all()).map((x) => x.version)).toContain(e.version);
    } finally {
      await other.close();
    }
  });

  it("concurrent writers of the same price books from two stores over one database agree (first writer wins)", async () => {
    const other = await t.peer(cp);
    try {
      const mine = Array.from({ length: 600 }, (_, i) => entry(100 + i, i % 2 ? "ada" : "bob", "1"));
      // Same content, another masque name (a renamed masque keeps its version).
      const theirs = mine.map((e) => ({ ...e, masque_name: `${e.masque_name}-renamed` }));
      // Whole lists at once, in opposite orders, plus single puts: the writes overlap in the database.
      const writes: Promise<PriceBookEntry[]>[] = [
        cp.priceBooks.putMany(mine),
        other.priceBooks.putMany([...theirs].reverse()),
        cp.priceBooks.putMany(mine.slice(300)),
        other.priceBooks.putMany(theirs.slice(0, 300).reverse()),
        ...theirs.filter((_, i) => i % 50 === 0).map((e) => other.priceBooks.put(e).then((x) => [x])),
      ];
      const answers = (await Promise.all(writes)).flat();
      const byVersion = new Map<number, PriceBookEntry>();
      for (const a of answers) {
        const seen = byVersion.get(a.version);
        if (seen) expect(a).toEqual(seen); // every writer got the same stored row
        byVersion.set(a.version, a);
      }
      expect(byVersion.size).toBe(mine.length);
      const fromA = await cp.priceBooks.all();
      const fromB = await other.priceBooks.all();
      expect(fromA).toEqual(fromB);
      expect(fromA).toHaveLength(mine.length);
      for (const e of fromA) {
        expect(priceBookVersion(e.masque_index, e.author, e.pricing)).toBe(e.version);
        expect(e).toEqual(byVersion.get(e.version));
      }
    } finally {
      await other.close();
    }
  });

  it("a different price book already stored under the same version is refused (hash collision)", async () => {
    const e = entry(21, "ada", "1");
    const forged = priceBookFromText({ reserve: "999" });
    await sql`insert into price_book (version, masque_index, masque_name, author, pricing, source)
      values (${e.version}, 21, 'forged', 'ada', ${canonicalPriceBook(forged)}, 'catalog')`.execute(cp.db);
    await expect(cp.priceBooks.put(e)).rejects.toThrow(CatalogError);
    await expect(cp.priceBooks.put(e)).rejects.toThrow(new RegExp(`price-book version ${e.version} collides`));
    // The stored row is untouched.
    expect((await cp.priceBooks.get(e.version))?.pricing).toEqual(forged);
  });

  it("refuses an entry whose version is not the hash of its content", async () => {
    const e = entry(22, "ada", "1");
    await expect(cp.priceBooks.put({ ...e, version: e.version ^ 1 })).rejects.toThrow(/version does not match its content/);
    await expect(cp.priceBooks.put({ ...e, masque_index: 0 })).rejects.toThrow(/masque_index 0 must be 1\.\./);
    expect(await cp.priceBooks.all()).toEqual([]);
  });

  it("registerCatalog stores every masque's price book and names the file of a collision", async () => {
    const yaml = (name: string, index: number, reserve: string) =>
      `name: ${name}\nindex: ${index}\nversion: 1.0.0\nauthor: ada\npricing:\n  per_minute: "0.01"\n  reserve: "${reserve}"\n`;
    const catalog = new Catalog([parseMasque(yaml("alpha", 1, "1"), "alpha.yaml"), parseMasque(yaml("beta", 2, "2"), "beta.yaml")]);
    await cp.priceBooks.registerCatalog(catalog);
    await cp.priceBooks.registerCatalog(catalog); // every start registers again: no change
    const all = await cp.priceBooks.all();
    expect(all.map((e) => [e.masque_name, e.version]).sort()).toEqual(catalog.list().map((m) => [m.name, m.price_version]).sort());
    const beta = catalog.byName.get("beta")!;
    await sql`update price_book set pricing = ${canonicalPriceBook(priceBookFromText({ reserve: "7" }))} where version = ${beta.price_version}`.execute(cp.db);
    const other = await t.peer(cp);
    try {
      await expect(other.priceBooks.registerCatalog(catalog)).rejects.toThrow(/^beta\.yaml: price-book version \d+ collides/);
    } finally {
      await other.close();
    }
  });
});
