/**
 * The account ids session plans name (src/domain/sessions.ts `SessionAccountIds`), derived from
 * owners with the deterministic id functions of src/domain/accounts.ts and memoized: Don, usage
 * and Doff derive the same few ids over and over and each is a SHA-256. Pure (no I/O).
 */
import {
  agentDebtId,
  agentWalletId,
  authorEarningsId,
  platformAccountId,
  usageSinkId,
} from "./accounts.js";
import { deterministicId, idToHex } from "./ids.js";
import { USAGE_LEDGER, type SessionAccountIds } from "./sessions.js";

/** Memoize an id derivation; at most `max` entries (the map is cleared when full). */
function memo<K>(f: (k: K) => bigint, max = 100_000): (k: K) => bigint {
  const m = new Map<K, bigint>();
  return (k: K) => {
    let v = m.get(k);
    if (v === undefined) {
      v = f(k);
      if (m.size >= max) m.clear();
      m.set(k, v);
    }
    return v;
  };
}

const meterMemo = new Map<bigint, Map<number, bigint>>();

/**
 * An agent's usage meter on one usage ledger, keyed by the agent's WALLET id (ADR 0032: the hold
 * names the wallet). Sessions donned before ADR 0036 recorded usage here.
 */
export function usageMeterOfWallet(wallet_id: bigint, ledger: number): bigint {
  let m = meterMemo.get(wallet_id);
  if (m === undefined) {
    const hex = idToHex(wallet_id);
    m = new Map(Object.values(USAGE_LEDGER).map((l) => [l, deterministicId("account", "usage_meter", hex, l)]));
    if (meterMemo.size >= 100_000) meterMemo.clear();
    meterMemo.set(wallet_id, m);
  }
  return m.get(ledger) ?? deterministicId("account", "usage_meter", idToHex(wallet_id), ledger);
}

/** An agent's usage meter on `ledger` (see usageMeterOfWallet). */
export function usageMeterId(agent_id: string, ledger: number): bigint {
  return usageMeterOfWallet(agentWalletId(agent_id), ledger);
}

/** The agent's wallet id, memoized (hot: every usage event and every authorization compares it). */
export const walletOf = memo(agentWalletId);
const meterOf = memo((key: string) => {
  const i = key.lastIndexOf("|");
  return usageMeterId(key.slice(0, i), Number(key.slice(i + 1)));
});
const SINKS = new Map<number, bigint>(Object.values(USAGE_LEDGER).map((l) => [l, usageSinkId(l)]));

/** The daemon's SessionAccountIds. */
export const sessionAccountIds: SessionAccountIds = {
  agentWallet: walletOf,
  agentDebt: agentDebtId,
  authorEarnings: memo(authorEarningsId),
  escrow: platformAccountId("session_escrow"),
  platformRevenue: platformAccountId("platform_revenue"),
  usageMeter: (agent_id, ledger) => meterOf(`${agent_id}|${ledger}`),
  usageSink: (ledger) => SINKS.get(ledger) ?? usageSinkId(ledger),
};
