/**
 * The daemon's ledger opening (src/ledger/index.ts): an emptied or missing embedded ledger beside
 * state that shows a ledger existed (the ledger marker, embedded analytics) refuses to start
 * instead of silently starting a brand-new ledger (issue 11); the loss can be accepted explicitly.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AccountFlags } from "tigerbeetle-node";
import { loadConfig, type Config } from "../../src/config.js";
import { LEDGER_MARKER, LedgerMissingError, openLedger } from "../../src/ledger/index.js";
import type { EngineLog } from "../../src/ledger/embedded/index.js";
import { newAccount } from "../../src/domain/records.js";

let dataDir: string;
let logged: { level: string; msg: string; fields: Record<string, unknown> }[];
const log: EngineLog = {
  warn: (fields, msg) => logged.push({ level: "warn", msg, fields }),
  error: (fields, msg) => logged.push({ level: "error", msg, fields }),
};
const config = (extra: Record<string, string> = {}): Config => loadConfig({ MASQUES_DATA_DIR: dataDir, MASQUES_COALESCE: "false", ...extra });

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "open-ledger-test-"));
  logged = [];
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

async function ledgerWithOneAccount(): Promise<void> {
  const l = await openLedger(config(), { log });
  await l.client.createAccounts([newAccount({ id: 7n, ledger: 1, code: 1, flags: AccountFlags.history })]);
  await l.close();
}

async function openError(c: Config): Promise<unknown> {
  try {
    const l = await openLedger(c, { log });
    await l.close();
  } catch (err) {
    return err;
  }
  return null;
}

describe("a ledger missing beside existing state", () => {
  it("a fresh data directory opens and records that a ledger now exists", async () => {
    fs.mkdirSync(path.join(dataDir, "keys"));
    fs.writeFileSync(path.join(dataDir, "keys", "dev.jwk"), "{}"); // keys alone are made before the first start
    await ledgerWithOneAccount();
    expect(fs.existsSync(path.join(dataDir, LEDGER_MARKER))).toBe(true);
    expect(logged).toEqual([]);
  });

  it("an emptied ledger directory beside the marker refuses to start, naming the directory and the way out", async () => {
    await ledgerWithOneAccount();
    const ledgerDir = path.join(dataDir, "ledger");
    for (const f of fs.readdirSync(ledgerDir)) fs.rmSync(path.join(ledgerDir, f));
    const err = await openError(config());
    expect(err).toBeInstanceOf(LedgerMissingError);
    expect((err as Error).message).toContain(`${ledgerDir} holds no ledger`);
    expect((err as Error).message).toContain(`LEDGER_ACCEPT_DATA_LOSS=${(err as LedgerMissingError).acceptToken}`);
    expect(fs.readdirSync(ledgerDir)).toEqual([]); // no new ledger was started
    // A deleted ledger directory is the same.
    fs.rmSync(ledgerDir, { recursive: true });
    expect(await openError(config())).toBeInstanceOf(LedgerMissingError);
  });

  it("an emptied ledger directory beside keys and embedded analytics (no marker yet) refuses to start", async () => {
    await ledgerWithOneAccount();
    fs.rmSync(path.join(dataDir, LEDGER_MARKER));
    fs.mkdirSync(path.join(dataDir, "keys"));
    fs.mkdirSync(path.join(dataDir, "chdb", "data"), { recursive: true });
    fs.rmSync(path.join(dataDir, "ledger"), { recursive: true });
    fs.mkdirSync(path.join(dataDir, "ledger"));
    const err = await openError(config());
    expect(err).toBeInstanceOf(LedgerMissingError);
    expect((err as Error).message).toContain("analytics");
  });

  it("accepting the loss starts an empty ledger, logged at error level, and the token cannot be reused", async () => {
    await ledgerWithOneAccount();
    fs.rmSync(path.join(dataDir, "ledger"), { recursive: true });
    const err = (await openError(config())) as LedgerMissingError;
    const l = await openLedger(config({ LEDGER_ACCEPT_DATA_LOSS: err.acceptToken }), { log });
    expect(await l.client.lookupAccounts([7n])).toEqual([]);
    await l.close();
    expect(logged.map((x) => x.level)).toEqual(["error"]);
    expect(logged[0]!.fields).toMatchObject({ accepted: err.acceptToken });
    // The new ledger has a new identity: the same token accepts nothing next time.
    fs.rmSync(path.join(dataDir, "ledger"), { recursive: true });
    expect(await openError(config({ LEDGER_ACCEPT_DATA_LOSS: err.acceptToken }))).toBeInstanceOf(LedgerMissingError);
  });
});
