/**
 * Recovery never drops acknowledged data without a word (issue 11): a torn tail that only a crash
 * during a write can leave (an incomplete last record, the file ending on a page boundary) is cut
 * and logged; anything else that could be acknowledged data refuses to start, names the file and
 * offset, and says how to accept the loss (LEDGER_ACCEPT_DATA_LOSS=<token>, logged at error level).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AccountFlags, type Account, type Transfer } from "tigerbeetle-node";
import { LedgerCorruptionError, createEmbeddedClient, type EmbeddedClient } from "../../../src/ledger/embedded/index.js";
import type { EngineLog } from "../../../src/ledger/embedded/engine.js";
import { newAccount, newTransfer } from "../../../src/domain/records.js";

const USD = 1_000_000n;
const WALLET = 1n;
const SOURCE = 2n;
let dir: string;
let logged: { level: "warn" | "error"; msg: string; fields: Record<string, unknown> }[];
const log: EngineLog = {
  warn: (fields, msg) => logged.push({ level: "warn", msg, fields }),
  error: (fields, msg) => logged.push({ level: "error", msg, fields }),
};
const open = (extra: { acceptDataLoss?: string; snapshotMinLogBytes?: number } = {}): EmbeddedClient =>
  createEmbeddedClient({ dataDir: dir, log, snapshotMinLogBytes: 1 << 30, ...extra });

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "recovery-test-"));
  logged = [];
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function account(id: bigint): Account {
  return newAccount({ id, ledger: 1, code: 10, flags: AccountFlags.history });
}
function transfer(id: bigint, amount: bigint): Transfer {
  return newTransfer({ id, debit_account_id: SOURCE, credit_account_id: WALLET, amount, ledger: 1, code: 20 });
}

/** The set-up: 80 acknowledged deposits of 1 USD, one request (one log record) each. */
async function deposit80(c: EmbeddedClient, firstId = 100n): Promise<void> {
  for (let i = 0n; i < 80n; i++) await c.createTransfers([transfer(firstId + i, USD)]);
}

async function walletUsd(c: EmbeddedClient): Promise<bigint> {
  const [w] = await c.lookupAccounts([WALLET]);
  return w!.credits_posted / USD;
}

function segments(): string[] {
  return fs.readdirSync(dir).filter((f) => /^log-\d{20}\.wal$/.test(f)).sort().map((f) => path.join(dir, f));
}

function refusal(): LedgerCorruptionError {
  try {
    open().destroy();
  } catch (err) {
    expect(err).toBeInstanceOf(LedgerCorruptionError);
    return err as LedgerCorruptionError;
  }
  throw new Error("the engine opened a damaged data directory");
}

/** Refuses with the file and offset named and the way out spelled; accepting that token opens, loudly. */
async function expectRefusalThenAccept(file: string, offset: number, usdAfterAccept: bigint): Promise<void> {
  const err = refusal();
  expect(err.file).toBe(file);
  expect(err.offset).toBe(offset);
  expect(err.message).toContain(file);
  if (offset >= 0) expect(err.message).toContain(`byte offset ${offset}`);
  expect(err.message).toContain(`LEDGER_ACCEPT_DATA_LOSS=${err.acceptToken}`);
  expect(logged).toEqual([]);
  // Another token (e.g. a stale one from an earlier incident) accepts nothing.
  expect(() => open({ acceptDataLoss: "log-00000000000000000001.wal@12345" })).toThrow(LedgerCorruptionError);

  const c = open({ acceptDataLoss: err.acceptToken! });
  expect(c.stats().accepted_data_loss).toBe(err.acceptToken);
  expect(await walletUsd(c)).toBe(usdAfterAccept);
  expect(logged.filter((l) => l.level === "error")).toEqual([
    expect.objectContaining({ msg: expect.stringMatching(/LEDGER_ACCEPT_DATA_LOSS accepted/), fields: expect.objectContaining({ file, accepted: err.acceptToken }) }),
  ]);
  // The ledger continues, and the next open is clean without any flag.
  await c.createTransfers([transfer(999n, USD)]);
  await c.close();
  const again = open();
  expect(await walletUsd(again)).toBe(usdAfterAccept + 1n);
  expect(again.stats().accepted_data_loss).toBeNull();
  await again.close();
}

async function ledgerWith80Usd(): Promise<void> {
  const c = open();
  await c.createAccounts([account(WALLET), account(SOURCE)]);
  await deposit80(c);
  expect(await walletUsd(c)).toBe(80n);
  await c.close();
}

describe("damage that may be acknowledged data refuses to start", () => {
  it("the newest segment cut by 7 bytes", async () => {
    await ledgerWith80Usd();
    const [seg] = segments();
    const size = fs.statSync(seg!).size;
    fs.truncateSync(seg!, size - 7);
    await expectRefusalThenAccept(seg!, size - 168, 79n); // the last record (40 + 128 bytes) starts there
  });

  it("the newest segment cut to half", async () => {
    await ledgerWith80Usd();
    const [seg] = segments();
    const size = fs.statSync(seg!).size;
    const half = Math.floor(size / 2);
    expect(half % 4096).not.toBe(0);
    fs.truncateSync(seg!, half);
    // Segment header 32 bytes, accounts record 40 + 256, then 168 bytes per deposit.
    const kept = Math.floor((half - 32 - 296) / 168);
    await expectRefusalThenAccept(seg!, 32 + 296 + kept * 168, BigInt(kept));
  });

  it("the newest segment emptied", async () => {
    await ledgerWith80Usd();
    const [seg] = segments();
    fs.truncateSync(seg!, 0);
    const err = refusal();
    expect(err.message).toMatch(/segment is empty/);
    // Accepting it drops everything, accounts included: the wallet is gone.
    const c = open({ acceptDataLoss: err.acceptToken! });
    expect(await c.lookupAccounts([WALLET])).toEqual([]);
    expect(logged.map((l) => l.level)).toEqual(["error"]);
    await c.close();
    expect(fs.readdirSync(dir).some((f) => f.endsWith(".damaged"))).toBe(true);
  });

  it("one byte flipped in the last record (a complete record with a bad checksum)", async () => {
    await ledgerWith80Usd();
    const [seg] = segments();
    const bytes = fs.readFileSync(seg!);
    bytes[bytes.length - 20] ^= 0x01;
    fs.writeFileSync(seg!, bytes);
    const err = refusal();
    expect(err.message).toMatch(/complete record with a body checksum mismatch/);
    await expectRefusalThenAccept(seg!, bytes.length - 168, 79n);
  });

  it("the newest segment deleted after a snapshot", async () => {
    const c = open();
    await c.createAccounts([account(WALLET), account(SOURCE)]);
    await deposit80(c);
    await c.snapshot();
    await deposit80(c, 1000n);
    expect(await walletUsd(c)).toBe(160n);
    await c.close();
    const segs = segments();
    expect(segs.length).toBe(1);
    fs.rmSync(segs[0]!);
    const err = refusal();
    expect(err.message).toMatch(/missing: the newest snapshot ends at commit \d+ and no log segment follows it/);
    await expectRefusalThenAccept(segs[0]!, -1, 80n);
  });
});

describe("a torn tail a crash can leave is cut, loudly", () => {
  it("an incomplete last record ending on a page boundary is cut and logged with file and offset", async () => {
    const c = open();
    await c.createAccounts([account(WALLET), account(SOURCE)]);
    await deposit80(c);
    const [seg] = segments();
    const lastStart = fs.statSync(seg!).size;
    // One batch large enough to cross a page boundary, as a crash would cut it.
    await c.createTransfers(Array.from({ length: 100 }, (_, i) => transfer(5000n + BigInt(i), USD)));
    await c.close();
    const cut = (Math.floor(lastStart / 4096) + 1) * 4096;
    expect(cut).toBeLessThan(fs.statSync(seg!).size);
    fs.truncateSync(seg!, cut);

    const r = open();
    expect(r.stats().torn_tail_truncated).toBe(true);
    expect(await walletUsd(r)).toBe(80n); // the cut batch was never acknowledged
    expect(logged).toEqual([
      { level: "warn", msg: expect.stringMatching(/cut a torn tail/), fields: expect.objectContaining({ file: seg, offset: lastStart, bytes: cut - lastStart }) },
    ]);
    expect(fs.statSync(seg!).size).toBe(lastStart);
    await r.close();
  });

  it("the same cut off a page boundary is refused", async () => {
    const c = open();
    await c.createAccounts([account(WALLET), account(SOURCE)]);
    await deposit80(c);
    const [seg] = segments();
    const lastStart = fs.statSync(seg!).size;
    await c.createTransfers(Array.from({ length: 100 }, (_, i) => transfer(5000n + BigInt(i), USD)));
    await c.close();
    fs.truncateSync(seg!, (Math.floor(lastStart / 4096) + 1) * 4096 + 1);
    const err = refusal();
    expect(err.offset).toBe(lastStart);
    expect(err.message).toMatch(/not on a 4096-byte page boundary/);
  });
});
