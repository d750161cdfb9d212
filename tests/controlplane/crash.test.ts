/**
 * A process writing price books that is SIGKILLed leaves the control-plane database consistent
 * and readable after restart: every write it was told was committed is there, every row is what
 * its version says, migrations check clean, and writing goes on. Both engines (support.ts).
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { priceBookVersion } from "../../src/domain/catalog.js";
import { priceBookFromText } from "../../src/domain/pricing.js";
import { createTestDb, ENGINE, type TestDb } from "./support.js";

const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), "pricebook-writer.ts");

let t: TestDb;
beforeEach(async () => {
  t = await createTestDb();
});
afterEach(async () => {
  await t.dispose();
});

/** Run the writer until it acknowledged `batches` batches, then SIGKILL it. Returns the acknowledged versions. */
async function writeThenKill(firstIndex: number, batches: number): Promise<number[]> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "", ...t.env(), WRITER_FIRST_INDEX: String(firstIndex) };
  const child = spawn(process.execPath, ["--import", "tsx", WRITER], { env, stdio: ["ignore", "pipe", "pipe"] });
  const acked: number[] = [];
  let lines = 0;
  let stderr = "";
  let buffer = "";
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once("exit", (code, signal) => resolve(signal ?? code)));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const enough = new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith("ok ")) {
          acked.push(...line.slice(3).split(",").map(Number));
          if (++lines === batches) resolve();
        }
      }
    });
    void exited.then((how) => reject(new Error(`writer exited (${String(how)}) before ${batches} batches: ${stderr}`)));
  });
  await enough;
  child.kill("SIGKILL");
  expect(await exited).toBe("SIGKILL");
  return acked;
}

describe(`a SIGKILLed writer (${ENGINE})`, () => {
  it("leaves every committed price book readable and every row consistent after restart", async () => {
    const acked = [...(await writeThenKill(1_000, 25)), ...(await writeThenKill(5_000, 25))];
    expect(acked.length).toBeGreaterThanOrEqual(2 * 25 * 8);

    const cp = await t.open(); // start-up checks the migrations; PGlite recovers from its WAL
    try {
      expect(cp.migrations.applied).toEqual([]);
      const all = await cp.priceBooks.all();
      const stored = new Set(all.map((e) => e.version));
      for (const v of acked) expect(stored.has(v)).toBe(true);
      for (const e of all) {
        expect(e.author).toBe("crash-author");
        expect(priceBookVersion(e.masque_index, e.author, e.pricing)).toBe(e.version);
      }
      // Writes go on after the crash.
      const pricing = priceBookFromText({ reserve: "2" });
      const after = { version: priceBookVersion(9_999, "crash-author", pricing), masque_index: 9_999, masque_name: "after", author: "crash-author", pricing };
      expect(await cp.priceBooks.put(after)).toEqual(after);
    } finally {
      await cp.close();
    }
  });
});
