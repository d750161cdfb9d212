/**
 * Spending limits at run time (ADR 0110): the accounts the limit chains name (created before
 * any chain names them: a transfer refused for a missing account burns its id), reading a
 * limit's state, and the refusal a spend gets. The checks themselves are events in the spend's
 * own linked chain (src/domain/limits.ts); nothing here decides money.
 */
import { CreateAccountStatus, CreateTransferStatus as CT, type Account, type Client } from "tigerbeetle-node";
import type { Config } from "../../config.js";
import { idToHex } from "../../domain/ids.js";
import {
  NO_CAP_MICRO,
  agentCapAccounts,
  agentCapId,
  capFunding,
  capValueMicro,
  dayAccount,
  dayAccountId,
  dayResetNs,
  dayUsedMicro,
  planSetCap,
  platformCapId,
  platformLimitAccounts,
  remainingMicro,
  utcDay,
  type DayKind,
} from "../../domain/limits.js";
import { formatMicroAsUsd } from "../../domain/money.js";
import { failedPrecondition, ledgerRejected } from "../errors.js";

/** Which limit refused a spend (the API's names). */
export type LimitName = "daily_cap" | "session_cap" | "peer_transfer_max" | "peer_daily_volume";

export interface LimitState {
  /** The cap (NO_CAP_MICRO: none). */
  limit_micro: bigint;
  /** What counts against it in the current window (daily limits) or 0 (per-spend limits). */
  used_micro: bigint;
  remaining_micro: bigint;
  /** When a daily limit resets (next UTC midnight, ns); null for per-spend limits. */
  resets_at_ns: bigint | null;
}

export interface AgentLimits {
  day: bigint;
  daily: LimitState;
  session: LimitState;
}

export interface Limits {
  readonly ledger: Client;
  /** Platform limit accounts and the peer policy caps set to the configured values (start-up). */
  provisionPlatform(nonce: string): Promise<void>;
  /** An agent's cap accounts, funded with the configured defaults (idempotent, memoized). */
  ensureAgent(wallet_id: bigint): Promise<void>;
  /** An agent's day account (idempotent, memoized). */
  ensureDay(kind: DayKind, wallet_id: bigint, day: bigint): Promise<bigint>;
  /** The agent's caps as the ledger has them now, for UTC day `day`. */
  read(wallet_id: bigint, day: bigint): Promise<AgentLimits>;
  /** The agent's per-session cap as the ledger has it now (one account read: Don's hot path). */
  sessionCap(wallet_id: bigint): Promise<bigint>;
  /** The platform's peer limits and what `wallet_id` sent on `day`. */
  readPeer(wallet_id: bigint, day: bigint): Promise<{ max: LimitState; daily: LimitState }>;
}

const OK_ACCOUNT = new Set([CreateAccountStatus.created, CreateAccountStatus.exists]);
const OK_TRANSFER = new Set([CT.created, CT.exists]);
const MEMO_MAX = 100_000;

async function createAccountsOk(ledger: Client, accounts: Account[], what: string): Promise<void> {
  const res = await ledger.createAccounts(accounts);
  for (const [i, r] of res.entries()) {
    if (!OK_ACCOUNT.has(r.status)) throw ledgerRejected(`create ${what} ${idToHex(accounts[i]!.id)}`, CreateAccountStatus[r.status] ?? String(r.status));
  }
}

function bounded<T>(set: Set<T>, v: T): void {
  if (set.size >= MEMO_MAX) set.clear();
  set.add(v);
}

/** The daemon's limits over `ledger` with the configured defaults. */
export function createLimits(ledger: Client, config: Pick<Config, "SPEND_DAILY_CAP_MICRO" | "SPEND_SESSION_CAP_MICRO" | "PEER_TRANSFER_MAX_MICRO" | "PEER_DAILY_VOLUME_MICRO">): Limits {
  const agents = new Set<bigint>();
  const days = new Set<bigint>();
  const dailyDefault = config.SPEND_DAILY_CAP_MICRO ?? NO_CAP_MICRO;
  const sessionDefault = config.SPEND_SESSION_CAP_MICRO ?? NO_CAP_MICRO;

  async function fund(transfers: ReturnType<typeof capFunding>[], what: string): Promise<void> {
    const res = await ledger.createTransfers(transfers);
    for (const r of res) {
      // exists_with_different_amount: funded earlier with another default (the default changed).
      if (!OK_TRANSFER.has(r.status) && r.status !== CT.exists_with_different_amount) {
        throw ledgerRejected(`fund ${what}`, CT[r.status] ?? String(r.status));
      }
    }
  }

  return {
    ledger,
    async provisionPlatform(nonce) {
      await createAccountsOk(ledger, platformLimitAccounts(), "platform limit account");
      const policy: [bigint, bigint][] = [
        [platformCapId("peer_max"), config.PEER_TRANSFER_MAX_MICRO],
        [platformCapId("peer_daily"), config.PEER_DAILY_VOLUME_MICRO],
      ];
      await fund(policy.map(([id, v]) => capFunding(id, v)), "peer transfer policy");
      const now = await ledger.lookupAccounts(policy.map(([id]) => id));
      for (const [id, value] of policy) {
        const a = now.find((x) => x.id === id);
        if (capValueMicro(a) === value) continue;
        // The configured policy changed since the last start: set it (every daemon shares one environment).
        const res = await ledger.createTransfers(planSetCap(id, value, nonce, false));
        const bad = res.find((r) => r.status !== CT.created);
        if (bad) throw ledgerRejected("set peer transfer policy", CT[bad.status] ?? String(bad.status));
      }
    },
    async ensureAgent(wallet_id) {
      if (agents.has(wallet_id)) return;
      await createAccountsOk(ledger, agentCapAccounts(wallet_id), "agent cap account");
      await fund([capFunding(agentCapId("daily", wallet_id), dailyDefault), capFunding(agentCapId("session", wallet_id), sessionDefault)], "agent caps");
      bounded(agents, wallet_id);
    },
    async ensureDay(kind, wallet_id, day) {
      const id = dayAccountId(kind, wallet_id, day);
      if (days.has(id)) return id;
      await createAccountsOk(ledger, [dayAccount(kind, wallet_id, day)], "day account");
      bounded(days, id);
      return id;
    },
    async read(wallet_id, day) {
      const ids = [agentCapId("daily", wallet_id), agentCapId("session", wallet_id), dayAccountId("spend", wallet_id, day)];
      const found = await ledger.lookupAccounts(ids);
      const [daily, session, spent] = ids.map((id) => found.find((a) => a.id === id));
      const daily_micro = daily === undefined ? dailyDefault : capValueMicro(daily);
      const session_micro = session === undefined ? sessionDefault : capValueMicro(session);
      const used = dayUsedMicro(spent);
      return {
        day,
        daily: { limit_micro: daily_micro, used_micro: used, remaining_micro: remainingMicro(daily_micro, used), resets_at_ns: dayResetNs(day) },
        session: { limit_micro: session_micro, used_micro: 0n, remaining_micro: session_micro, resets_at_ns: null },
      };
    },
    async sessionCap(wallet_id) {
      const [cap] = await ledger.lookupAccounts([agentCapId("session", wallet_id)]);
      return cap === undefined ? sessionDefault : capValueMicro(cap);
    },
    async readPeer(wallet_id, day) {
      const ids = [platformCapId("peer_max"), platformCapId("peer_daily"), dayAccountId("peer", wallet_id, day)];
      const found = await ledger.lookupAccounts(ids);
      const [max, daily, sent] = ids.map((id) => found.find((a) => a.id === id));
      const max_micro = max === undefined ? config.PEER_TRANSFER_MAX_MICRO : capValueMicro(max);
      const daily_micro = daily === undefined ? config.PEER_DAILY_VOLUME_MICRO : capValueMicro(daily);
      const used = dayUsedMicro(sent);
      return {
        max: { limit_micro: max_micro, used_micro: 0n, remaining_micro: max_micro, resets_at_ns: null },
        daily: { limit_micro: daily_micro, used_micro: used, remaining_micro: remainingMicro(daily_micro, used), resets_at_ns: dayResetNs(day) },
      };
    },
  };
}

/** The UTC day of `now_ns` (re-exported for services). */
export const dayOf = utcDay;

const LIMIT_TEXT: Record<LimitName, string> = {
  daily_cap: "daily spending cap",
  session_cap: "per-session spending cap",
  peer_transfer_max: "largest single peer transfer",
  peer_daily_volume: "daily peer-transfer volume",
};

function usd(micro: bigint): string {
  return micro >= NO_CAP_MICRO ? "unlimited" : `${formatMicroAsUsd(micro)} USD`;
}

/** ISO-8601 UTC of a ns timestamp. */
export function isoOfNs(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}

/**
 * FAILED_PRECONDITION SPENDING_LIMIT_EXCEEDED naming the limit, its value, what is left and when
 * it resets (daily limits). Metadata: limit, limit_micro, remaining_micro, required_micro,
 * resets_at (ISO-8601, daily limits only).
 */
export function spendingLimitExceeded(limit: LimitName, state: LimitState, required_micro: bigint, whose: string) {
  const resets = state.resets_at_ns === null ? "" : `, resets at ${isoOfNs(state.resets_at_ns)}`;
  const left = state.resets_at_ns === null ? "" : `, ${usd(state.remaining_micro)} left today`;
  return failedPrecondition(
    "SPENDING_LIMIT_EXCEEDED",
    `${LIMIT_TEXT[limit]} of ${whose} exceeded: limit ${usd(state.limit_micro)}${left}${resets}; this needs ${usd(required_micro)}`,
    {
      limit,
      limit_micro: String(state.limit_micro),
      remaining_micro: String(state.remaining_micro),
      required_micro: String(required_micro),
      ...(state.resets_at_ns === null ? {} : { resets_at: isoOfNs(state.resets_at_ns) }),
    },
  );
}

/** A check in a submitted chain: the index of its failing event and the limit it enforces. */
export interface ChainCheck {
  index: number;
  limit: LimitName;
}

/**
 * Which check refused the chain (`exceeds_credits` at its failing event; `id_already_failed`
 * when the same ids were refused before), or null.
 */
export function refusedBy(results: readonly { status: CT }[], checks: readonly ChainCheck[]): LimitName | null {
  for (const c of checks) {
    const st = results[c.index]?.status;
    if (st === CT.exceeds_credits || st === CT.id_already_failed) return c.limit;
  }
  return null;
}
