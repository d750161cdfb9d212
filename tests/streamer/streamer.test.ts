import { spawnSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TransferFlags } from "tigerbeetle-node";
import { authorEarningsId, railAccount } from "../../src/domain/accounts.js";
import { Rail, TransferCode } from "../../src/domain/codes.js";
import { deterministicId } from "../../src/domain/ids.js";
import { reconstructSession } from "../../src/domain/sessions.js";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import { ChdbSink, migrate, readCursors, reconcile, Streamer } from "../../src/streamer/index.js";
import type { StreamerOptions } from "../../src/streamer/streamer.js";
import { runSession, createSessionAccounts, sessionTransfers, type SessionScript } from "./sessions-fixture.js";
import { clickhouseAggregates, CREATED, createFixtureAccounts, ledgerAggregates, scalar, tempDir, transfer, writeTransfers } from "./support.js";

const REPO = path.resolve(import.meta.dirname, "../..");
const N = 100_000;

describe("CDC streamer: embedded ledger -> embedded chDB", () => {
  const tmp = tempDir("streamer");
  // One clock for the ledger and the streamer; tests move it forward to expire holds.
  let offset_ns = 0n;
  const clock = () => BigInt(Date.now()) * 1_000_000n + offset_ns;
  let client: EmbeddedClient;
  let sink: ChdbSink;
  let nextId = 1_000_000n;

  const open = async () => {
    sink = await ChdbSink.open({ path: path.join(tmp.dir, "chdb"), database: "masques" });
    await migrate(sink);
  };
  const streamer = (over: { resume_from?: bigint; rail_facts?: StreamerOptions["rail_facts"] } = {}) =>
    Streamer.create({ client, sink, now_ns: clock, expiry_check_ms: 0, ...over });

  beforeAll(async () => {
    client = createEmbeddedClient({ dataDir: path.join(tmp.dir, "ledger"), clock });
    await open();
  });
  afterAll(async () => {
    await sink?.close();
    await client?.close();
    tmp.cleanup();
  });

  it("copies 100,000 transfers with identical counts and exact sums per account", async () => {
    await createFixtureAccounts(client, 64);
    nextId = await writeTransfers(client, N, 64, nextId);
    const s = await streamer();
    const r = await s.syncOnce();
    expect(r).toMatchObject({ accounts: 64, transfers: N });
    expect(await scalar(sink, "SELECT count() FROM {{db}}.transfers FINAL")).toBe(String(N));
    expect(await clickhouseAggregates(sink)).toEqual(await ledgerAggregates(client));
    const lag = s.lag();
    expect(lag).toMatchObject({ caught_up: true, events_behind: 0, time_behind_ms: 0 });
    const [last] = await client.queryTransfers({ user_data_128: 0n, user_data_64: 0n, user_data_32: 0, ledger: 0, code: 0, timestamp_min: 0n, timestamp_max: 0n, limit: 1, flags: 1 /* reversed */ });
    expect(lag.cursor_ts).toBe(last!.timestamp);
    expect((await readCursors(sink)).transfers).toBe(last!.timestamp);
    const report = await reconcile({ client, sink });
    expect(report.drift).toEqual([]);
    expect(report).toMatchObject({ ok: true, ledger_transfers: N, clickhouse_transfers: N, accounts: 64 });
  });

  it("re-delivering every event (replay from 0) changes nothing visible", async () => {
    const before = await clickhouseAggregates(sink);
    const cursor = await readCursors(sink);
    const replay = await streamer({ resume_from: 0n });
    const r = await replay.syncOnce();
    expect(r.transfers).toBe(N);
    expect(await scalar(sink, "SELECT count() FROM {{db}}.transfers FINAL")).toBe(String(N));
    expect(await scalar(sink, "SELECT count() FROM {{db}}.accounts FINAL")).toBe("64");
    expect(await clickhouseAggregates(sink)).toEqual(before);
    expect(await readCursors(sink)).toEqual(cursor);
    expect((await reconcile({ client, sink })).ok).toBe(true);
  });

  it("the cursor survives a restart: the next run copies only what is new", async () => {
    const cursor = await readCursors(sink);
    await sink.close();
    await open();
    expect(await readCursors(sink)).toEqual(cursor);
    nextId = await writeTransfers(client, 5_000, 64, nextId);
    const r = await (await streamer()).syncOnce();
    expect(r.transfers).toBe(5_000);
    expect(await scalar(sink, "SELECT count() FROM {{db}}.transfers FINAL")).toBe(String(N + 5_000));
    expect(await clickhouseAggregates(sink)).toEqual(await ledgerAggregates(client));
  });

  const scripts: SessionScript[] = [
    {
      name: "live-doff", agent: "agent-a", author: "author-x", masque_index: 7, mode: "live", hold_micro: 2_500_000n, timeout_s: 3600,
      usage: [
        { input_tokens: 12_000n, output_tokens: 3_000n, tool_calls: 4n },
        { input_tokens: 800n, output_tokens: 0n, tool_calls: 1n },
      ],
      end: "doff",
    },
    {
      name: "soft-overrun", agent: "agent-a", author: "author-y", masque_index: 8, mode: "soft", hold_micro: 100_000n, timeout_s: 3600,
      usage: [{ input_tokens: 50_000n, output_tokens: 40_000n, tool_calls: 9n }], end: "doff",
    },
    { name: "cancelled", agent: "agent-b", author: "author-x", masque_index: 7, mode: "live", hold_micro: 1_000_000n, timeout_s: 3600, usage: [], end: "cancel" },
    { name: "open", agent: "agent-b", author: "author-x", masque_index: 9, mode: "live", hold_micro: 1_000_000n, timeout_s: 3600, usage: [{ input_tokens: 5n, output_tokens: 5n, tool_calls: 0n }], end: "none" },
  ];

  it("sessions show up with the ledger's hold, price, split, refund and usage", async () => {
    await createSessionAccounts(client, "agent-a", "author-x");
    await createSessionAccounts(client, "agent-b", "author-y");
    const sids = new Map<string, bigint>();
    for (const s of scripts) sids.set(s.name, await runSession(client, s));
    await (await streamer()).syncOnce();
    for (const s of scripts) {
      const sid = sids.get(s.name)!;
      const view = reconstructSession(sid, await sessionTransfers(client, sid), clock())!;
      const [row] = await sink.query(`SELECT * FROM masques.sessions FINAL WHERE session_id = toUInt128('${sid}')`);
      expect(row, s.name).toBeDefined();
      const status = { doffed: "closed", reaped: "closed", cancelled: "cancelled", expired: "expired", open: "open" }[view.status];
      const closed = view.status === "doffed";
      expect(row, s.name).toMatchObject({
        status,
        masque_index: String(view.masque_index),
        price_book_version: view.price_version,
        billing_mode: view.mode,
        agent_account_id: String(view.agent_wallet_id),
        hold_micro: String(view.hold_micro),
        price_micro: String(view.posted_micro),
        author_micro: String(view.author_micro),
        platform_micro: String(view.platform_micro),
        debt_micro: String(view.debt_micro),
        refund_micro: String(closed ? view.hold_micro - view.posted_micro : status === "open" ? 0n : view.hold_micro),
        usage_input_tokens: String(view.usage.input_tokens),
        usage_output_tokens: String(view.usage.output_tokens),
        usage_tool_calls: String(view.usage.tool_calls),
        opened_ns: String(view.don_ns),
        closed_ns: String(view.end_ns ?? 0n),
        last_activity_ns: String(view.last_activity_ns),
      });
      if (closed) expect(row, s.name).toMatchObject({ platform_fee_bps: view.fee_bps, billed_duration_ms: String(view.billed_duration_ms), close_reason: "doff" });
    }
    // the soft-mode session really overran, so the debt path is exercised
    const [soft] = await sink.query(`SELECT debt_micro FROM masques.sessions FINAL WHERE session_id = toUInt128('${sids.get("soft-overrun")}')`);
    expect(BigInt(String(soft!.debt_micro))).toBeGreaterThan(0n);
    // usage rows (heartbeats included) and reputation views are fed from the same ledger events
    expect(await scalar(sink, `SELECT countIf(kind = 'heartbeat') FROM {{db}}.usage FINAL`)).toBe(String(scripts.length));
    const rep = await sink.query(`SELECT masque_index, sessions, completed, cancelled, open FROM masques.reputation_masques WHERE masque_index = 7`);
    expect(rep).toEqual([{ masque_index: "7", sessions: "2", completed: "1", cancelled: "1", open: "0" }]);
    expect(await scalar(sink, `SELECT count() FROM {{db}}.v_identities WHERE kind = 'masque'`)).toBe("2");
    const report = await reconcile({ client, sink });
    expect(report.drift).toEqual([]);
    expect(report.sessions).toBe(scripts.length);
  });

  it("a hold whose timeout passed without post or void is recorded as expired on its session", async () => {
    const sid = await runSession(client, {
      name: "abandoned", agent: "agent-b", author: "author-x", masque_index: 9, mode: "live", hold_micro: 700_000n, timeout_s: 60, usage: [], end: "none",
    });
    const s = await streamer();
    await s.syncOnce();
    const q = `SELECT status, refund_micro, closed_ns, close_reason FROM masques.sessions FINAL WHERE session_id = toUInt128('${sid}')`;
    expect((await sink.query(q))[0]).toMatchObject({ status: "open" });
    offset_ns += 120n * 1_000_000_000n; // two minutes later: the ledger voids the hold on its next write
    await writeTransfers(client, 1, 64, nextId++);
    const r = await s.syncOnce();
    expect(r.expired).toBe(1);
    const view = reconstructSession(sid, await sessionTransfers(client, sid), clock())!;
    expect(view.status).toBe("expired");
    expect((await sink.query(q))[0]).toEqual({ status: "expired", refund_micro: "700000", closed_ns: String(view.deadline_ns), close_reason: "expired" });
    const hold = (await sessionTransfers(client, sid)).find((t) => t.timeout > 0)!;
    expect(await scalar(sink, `SELECT state FROM {{db}}.holds FINAL WHERE id = toUInt128('${hold.id}')`)).toBe("expired");
    // balances (the released pending amount) match the ledger again
    const report = await reconcile({ client, sink });
    expect(report.drift).toEqual([]);
    expect((await s.syncOnce()).expired).toBe(0); // recorded once
  });

  it("payouts show up as settlements: paid, failed and expired", async () => {
    const outbound = railAccount("rail_outbound", "base");
    await client.createAccounts([outbound]);
    const earnings = authorEarningsId("author-x");
    const payout = (n: number, amount: bigint, timeout: number) =>
      transfer(deterministicId("test-payout", n), {
        debit_account_id: earnings, credit_account_id: outbound.id, amount, code: TransferCode.payout,
        flags: TransferFlags.pending, timeout, user_data_128: BigInt(9000 + n), user_data_32: Rail.base,
      });
    const p1 = payout(1, 10_000n, 3600);
    const p2 = payout(2, 20_000n, 3600);
    const p3 = payout(3, 30_000n, 30);
    expect((await client.createTransfers([p1, p2, p3])).map((r) => r.status)).toEqual([CREATED, CREATED, CREATED]);
    const finish = await client.createTransfers([
      transfer(deterministicId("test-payout-post", 1), { pending_id: p1.id, amount: 10_000n, flags: TransferFlags.post_pending_transfer, ledger: 0, code: 0 }),
      transfer(deterministicId("test-payout-void", 2), { pending_id: p2.id, flags: TransferFlags.void_pending_transfer, ledger: 0, code: 0 }),
    ]);
    expect(finish.map((r) => r.status)).toEqual([CREATED, CREATED]);
    // The rail's facts, as the control plane holds them (ADR 0084); p3 never had a transaction.
    const fee_wei = 2n ** 70n + 12_345n; // beyond UInt64: network fees are UInt128
    const facts = [
      { payout_id: 9001n, tx_ref: "0x" + "ab".repeat(32), block_number: 18_000_123n, confirmations: 3, network_fee_native: fee_wei },
      { payout_id: 9002n, tx_ref: "it's\\odd", block_number: 0n, confirmations: 0, network_fee_native: 0n },
    ];
    const asked: bigint[] = [];
    const s = await streamer({ rail_facts: async (ids) => (asked.push(...ids), facts.filter((f) => ids.includes(f.payout_id))) });
    await s.syncOnce();
    expect(new Set(asked)).toEqual(new Set([9001n, 9002n, 9003n]));
    offset_ns += 60n * 1_000_000_000n; // p3 passes its deadline
    await writeTransfers(client, 1, 64, nextId++);
    expect((await s.syncOnce()).expired).toBe(1);
    const rows = await sink.query(
      "SELECT payout_id, rail, amount_micro, status, rail_tx, rail_block, rail_confirmations, network_fee_native FROM masques.settlements FINAL ORDER BY payout_id",
    );
    expect(rows).toEqual([
      { payout_id: "9001", rail: "base", amount_micro: "10000", status: "paid", rail_tx: facts[0]!.tx_ref, rail_block: "18000123", rail_confirmations: 3, network_fee_native: String(fee_wei) },
      { payout_id: "9002", rail: "base", amount_micro: "20000", status: "failed", rail_tx: facts[1]!.tx_ref, rail_block: "0", rail_confirmations: 0, network_fee_native: "0" },
      { payout_id: "9003", rail: "base", amount_micro: "30000", status: "expired", rail_tx: "", rail_block: "0", rail_confirmations: 0, network_fee_native: "0" },
    ]);
    expect((await reconcile({ client, sink })).drift).toEqual([]);
  });

  it("reconcile finds drift (a lost row, a broken split) and the CLI exits non-zero", async () => {
    const [victim] = await sink.query("SELECT id, credit_account_id FROM masques.transfers FINAL WHERE code = 1 ORDER BY timestamp LIMIT 1 OFFSET 5000");
    await sink.exec(`DELETE FROM masques.transfers WHERE id = toUInt128('${String(victim!.id)}')`);
    const r1 = await reconcile({ client, sink });
    expect(r1.ok).toBe(false);
    expect(r1.clickhouse_transfers).toBe(r1.ledger_transfers - 1);
    expect(r1.drift.map((d) => d.check)).toEqual(expect.arrayContaining(["transfers", "transfers per account", "balances"]));
    expect(r1.drift.map((d) => d.subject)).toContain(`account ${BigInt(String(victim!.credit_account_id)).toString(16)}`);

    // a session row whose split no longer adds up to the hold
    await sink.exec(`INSERT INTO masques.sessions SELECT * REPLACE (toUInt128(author_micro + 1) AS author_micro, version + 1 AS version)
                     FROM masques.sessions FINAL WHERE status = 'closed' LIMIT 1`);
    const r2 = await reconcile({ client, sink });
    expect(r2.drift.map((d) => d.check)).toContain("session conservation");

    // the command line, on the same data directory (the ledger and chDB are single-process)
    await sink.close();
    await client.close();
    // (catching up first, the default, cannot hide drift in what was already copied)
    for (const args of [["reconcile"]]) {
      const run = spawnSync(process.execPath, ["bin/masques-ledger.js", ...args], {
        cwd: REPO,
        env: { ...process.env, MASQUES_DATA_DIR: tmp.dir, MASQUES_LOG_LEVEL: "silent" },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(run.status, run.stderr).toBe(1);
      expect(run.stdout).toMatch(/^reconcile: DRIFT/m);
      expect(run.stdout).toMatch(/\[DRIFT\] transfers copied: \d+ in the ledger up to the cursor, \d+ in ClickHouse/);
      expect(run.stdout).toMatch(/\[DRIFT\] sessions \(author \+ platform \+ refund = hold \+ debt\)/);
    }
    client = createEmbeddedClient({ dataDir: path.join(tmp.dir, "ledger"), clock });
    await open();
  });
});
