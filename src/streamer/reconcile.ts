/**
 * Reconciliation: the ledger (of record) against its ClickHouse copy.
 *
 * Checks, each reported with what was compared:
 * 1. transfers: count, id digest, and per account the number and sum of debits and credits of
 *    every transfer up to the streamer's cursor, ledger vs ClickHouse;
 * 2. balances: every account's four balances, ledger (lookupAccounts) vs the ClickHouse mirror,
 *    and posted balances re-derived from ClickHouse's transfers (when the copy is caught up);
 * 3. conservation per ledger: total debits = total credits (posted and pending), on both sides;
 * 4. sessions: for every session, author + platform + refund = hold + debt (soft-mode overrun),
 *    and one session row per hold in the ledger;
 * 5. usage after settlement: no usage (or heartbeat) recorded after its session was settled or
 *    cancelled — usage the price never included (issue 11, ADR 0036);
 * 6. refunds: every refund nets to zero (ADR 0112).
 * Any difference is drift: `ok` is false and the CLI exits non-zero.
 *
 * It may run against a ledger that keeps moving (inside the daemon, with the streamer paused):
 * everything up to the cursor is history and cannot change, and the checks that read current
 * state (balances, ledger-side conservation across several pages) are reported as skipped, not
 * as drift, when a transfer landed while they were read.
 */
import { exchangeAccountId, exchangePosition } from "../domain/settlement/conversion.js";
import { QueryFilterFlags, TransferFlags, type Account, type Client, type QueryFilter } from "tigerbeetle-node";
import { Ledger, TransferCode } from "../domain/codes.js";
import { bindDatabase, type ResultRow, type Sink } from "./sink.js";
import { readCursors } from "./streamer.js";

const U128 = (1n << 128n) - 1n;
const LIMIT = 8189;

export interface Drift {
  check: string;
  subject: string;
  ledger: string;
  clickhouse: string;
}

export interface ReconcileCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ReconcileReport {
  ok: boolean;
  cursor_ts: bigint;
  /** Ledger transfers after the cursor (not yet copied); balances are compared only at 0. */
  ledger_events_after_cursor: number;
  ledger_transfers: number;
  clickhouse_transfers: number;
  /** Physical rows in ClickHouse's transfers table (> logical when re-deliveries await merging). */
  clickhouse_transfer_rows: number;
  accounts: number;
  sessions: number;
  checks: ReconcileCheck[];
  drift: Drift[];
}

function qf(over: Partial<QueryFilter>): QueryFilter {
  return {
    user_data_128: 0n, user_data_64: 0n, user_data_32: 0, ledger: 0, code: 0,
    timestamp_min: 0n, timestamp_max: 0n, limit: LIMIT, flags: 0, ...over,
  };
}

interface Agg {
  debits: number;
  credits: number;
  debit_sum: bigint;
  credit_sum: bigint;
  /** Posted-effective sums (single-phase + post): what debits_posted / credits_posted must equal. */
  debits_posted: bigint;
  credits_posted: bigint;
}
const newAgg = (): Agg => ({ debits: 0, credits: 0, debit_sum: 0n, credit_sum: 0n, debits_posted: 0n, credits_posted: 0n });

const big = (v: ResultRow[string]): bigint => BigInt(String(v ?? 0));
const MAX_DRIFT_ITEMS = 200;

export async function reconcile(opts: { client: Client; sink: Sink }): Promise<ReconcileReport> {
  const { client, sink } = opts;
  const db = sink.database;
  const drift: Drift[] = [];
  const checks: ReconcileCheck[] = [];
  const addDrift = (d: Drift) => {
    if (drift.length < MAX_DRIFT_ITEMS) drift.push(d);
  };

  const { transfers: cursor } = await readCursors(sink);
  const headBefore = await latestTransferTs(client);

  // ---- ledger side: every transfer up to the cursor -------------------------------------------
  const ledgerAgg = new Map<bigint, Agg>();
  let ledgerCount = 0;
  let ledgerDigest = 0n;
  let ledgerHolds = 0;
  if (cursor > 0n) {
    let min = 1n;
    for (;;) {
      const page = await client.queryTransfers(qf({ timestamp_min: min, timestamp_max: cursor }));
      for (const t of page) {
        ledgerCount++;
        ledgerDigest = (ledgerDigest + t.id) & U128;
        const posted = (t.flags & (TransferFlags.pending | TransferFlags.void_pending_transfer)) === 0;
        const d = ledgerAgg.get(t.debit_account_id) ?? newAgg();
        d.debits++;
        d.debit_sum += t.amount;
        if (posted) d.debits_posted += t.amount;
        ledgerAgg.set(t.debit_account_id, d);
        const c = ledgerAgg.get(t.credit_account_id) ?? newAgg();
        c.credits++;
        c.credit_sum += t.amount;
        if (posted) c.credits_posted += t.amount;
        ledgerAgg.set(t.credit_account_id, c);
        if (t.code === TransferCode.session_hold && t.flags & TransferFlags.pending && t.user_data_128 !== 0n) ledgerHolds++;
      }
      if (page.length < LIMIT) break;
      min = page[page.length - 1]!.timestamp + 1n;
    }
  }
  const after = await client.queryTransfers(qf({ timestamp_min: cursor + 1n }));
  const eventsAfter = after.length;

  // ---- ClickHouse side -------------------------------------------------------------------------
  const [tot] = await sink.query(
    bindDatabase(
      `SELECT count() AS n, sum(id) AS digest,
              (SELECT count() FROM {{db}}.transfers WHERE timestamp <= ${cursor}) AS physical
       FROM {{db}}.transfers FINAL WHERE timestamp <= ${cursor}`,
      db,
    ),
  );
  const chCount = Number(tot?.n ?? 0);
  const chDigest = big(tot?.digest ?? 0) & U128;
  const chRows = Number(tot?.physical ?? 0);
  const transfersOk = chCount === ledgerCount && chDigest === ledgerDigest;
  if (chCount !== ledgerCount) {
    addDrift({ check: "transfers", subject: "count up to cursor", ledger: String(ledgerCount), clickhouse: String(chCount) });
  }
  if (chDigest !== ledgerDigest) {
    addDrift({ check: "transfers", subject: "id digest (sum of ids mod 2^128)", ledger: ledgerDigest.toString(16), clickhouse: chDigest.toString(16) });
  }
  checks.push({
    name: "transfers copied",
    ok: transfersOk,
    detail: `${ledgerCount} in the ledger up to the cursor, ${chCount} in ClickHouse (${chRows} physical rows)`,
  });

  const chAggRows = await sink.query(
    bindDatabase(
      `SELECT account_id, sum(dn) AS debits, sum(cn) AS credits, sum(da) AS debit_sum, sum(ca) AS credit_sum,
              sum(dp) AS debits_posted, sum(cp) AS credits_posted
       FROM (
         SELECT debit_account_id AS account_id, 1 AS dn, 0 AS cn, toUInt256(amount) AS da, toUInt256(0) AS ca,
                if(phase IN ('single', 'post'), toUInt256(amount), toUInt256(0)) AS dp, toUInt256(0) AS cp
         FROM {{db}}.transfers FINAL WHERE timestamp <= ${cursor}
         UNION ALL
         SELECT credit_account_id, 0, 1, toUInt256(0), toUInt256(amount),
                toUInt256(0), if(phase IN ('single', 'post'), toUInt256(amount), toUInt256(0))
         FROM {{db}}.transfers FINAL WHERE timestamp <= ${cursor}
       ) GROUP BY account_id`,
      db,
    ),
  );
  const chAgg = new Map<bigint, Agg>();
  for (const r of chAggRows) {
    chAgg.set(big(r.account_id), {
      debits: Number(r.debits), credits: Number(r.credits),
      debit_sum: big(r.debit_sum), credit_sum: big(r.credit_sum),
      debits_posted: big(r.debits_posted), credits_posted: big(r.credits_posted),
    });
  }
  let perAccountBad = 0;
  for (const id of new Set([...ledgerAgg.keys(), ...chAgg.keys()])) {
    const l = ledgerAgg.get(id) ?? newAgg();
    const c = chAgg.get(id) ?? newAgg();
    if (l.debits !== c.debits || l.credits !== c.credits || l.debit_sum !== c.debit_sum || l.credit_sum !== c.credit_sum) {
      perAccountBad++;
      addDrift({
        check: "transfers per account",
        subject: `account ${id.toString(16)}`,
        ledger: `${l.debits} debits / ${l.debit_sum}, ${l.credits} credits / ${l.credit_sum}`,
        clickhouse: `${c.debits} debits / ${c.debit_sum}, ${c.credits} credits / ${c.credit_sum}`,
      });
    }
  }
  checks.push({
    name: "transfer counts and sums per account",
    ok: perAccountBad === 0,
    detail: `${ledgerAgg.size} accounts with transfers; ${perAccountBad} differ`,
  });

  // ---- balances --------------------------------------------------------------------------------
  const ledgerAccounts: Account[] = [];
  let accountPages = 0;
  for (let min = 1n; ; ) {
    const page = await client.queryAccounts(qf({ timestamp_min: min }));
    accountPages++;
    for (const a of page) ledgerAccounts.push(a);
    if (page.length < LIMIT) break;
    min = page[page.length - 1]!.timestamp + 1n;
  }
  // Did a transfer land while the accounts were read? Then current balances are not comparable.
  const moved = (await latestTransferTs(client)) !== headBefore;
  const mirrorRows = await sink.query(
    bindDatabase(
      `SELECT id, debits_pending, debits_posted, credits_pending, credits_posted, ledger FROM {{db}}.accounts FINAL`,
      db,
    ),
  );
  const mirror = new Map<bigint, ResultRow>(mirrorRows.map((r) => [big(r.id), r]));
  if (eventsAfter === 0 && !moved) {
    let bad = 0;
    for (const a of ledgerAccounts) {
      const m = mirror.get(a.id);
      const derived = chAgg.get(a.id) ?? newAgg();
      const fields = ["debits_pending", "debits_posted", "credits_pending", "credits_posted"] as const;
      const mismatch = !m || fields.some((f) => big(m[f]) !== a[f]);
      const derivedMismatch = derived.debits_posted !== a.debits_posted || derived.credits_posted !== a.credits_posted;
      if (mismatch || derivedMismatch) {
        bad++;
        addDrift({
          check: "balances",
          subject: `account ${a.id.toString(16)}`,
          ledger: fields.map((f) => `${f}=${a[f]}`).join(" "),
          clickhouse: m
            ? fields.map((f) => `${f}=${String(m[f])}`).join(" ") +
              ` (from transfers: debits_posted=${derived.debits_posted} credits_posted=${derived.credits_posted})`
            : "missing from the accounts mirror",
        });
      }
    }
    checks.push({
      name: "balances",
      ok: bad === 0,
      detail: `${ledgerAccounts.length} accounts compared (mirror and re-derived posted balances); ${bad} differ`,
    });
  } else if (eventsAfter === 0) {
    checks.push({ name: "balances", ok: true, detail: "skipped: the ledger moved while balances were read (run again)" });
  } else {
    checks.push({
      name: "balances",
      ok: true,
      detail: `skipped: the ledger has ${eventsAfter}${eventsAfter === LIMIT ? "+" : ""} transfers after the cursor (run the streamer to catch up)`,
    });
  }

  // ---- conservation per ledger -----------------------------------------------------------------
  const byLedger = new Map<number, { dp: bigint; cp: bigint; dpe: bigint; cpe: bigint }>();
  for (const a of ledgerAccounts) {
    const s = byLedger.get(a.ledger) ?? { dp: 0n, cp: 0n, dpe: 0n, cpe: 0n };
    s.dp += a.debits_posted;
    s.cp += a.credits_posted;
    s.dpe += a.debits_pending;
    s.cpe += a.credits_pending;
    byLedger.set(a.ledger, s);
  }
  let consBad = 0;
  // One page is one ledger request, an atomic snapshot; several pages read while the ledger moved
  // are not, and a difference there says nothing.
  const ledgerSnapshot = accountPages === 1 || !moved;
  for (const [ledger, s] of byLedger) {
    if (ledgerSnapshot && (s.dp !== s.cp || s.dpe !== s.cpe)) {
      consBad++;
      addDrift({ check: "conservation", subject: `ledger ${ledger} (ledger side)`, ledger: `debits ${s.dp}/${s.dpe}`, clickhouse: `credits ${s.cp}/${s.cpe}` });
    }
  }
  const chCons = await sink.query(
    bindDatabase(
      `SELECT ledger, sum(toUInt256(debits_posted)) AS dp, sum(toUInt256(credits_posted)) AS cp,
              sum(toUInt256(debits_pending)) AS dpe, sum(toUInt256(credits_pending)) AS cpe
       FROM {{db}}.accounts FINAL GROUP BY ledger`,
      db,
    ),
  );
  for (const r of chCons) {
    if (big(r.dp) !== big(r.cp) || big(r.dpe) !== big(r.cpe)) {
      consBad++;
      addDrift({
        check: "conservation",
        subject: `ledger ${String(r.ledger)} (ClickHouse mirror)`,
        ledger: `debits posted ${String(r.dp)} pending ${String(r.dpe)}`,
        clickhouse: `credits posted ${String(r.cp)} pending ${String(r.cpe)}`,
      });
    }
  }
  checks.push({
    name: "conservation (debits = credits per ledger)",
    ok: consBad === 0,
    detail: `${byLedger.size} ledgers in the ledger, ${chCons.length} in ClickHouse; ${consBad} unbalanced`,
  });

  // ---- sessions --------------------------------------------------------------------------------
  const [sess] = await sink.query(
    bindDatabase(
      `SELECT count() AS sessions, countIf(hold_transfer_id != 0) AS with_hold,
              countIf(hold_transfer_id != 0 AND status != 'open' AND
                      toUInt256(author_micro) + platform_micro + refund_micro != toUInt256(hold_micro) + debt_micro) AS unbalanced,
              countIf(status IN ('cancelled', 'expired') AND (author_micro != 0 OR platform_micro != 0)) AS paid_without_post
       FROM {{db}}.sessions FINAL`,
      db,
    ),
  );
  const sessions = Number(sess?.sessions ?? 0);
  const withHold = Number(sess?.with_hold ?? 0);
  const unbalanced = Number(sess?.unbalanced ?? 0);
  const paidWithoutPost = Number(sess?.paid_without_post ?? 0);
  if (unbalanced > 0 || paidWithoutPost > 0) {
    const bad = await sink.query(
      bindDatabase(
        `SELECT session_id, status, hold_micro, price_micro, author_micro, platform_micro, refund_micro, debt_micro
         FROM {{db}}.sessions FINAL
         WHERE hold_transfer_id != 0 AND status != 'open' AND
               (toUInt256(author_micro) + platform_micro + refund_micro != toUInt256(hold_micro) + debt_micro
                OR (status IN ('cancelled', 'expired') AND (author_micro != 0 OR platform_micro != 0)))
         LIMIT 50`,
        db,
      ),
    );
    for (const r of bad) {
      addDrift({
        check: "session conservation",
        subject: `session ${big(r.session_id).toString(16)} (${String(r.status)})`,
        ledger: `hold ${String(r.hold_micro)} + debt ${String(r.debt_micro)}`,
        clickhouse: `author ${String(r.author_micro)} + platform ${String(r.platform_micro)} + refund ${String(r.refund_micro)}`,
      });
    }
  }
  if (withHold !== ledgerHolds) {
    addDrift({ check: "sessions", subject: "sessions with a hold", ledger: String(ledgerHolds), clickhouse: String(withHold) });
  }
  checks.push({
    name: "sessions (author + platform + refund = hold + debt)",
    ok: unbalanced === 0 && paidWithoutPost === 0 && withHold === ledgerHolds,
    detail: `${sessions} sessions (${ledgerHolds} holds in the ledger); ${unbalanced + paidWithoutPost} unbalanced`,
  });

  // ---- usage recorded after its session settled -------------------------------------------------
  const late = await sink.query(
    bindDatabase(
      `SELECT u.session_id AS session_id, count() AS events, max(u.timestamp) AS last_ns, any(s.closed_ns) AS closed_ns
       FROM {{db}}.usage AS u
       INNER JOIN (SELECT session_id, closed_ns FROM {{db}}.sessions FINAL
                   WHERE status IN ('closed', 'cancelled') AND closed_ns != 0) AS s ON u.session_id = s.session_id
       WHERE u.timestamp > s.closed_ns
       GROUP BY u.session_id ORDER BY u.session_id LIMIT 50`,
      db,
    ),
  );
  for (const r of late) {
    addDrift({
      check: "usage after settlement",
      subject: `session ${big(r.session_id).toString(16)}`,
      ledger: `settled at ${String(r.closed_ns)}`,
      clickhouse: `${String(r.events)} usage events after it (last at ${String(r.last_ns)})`,
    });
  }
  checks.push({
    name: "usage after settlement (every usage event is in its session's price)",
    ok: late.length === 0,
    detail: `${late.length} sessions with usage recorded after they were settled or cancelled`,
  });

  // ---- refunds (ADR 0112): every refund nets to zero ---------------------------------------------
  // Per session: what the refundable counter counted (ledger 91) = what reached the agent's wallet
  // (author part + platform part), and the author debt taken on = the author part paid from
  // earnings (the repayment then moves only between earnings and debt).
  const C = TransferCode;
  const refunds = await sink.query(
    bindDatabase(
      `SELECT user_data_128 AS session_id,
              sumIf(toUInt256(amount), code = ${C.refund_counted}) AS counted,
              sumIf(toUInt256(amount), code IN (${C.refund_author}, ${C.refund_platform})) AS refunded,
              sumIf(toUInt256(amount), code = ${C.author_debt}) AS debt_in,
              sumIf(toUInt256(amount), code = ${C.refund_author}) AS author_part,
              countIf(code = ${C.refund_counted}) AS n
       FROM {{db}}.transfers FINAL
       WHERE timestamp <= ${cursor} AND code IN (${C.refund_counted}, ${C.refund_author}, ${C.refund_platform}, ${C.author_debt})
       GROUP BY user_data_128`,
      db,
    ),
  );
  let refundCount = 0;
  let refundBad = 0;
  for (const r of refunds) {
    refundCount += Number(r.n ?? 0);
    if (big(r.counted ?? 0) !== big(r.refunded ?? 0) || big(r.debt_in ?? 0) !== big(r.author_part ?? 0)) {
      refundBad++;
      addDrift({
        check: "refunds",
        subject: `session ${big(r.session_id).toString(16)}`,
        ledger: `counted ${String(r.counted)}, author debt taken ${String(r.debt_in)}`,
        clickhouse: `refunded to the wallet ${String(r.refunded)}, author part ${String(r.author_part)}`,
      });
    }
  }
  const [peer] = await sink.query(bindDatabase(`SELECT count() AS n FROM {{db}}.transfers FINAL WHERE timestamp <= ${cursor} AND code = ${C.peer_transfer}`, db));
  checks.push({
    name: "refunds (every refund nets to zero: counted = refunded to the wallet; author debt = author part)",
    ok: refundBad === 0,
    detail: `${refundCount} refunds in ${refunds.length} sessions, ${refundBad} not netting; ${String(peer?.n ?? 0)} peer transfers`,
  });

  // ---- exchange position (Lightning conversion, ADR 0094) ---------------------------------------
  // Informational: what the platform's exchange desk holds open on each ledger (the USD it took in
  // for msat it paid out, net of deposits). The accounts themselves are compared above.
  const xusd = ledgerAccounts.find((a) => a.id === exchangeAccountId(Ledger.usd_micro));
  const xmsat = ledgerAccounts.find((a) => a.id === exchangeAccountId(Ledger.btc_msat));
  if (xusd !== undefined && xmsat !== undefined) {
    const pos = exchangePosition(xusd, xmsat);
    checks.push({
      name: "exchange position (open, per ledger)",
      ok: true,
      detail: `USD exchange account holds ${pos.usd_micro} micro-USD; msat exchange account paid out ${pos.msat_out} msat net`,
    });
  }

  return {
    ok: drift.length === 0,
    cursor_ts: cursor,
    ledger_events_after_cursor: eventsAfter,
    ledger_transfers: ledgerCount,
    clickhouse_transfers: chCount,
    clickhouse_transfer_rows: chRows,
    accounts: ledgerAccounts.length,
    sessions,
    checks,
    drift,
  };
}

/** Timestamp of the newest transfer in the ledger (0n when it has none). */
async function latestTransferTs(client: Client): Promise<bigint> {
  const [t] = await client.queryTransfers(qf({ limit: 1, flags: QueryFilterFlags.reversed }));
  return t?.timestamp ?? 0n;
}

export function formatReconcileReport(r: ReconcileReport): string {
  const lines: string[] = [];
  lines.push(`reconcile: ${r.ok ? "OK, no drift" : `DRIFT (${r.drift.length}${r.drift.length >= MAX_DRIFT_ITEMS ? "+" : ""} differences)`}`);
  lines.push(`  cursor ${r.cursor_ts} (${r.ledger_events_after_cursor} ledger transfers after it)`);
  for (const c of r.checks) lines.push(`  [${c.ok ? "ok" : "DRIFT"}] ${c.name}: ${c.detail}`);
  for (const d of r.drift) {
    lines.push(`  - ${d.check}: ${d.subject}`);
    lines.push(`      ledger:     ${d.ledger}`);
    lines.push(`      clickhouse: ${d.clickhouse}`);
  }
  return lines.join("\n");
}
