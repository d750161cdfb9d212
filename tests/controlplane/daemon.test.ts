/**
 * The daemon's lifecycle with the control plane (src/daemon.ts): migrated at start and on the
 * services' context, closed at shutdown (the PGlite lock is released: a second start works), and
 * a database migrated by a newer build refuses the start before anything listens. Runs the daemon
 * in-process with services written for the test. Both engines (support.ts).
 */
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../src/config.js";
import { MigrationRefusedError } from "../../src/controlplane/index.js";
import { MIGRATIONS } from "../../src/controlplane/migrations/index.js";
import { runDaemon } from "../../src/daemon.js";
import { createLogger } from "../../src/log.js";
import type { DaemonContext, ServicesModule } from "../../src/server/registry.js";
import { priceBookVersion } from "../../src/domain/catalog.js";
import { priceBookFromText } from "../../src/domain/pricing.js";
import { createTestDb, ENGINE, type TestDb } from "./support.js";

let t: TestDb;
beforeEach(async () => {
  t = await createTestDb();
});
afterEach(async () => {
  await t.dispose();
});

function config(): Config {
  return loadConfig({ MASQUES_GRPC_ADDR: "127.0.0.1:0", MASQUES_HTTP_ADDR: "127.0.0.1:0", STREAMER_ENABLED: "false", ...t.env() });
}

function logger(lines: Record<string, unknown>[]) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split("\n")) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return createLogger({ destination: sink });
}

const pricing = priceBookFromText({ per_minute: "0.02", reserve: "1" });
const book = { version: priceBookVersion(42, "ada", pricing), masque_index: 42, masque_name: "forty-two", author: "ada", pricing };

describe(`daemon lifecycle with the control plane (${ENGINE})`, () => {
  it("services get the migrated control plane on their context; it survives a restart", async () => {
    const seen: DaemonContext[] = [];
    const services: ServicesModule = {
      createServices: () => [],
      async onStart(ctx) {
        seen.push(ctx);
        await ctx.controlplane.priceBooks.put(book);
      },
    };
    const lines: Record<string, unknown>[] = [];
    const first = await runDaemon(config(), logger(lines), { services });
    await first.stop("test");
    expect(seen[0]!.controlplane.engine).toBe(ENGINE);
    const open = lines.find((l) => l.msg === "control plane open");
    expect(open?.migrations_applied).toEqual(MIGRATIONS.map((m) => m.name));
    expect(String(open?.controlplane)).not.toMatch(/:[^:@/]*@/); // no password in the log

    const again: Record<string, unknown>[] = [];
    const second = await runDaemon(config(), logger(again), {
      services: { createServices: () => [], onStart: async (ctx) => void seen.push(ctx) },
    });
    try {
      expect(again.find((l) => l.msg === "control plane open")?.migrations_applied).toEqual([]);
      expect(await seen[1]!.controlplane.priceBooks.get(book.version)).toEqual(book);
    } finally {
      await second.stop("test");
    }
  });

  it("refuses to start on a database a newer build migrated, before listening", async () => {
    const newer = await t.open({ migrations: [...MIGRATIONS, { name: "0100_from_the_future", statements: ["create table from_the_future (id int)"] }] });
    await newer.close();
    let started = false;
    const err = await runDaemon(config(), logger([]), {
      services: { createServices: () => [], onStart: async () => void (started = true) },
    }).then(
      async (d) => {
        await d.stop("test");
        return null;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MigrationRefusedError);
    expect((err as Error).message).toMatch(/0100_from_the_future applied, which this build does not know/);
    expect(started).toBe(false);
    // Nothing was left open: the control plane opens again in this process.
    const cp = await t.open({ migrations: [...MIGRATIONS, { name: "0100_from_the_future", statements: ["create table from_the_future (id int)"] }] });
    await cp.close();
  });
});
