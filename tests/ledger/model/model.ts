/**
 * A small reference model of TigerBeetle's create_accounts / create_transfers semantics, written
 * from the reference docs (docs/reference/requests/create_*.md, transfer.md, account.md,
 * two-phase-transfers.md, linked-events.md) for the randomized model test. Plain maps, no
 * performance concerns: it only has to predict result codes and balances at small scale.
 *
 * Timestamps are not predicted: the model takes each event's timestamp from the result the backend
 * returned (every event of a batch has its own slot timestamp) and checks them separately.
 * Imported events are out of scope here (the conformance suite covers them).
 */
import { AccountFlags, TransferFlags, type Account, type Transfer } from "tigerbeetle-node";

export const U128_MAX = (1n << 128n) - 1n;
const NS_PER_S = 1_000_000_000n;
const TIMESTAMP_MAX = (1n << 63n) - 1n;

export type PendingStatus = "pending" | "posted" | "voided" | "expired";

export interface ModelAccount {
  id: bigint;
  ledger: number;
  code: number;
  flags: number;
  user_data_128: bigint;
  user_data_64: bigint;
  user_data_32: number;
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
  timestamp: bigint;
}

export interface BalanceEntry {
  transfer_id: bigint;
  timestamp: bigint;
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
}

interface State {
  accounts: Map<bigint, ModelAccount>;
  transfers: Map<bigint, Transfer>;
  pending: Map<bigint, PendingStatus>;
  failed: Set<bigint>;
  /** Per account, its balances right after each of its transfers (what get_account_balances shows). */
  history: Map<bigint, BalanceEntry[]>;
}

function cloneState(s: State): State {
  return {
    accounts: new Map([...s.accounts].map(([k, v]) => [k, { ...v }])),
    transfers: new Map(s.transfers),
    pending: new Map(s.pending),
    failed: new Set(s.failed),
    history: new Map([...s.history].map(([k, v]) => [k, [...v]])),
  };
}

const has = (flags: number, f: number) => (flags & f) !== 0;
const satSub = (a: bigint, b: bigint) => (a > b ? a - b : 0n);
const min = (a: bigint, b: bigint) => (a < b ? a : b);

export class Model {
  private s: State = { accounts: new Map(), transfers: new Map(), pending: new Map(), failed: new Set(), history: new Map() };

  get accounts(): ReadonlyMap<bigint, ModelAccount> {
    return this.s.accounts;
  }
  get transfers(): ReadonlyMap<bigint, Transfer> {
    return this.s.transfers;
  }
  pendingStatus(id: bigint): PendingStatus | undefined {
    return this.s.pending.get(id);
  }
  isFailed(id: bigint): boolean {
    return this.s.failed.has(id);
  }
  history(account: bigint): readonly BalanceEntry[] {
    return this.s.history.get(account) ?? [];
  }

  private record(t: Transfer, dr: ModelAccount, cr: ModelAccount): void {
    for (const a of [dr, cr]) {
      const list = this.s.history.get(a.id) ?? [];
      list.push({
        transfer_id: t.id,
        timestamp: t.timestamp,
        debits_pending: a.debits_pending,
        debits_posted: a.debits_posted,
        credits_pending: a.credits_pending,
        credits_posted: a.credits_posted,
      });
      this.s.history.set(a.id, list);
    }
  }

  /** Open pending transfers whose deadline (timestamp + timeout) is <= now_ns. */
  due(now_ns: bigint): Transfer[] {
    const out: Transfer[] = [];
    for (const [id, st] of this.s.pending) {
      if (st !== "pending") continue;
      const p = this.s.transfers.get(id)!;
      if (p.timeout > 0 && p.timestamp + BigInt(p.timeout) * NS_PER_S <= now_ns) out.push(p);
    }
    return out.sort((a, b) => (a.timestamp < b.timestamp ? -1 : 1));
  }

  /** Expire (release) every due pending transfer, as a pulse at now_ns does. */
  expire(now_ns: bigint): number {
    const due = this.due(now_ns);
    for (const p of due) {
      this.s.pending.set(p.id, "expired");
      const dr = this.s.accounts.get(p.debit_account_id)!;
      const cr = this.s.accounts.get(p.credit_account_id)!;
      dr.debits_pending -= p.amount;
      cr.credits_pending -= p.amount;
      if (has(p.flags, TransferFlags.closing_debit)) dr.flags &= ~AccountFlags.closed;
      if (has(p.flags, TransferFlags.closing_credit)) cr.flags &= ~AccountFlags.closed;
    }
    return due.length;
  }

  /** An independent copy (e.g. to ask "what if the due transfers had expired"). */
  clone(): Model {
    const m = new Model();
    m.s = cloneState(this.s);
    return m;
  }

  createAccounts(events: readonly Account[], stamps: readonly bigint[]): string[] {
    return this.execute(events, stamps, (e, ts) => this.createAccount(e, ts), () => undefined);
  }

  createTransfers(events: readonly Transfer[], stamps: readonly bigint[]): string[] {
    return this.execute(
      events,
      stamps,
      (e, ts) => this.createTransfer(e, ts),
      (e, status) => {
        if (TRANSIENT.has(status)) this.s.failed.add(e.id);
      },
    );
  }

  /** The batch loop with linked chains (docs/coding/linked-events.md). */
  private execute<E extends { id: bigint; flags: number; timestamp: bigint }>(
    events: readonly E[],
    stamps: readonly bigint[],
    apply: (e: E, ts: bigint) => string,
    onFailure: (e: E, status: string) => void,
  ): string[] {
    const results: string[] = [];
    let chainStart: number | null = null;
    let broken = false;
    let saved: State | null = null;
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      const linked = has(e.flags, 1);
      let status: string;
      if (linked && chainStart === null) {
        chainStart = i;
        saved = cloneState(this.s);
      }
      if (linked && i === events.length - 1) status = "linked_event_chain_open";
      else if (broken) status = "linked_event_failed";
      else if (e.timestamp !== 0n) status = "timestamp_must_be_zero";
      else status = apply(e, stamps[i]);
      if (status !== "created") {
        if (chainStart !== null && !broken) {
          broken = true;
          // keep ids poisoned by earlier failures in this batch, roll back everything else
          const failed = this.s.failed;
          this.s = saved!;
          this.s.failed = failed;
          for (let j = chainStart; j < i; j++) results[j] = "linked_event_failed";
        }
        onFailure(e, status);
      }
      results[i] = status;
      if (chainStart !== null && (!linked || status === "linked_event_chain_open")) {
        chainStart = null;
        broken = false;
        saved = null;
      }
    }
    return results;
  }

  private createAccount(a: Account, ts: bigint): string {
    if (a.reserved !== 0) return "reserved_field";
    if (a.flags >> 6 !== 0) return "reserved_flag";
    if (a.id === 0n) return "id_must_not_be_zero";
    if (a.id === U128_MAX) return "id_must_not_be_int_max";
    const e = this.s.accounts.get(a.id);
    if (e !== undefined) {
      if (a.flags !== e.flags) return "exists_with_different_flags";
      if (a.user_data_128 !== e.user_data_128) return "exists_with_different_user_data_128";
      if (a.user_data_64 !== e.user_data_64) return "exists_with_different_user_data_64";
      if (a.user_data_32 !== e.user_data_32) return "exists_with_different_user_data_32";
      if (a.ledger !== e.ledger) return "exists_with_different_ledger";
      if (a.code !== e.code) return "exists_with_different_code";
      return "exists";
    }
    if (has(a.flags, AccountFlags.debits_must_not_exceed_credits) && has(a.flags, AccountFlags.credits_must_not_exceed_debits)) {
      return "flags_are_mutually_exclusive";
    }
    if (a.debits_pending !== 0n) return "debits_pending_must_be_zero";
    if (a.debits_posted !== 0n) return "debits_posted_must_be_zero";
    if (a.credits_pending !== 0n) return "credits_pending_must_be_zero";
    if (a.credits_posted !== 0n) return "credits_posted_must_be_zero";
    if (a.ledger === 0) return "ledger_must_not_be_zero";
    if (a.code === 0) return "code_must_not_be_zero";
    this.s.accounts.set(a.id, {
      id: a.id,
      ledger: a.ledger,
      code: a.code,
      flags: a.flags,
      user_data_128: a.user_data_128,
      user_data_64: a.user_data_64,
      user_data_32: a.user_data_32,
      debits_pending: 0n,
      debits_posted: 0n,
      credits_pending: 0n,
      credits_posted: 0n,
      timestamp: ts,
    });
    return "created";
  }

  private createTransfer(t: Transfer, ts: bigint): string {
    if (t.flags >> 9 !== 0) return "reserved_flag";
    if (t.id === 0n) return "id_must_not_be_zero";
    if (t.id === U128_MAX) return "id_must_not_be_int_max";
    const existing = this.s.transfers.get(t.id);
    if (existing !== undefined) return this.transferExists(t, existing);
    if (this.s.failed.has(t.id)) return "id_already_failed";
    if (has(t.flags, TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer)) return this.postOrVoid(t, ts);

    if (t.debit_account_id === 0n) return "debit_account_id_must_not_be_zero";
    if (t.debit_account_id === U128_MAX) return "debit_account_id_must_not_be_int_max";
    if (t.credit_account_id === 0n) return "credit_account_id_must_not_be_zero";
    if (t.credit_account_id === U128_MAX) return "credit_account_id_must_not_be_int_max";
    if (t.credit_account_id === t.debit_account_id) return "accounts_must_be_different";
    if (t.pending_id !== 0n) return "pending_id_must_be_zero";
    const pending = has(t.flags, TransferFlags.pending);
    if (!pending) {
      if (t.timeout !== 0) return "timeout_reserved_for_pending_transfer";
      if (has(t.flags, TransferFlags.closing_debit | TransferFlags.closing_credit)) return "closing_transfer_must_be_pending";
    }
    if (t.ledger === 0) return "ledger_must_not_be_zero";
    if (t.code === 0) return "code_must_not_be_zero";
    const dr = this.s.accounts.get(t.debit_account_id);
    if (dr === undefined) return "debit_account_not_found";
    const cr = this.s.accounts.get(t.credit_account_id);
    if (cr === undefined) return "credit_account_not_found";
    if (dr.ledger !== cr.ledger) return "accounts_must_have_the_same_ledger";
    if (t.ledger !== dr.ledger) return "transfer_must_have_the_same_ledger_as_accounts";
    if (has(dr.flags, AccountFlags.closed)) return "debit_account_already_closed";
    if (has(cr.flags, AccountFlags.closed)) return "credit_account_already_closed";

    let amount = t.amount;
    if (has(t.flags, TransferFlags.balancing_debit)) amount = min(amount, satSub(dr.credits_posted, dr.debits_posted + dr.debits_pending));
    if (has(t.flags, TransferFlags.balancing_credit)) amount = min(amount, satSub(cr.debits_posted, cr.credits_posted + cr.credits_pending));
    if (pending) {
      if (amount + dr.debits_pending > U128_MAX) return "overflows_debits_pending";
      if (amount + cr.credits_pending > U128_MAX) return "overflows_credits_pending";
    }
    if (amount + dr.debits_posted > U128_MAX) return "overflows_debits_posted";
    if (amount + cr.credits_posted > U128_MAX) return "overflows_credits_posted";
    if (amount + dr.debits_pending + dr.debits_posted > U128_MAX) return "overflows_debits";
    if (amount + cr.credits_pending + cr.credits_posted > U128_MAX) return "overflows_credits";
    if (ts + BigInt(t.timeout) * NS_PER_S > TIMESTAMP_MAX) return "overflows_timeout";
    if (has(dr.flags, AccountFlags.debits_must_not_exceed_credits) && dr.debits_pending + dr.debits_posted + amount > dr.credits_posted) {
      return "exceeds_credits";
    }
    if (has(cr.flags, AccountFlags.credits_must_not_exceed_debits) && cr.credits_pending + cr.credits_posted + amount > cr.debits_posted) {
      return "exceeds_debits";
    }

    this.s.transfers.set(t.id, { ...t, amount, timestamp: ts });
    if (pending) {
      dr.debits_pending += amount;
      cr.credits_pending += amount;
      this.s.pending.set(t.id, "pending");
    } else {
      dr.debits_posted += amount;
      cr.credits_posted += amount;
    }
    if (has(t.flags, TransferFlags.closing_debit)) dr.flags |= AccountFlags.closed;
    if (has(t.flags, TransferFlags.closing_credit)) cr.flags |= AccountFlags.closed;
    this.record(this.s.transfers.get(t.id)!, dr, cr);
    return "created";
  }

  private postOrVoid(t: Transfer, ts: bigint): string {
    const post = has(t.flags, TransferFlags.post_pending_transfer);
    const isVoid = has(t.flags, TransferFlags.void_pending_transfer);
    if (post && isVoid) return "flags_are_mutually_exclusive";
    const excl =
      TransferFlags.pending | TransferFlags.balancing_debit | TransferFlags.balancing_credit | TransferFlags.closing_debit | TransferFlags.closing_credit;
    if (has(t.flags, excl)) return "flags_are_mutually_exclusive";
    if (t.pending_id === 0n) return "pending_id_must_not_be_zero";
    if (t.pending_id === U128_MAX) return "pending_id_must_not_be_int_max";
    if (t.pending_id === t.id) return "pending_id_must_be_different";
    if (t.timeout !== 0) return "timeout_reserved_for_pending_transfer";
    const p = this.s.transfers.get(t.pending_id);
    if (p === undefined) return "pending_transfer_not_found";
    if (!has(p.flags, TransferFlags.pending)) return "pending_transfer_not_pending";
    const dr = this.s.accounts.get(p.debit_account_id)!;
    const cr = this.s.accounts.get(p.credit_account_id)!;
    if (t.debit_account_id !== 0n && t.debit_account_id !== p.debit_account_id) return "pending_transfer_has_different_debit_account_id";
    if (t.credit_account_id !== 0n && t.credit_account_id !== p.credit_account_id) return "pending_transfer_has_different_credit_account_id";
    if (t.ledger !== 0 && t.ledger !== p.ledger) return "pending_transfer_has_different_ledger";
    if (t.code !== 0 && t.code !== p.code) return "pending_transfer_has_different_code";
    const amount = isVoid ? (t.amount > 0n ? t.amount : p.amount) : t.amount === U128_MAX ? p.amount : t.amount;
    if (amount > p.amount) return "exceeds_pending_transfer_amount";
    if (isVoid && amount < p.amount) return "pending_transfer_has_different_amount";
    const st = this.s.pending.get(p.id)!;
    if (st === "posted") return "pending_transfer_already_posted";
    if (st === "voided") return "pending_transfer_already_voided";
    if (st === "expired") return "pending_transfer_expired";
    if (p.timeout > 0 && p.timestamp + BigInt(p.timeout) * NS_PER_S <= ts) return "pending_transfer_expired";
    if (has(dr.flags, AccountFlags.closed) && !isVoid) return "debit_account_already_closed";
    if (has(cr.flags, AccountFlags.closed) && !isVoid) return "credit_account_already_closed";

    this.s.transfers.set(t.id, {
      id: t.id,
      debit_account_id: p.debit_account_id,
      credit_account_id: p.credit_account_id,
      amount,
      pending_id: t.pending_id,
      user_data_128: t.user_data_128 !== 0n ? t.user_data_128 : p.user_data_128,
      user_data_64: t.user_data_64 !== 0n ? t.user_data_64 : p.user_data_64,
      user_data_32: t.user_data_32 !== 0 ? t.user_data_32 : p.user_data_32,
      timeout: 0,
      ledger: p.ledger,
      code: p.code,
      flags: t.flags,
      timestamp: ts,
    });
    this.s.pending.set(p.id, post ? "posted" : "voided");
    dr.debits_pending -= p.amount;
    cr.credits_pending -= p.amount;
    if (post) {
      dr.debits_posted += amount;
      cr.credits_posted += amount;
    } else {
      if (has(p.flags, TransferFlags.closing_debit)) dr.flags &= ~AccountFlags.closed;
      if (has(p.flags, TransferFlags.closing_credit)) cr.flags &= ~AccountFlags.closed;
    }
    this.record(this.s.transfers.get(t.id)!, dr, cr);
    return "created";
  }

  private transferExists(t: Transfer, e: Transfer): string {
    if (t.flags !== e.flags) return "exists_with_different_flags";
    if (t.pending_id !== e.pending_id) return "exists_with_different_pending_id";
    if (t.timeout !== e.timeout) return "exists_with_different_timeout";
    if (has(t.flags, TransferFlags.post_pending_transfer | TransferFlags.void_pending_transfer)) {
      const p = this.s.transfers.get(t.pending_id)!;
      if (t.debit_account_id !== 0n && t.debit_account_id !== e.debit_account_id) return "exists_with_different_debit_account_id";
      if (t.credit_account_id !== 0n && t.credit_account_id !== e.credit_account_id) return "exists_with_different_credit_account_id";
      if (has(t.flags, TransferFlags.void_pending_transfer)) {
        if (t.amount === 0n ? e.amount !== p.amount : t.amount !== e.amount) return "exists_with_different_amount";
      } else if (t.amount === U128_MAX ? e.amount !== p.amount : t.amount !== e.amount) {
        return "exists_with_different_amount";
      }
      if ((t.user_data_128 === 0n ? p.user_data_128 : t.user_data_128) !== e.user_data_128) return "exists_with_different_user_data_128";
      if ((t.user_data_64 === 0n ? p.user_data_64 : t.user_data_64) !== e.user_data_64) return "exists_with_different_user_data_64";
      if ((t.user_data_32 === 0 ? p.user_data_32 : t.user_data_32) !== e.user_data_32) return "exists_with_different_user_data_32";
      if (t.ledger !== 0 && t.ledger !== e.ledger) return "exists_with_different_ledger";
      if (t.code !== 0 && t.code !== e.code) return "exists_with_different_code";
      return "exists";
    }
    if (t.debit_account_id !== e.debit_account_id) return "exists_with_different_debit_account_id";
    if (t.credit_account_id !== e.credit_account_id) return "exists_with_different_credit_account_id";
    if (has(t.flags, TransferFlags.balancing_debit | TransferFlags.balancing_credit)) {
      if (t.amount < e.amount) return "exists_with_different_amount";
    } else if (t.amount !== e.amount) return "exists_with_different_amount";
    if (t.user_data_128 !== e.user_data_128) return "exists_with_different_user_data_128";
    if (t.user_data_64 !== e.user_data_64) return "exists_with_different_user_data_64";
    if (t.user_data_32 !== e.user_data_32) return "exists_with_different_user_data_32";
    if (t.ledger !== e.ledger) return "exists_with_different_ledger";
    if (t.code !== e.code) return "exists_with_different_code";
    return "exists";
  }
}

/** Results that depend on transient state: the id may never succeed afterwards (0.16.4+). */
const TRANSIENT = new Set([
  "debit_account_not_found",
  "credit_account_not_found",
  "pending_transfer_not_found",
  "exceeds_credits",
  "exceeds_debits",
  "debit_account_already_closed",
  "credit_account_already_closed",
]);
