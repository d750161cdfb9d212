/** Helpers for the streamer suites: temp dirs, ledger fixtures written in full batches. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { AccountFlags, type Account, type Client, type Transfer } from "tigerbeetle-node";
import { AccountCode, Ledger, TransferCode } from "../../src/domain/codes.js";
import type { Sink } from "../../src/streamer/index.js";
import { bindDatabase } from "../../src/streamer/sink.js";
import { newAccount, newTransfer } from "../../src/domain/records.js";

export const CREATED = 0xffffffff;
export const BATCH = 8189;

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `masques-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function account(id: bigint, code: number, over: Partial<Account> = {}): Account {
  return newAccount({ id, ledger: Ledger.usd_micro, code, flags: AccountFlags.history, ...over });
}

export function transfer(id: bigint, over: Partial<Transfer>): Transfer {
  return newTransfer({ id, ledger: Ledger.usd_micro, code: TransferCode.deposit, ...over });
}

/** Accounts 1..n (a rail inbound source at id 1, agent wallets after it). */
export async function createFixtureAccounts(client: Client, n: number): Promise<bigint[]> {
  const accounts = [account(1n, AccountCode.rail_inbound, { flags: 0 })];
  for (let i = 2; i <= n; i++) accounts.push(account(BigInt(i), AccountCode.agent_wallet_prepaid));
  const res = await client.createAccounts(accounts);
  if (res.some((r) => r.status !== CREATED)) throw new Error(`fixture accounts: ${JSON.stringify(res.find((r) => r.status !== CREATED))}`);
  return accounts.map((a) => a.id);
}

/**
 * Write `count` single-phase transfers in full batches of 8189: rail inbound (1) -> wallet, and
 * wallet -> wallet, with varied exact amounts (some above 2^64). Ids start at `first_id`.
 */
export async function writeTransfers(client: Client, count: number, accounts: number, first_id: bigint): Promise<bigint> {
  let id = first_id;
  for (let done = 0; done < count; ) {
    const n = Math.min(BATCH, count - done);
    const batch: Transfer[] = [];
    for (let i = 0; i < n; i++, id++) {
      const k = Number(id % BigInt(accounts - 1)) + 2;
      const big = id % 97n === 0n;
      batch.push(
        transfer(id, {
          debit_account_id: 1n,
          credit_account_id: BigInt(k),
          amount: big ? (1n << 70n) + id : (id * 7919n) % 1_000_000n,
          user_data_64: id,
        }),
      );
    }
    const res = await client.createTransfers(batch);
    const bad = res.find((r) => r.status !== CREATED);
    if (bad) throw new Error(`fixture transfers: status ${bad.status}`);
    done += n;
  }
  return id;
}

/** Per-account count and exact sum of debits and credits, from the ledger. */
export async function ledgerAggregates(client: Client): Promise<Map<string, string>> {
  const out = new Map<string, { d: number; c: number; ds: bigint; cs: bigint }>();
  for (let min = 1n; ; ) {
    const page = await client.queryTransfers({
      user_data_128: 0n, user_data_64: 0n, user_data_32: 0, ledger: 0, code: 0,
      timestamp_min: min, timestamp_max: 0n, limit: BATCH, flags: 0,
    });
    for (const t of page) {
      const d = out.get(String(t.debit_account_id)) ?? { d: 0, c: 0, ds: 0n, cs: 0n };
      d.d++;
      d.ds += t.amount;
      out.set(String(t.debit_account_id), d);
      const c = out.get(String(t.credit_account_id)) ?? { d: 0, c: 0, ds: 0n, cs: 0n };
      c.c++;
      c.cs += t.amount;
      out.set(String(t.credit_account_id), c);
    }
    if (page.length < BATCH) break;
    min = page[page.length - 1]!.timestamp + 1n;
  }
  return new Map([...out].map(([k, v]) => [k, `${v.d}/${v.ds}/${v.c}/${v.cs}`]));
}

/** The same aggregates, from ClickHouse's deduplicated transfers. */
export async function clickhouseAggregates(sink: Sink): Promise<Map<string, string>> {
  const rows = await sink.query(
    bindDatabase(
      `SELECT account_id, sum(dn) AS d, sum(da) AS ds, sum(cn) AS c, sum(ca) AS cs FROM (
         SELECT debit_account_id AS account_id, 1 AS dn, toUInt256(amount) AS da, 0 AS cn, toUInt256(0) AS ca FROM {{db}}.transfers FINAL
         UNION ALL
         SELECT credit_account_id, 0, toUInt256(0), 1, toUInt256(amount) FROM {{db}}.transfers FINAL
       ) GROUP BY account_id`,
      sink.database,
    ),
  );
  return new Map(rows.map((r) => [String(r.account_id), `${String(r.d)}/${String(r.ds)}/${String(r.c)}/${String(r.cs)}`]));
}

export async function scalar(sink: Sink, sql: string): Promise<string> {
  const rows = await sink.query(bindDatabase(sql, sink.database));
  const first = rows[0];
  if (!first) throw new Error(`no rows: ${sql}`);
  return String(Object.values(first)[0]);
}
