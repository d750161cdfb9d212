/**
 * Sessions built with SESSIONS' own domain plans (src/domain/sessions.ts) on a real embedded
 * engine: the exact transfer layout the daemon writes.
 */
import { AccountFlags, CreateAccountStatus, CreateTransferStatus, type Account, type Client, type Transfer } from "tigerbeetle-node";
import { agentDebtId, agentWalletAccounts, agentWalletId, authorEarningsAccount, depositTransfer, startupPlatformAccounts, USAGE_LEDGERS } from "../../src/domain/accounts.js";
import { AccountCode } from "../../src/domain/codes.js";
import { deterministicId } from "../../src/domain/ids.js";
import { priceBookFromText, type BillingMode } from "../../src/domain/pricing.js";
import { planCancel, planDoff, planDon, planHeartbeat, planUsage, priceSession, sessionMeterAccounts, type SessionAccountIds } from "../../src/domain/sessions.js";
import { sessionAccountIds, usageMeterId } from "../../src/domain/session-accounts.js";
import { provisionIssuanceLimit } from "../../src/services/accounts/account-service.js";
import { account, CREATED } from "./support.js";

export const ids: SessionAccountIds = sessionAccountIds;
export const PRICE_BOOK = priceBookFromText({
  flat_per_session: "0.05",
  per_minute: "0.01",
  per_1k_input_tokens: "0.003",
  per_1k_output_tokens: "0.015",
  per_tool_call: "0.001",
  reserve: "2.50",
});
export const FEE_BPS = 2000;

/** Every event created (or already there from an earlier run: `exists` is success). */
async function ok(what: string, p: Promise<{ status: number }[]>, exists: number = CreateTransferStatus.exists): Promise<void> {
  const res = await p;
  const bad = res.find((r) => r.status !== CREATED && r.status !== exists);
  if (bad) throw new Error(`${what}: status ${bad.status}`);
}

export async function createSessionAccounts(client: Client, agent: string, author: string): Promise<void> {
  const accounts: Account[] = [
    ...startupPlatformAccounts([]),
    ...agentWalletAccounts(agent, "prepaid"),
    authorEarningsAccount(author),
    account(agentDebtId(agent), AccountCode.agent_debt, { flags: AccountFlags.history }),
    ...USAGE_LEDGERS.map((l) => account(usageMeterId(agent, l), AccountCode.usage_meter, { ledger: l, flags: 0, user_data_128: agentWalletId(agent) })),
  ];
  // one by one: `exists` on a re-run is fine
  for (const a of accounts) await ok(`account ${a.code}`, client.createAccounts([a]), CreateAccountStatus.exists);
  // as the daemon's start-up does: a soft-mode Doff's debt counts against the issuance limit (ADR 0055)
  await provisionIssuanceLimit(client);
  await ok("deposit", client.createTransfers([depositTransfer({ walletId: agentWalletId(agent), amountMicro: 100_000_000n, rail: null, idempotencyKey: `fund-${agent}` })]));
}

export interface SessionScript {
  name: string;
  agent: string;
  author: string;
  masque_index: number;
  mode: BillingMode;
  hold_micro: bigint;
  timeout_s: number;
  usage: { input_tokens: bigint; output_tokens: bigint; tool_calls: bigint }[];
  end: "doff" | "cancel" | "none";
  /** Duration billed at doff. */
  billed_ms?: bigint;
}

export function sessionId(name: string): bigint {
  return deterministicId("test-session", name);
}

/** Run a session's plans against the ledger; returns its id. */
export async function runSession(client: Client, s: SessionScript): Promise<bigint> {
  const session_id = sessionId(s.name);
  await ok("don", client.createTransfers([planDon(ids, { session_id, agent_id: s.agent, masque_index: s.masque_index, price_version: 3, mode: s.mode, hold_micro: s.hold_micro, timeout_s: s.timeout_s })]));
  await ok("session meters", client.createAccounts(sessionMeterAccounts(session_id, agentWalletId(s.agent))), CreateAccountStatus.exists);
  let seq = 1n;
  for (const u of s.usage) {
    await ok("usage", client.createTransfers(planUsage(ids, { session_id, agent_id: s.agent, seq: seq++, ...u })));
  }
  await ok("heartbeat", client.createTransfers([planHeartbeat(ids, session_id, s.agent, 1n)]));
  if (s.end === "doff") {
    const total = s.usage.reduce(
      (a, u) => ({ input_tokens: a.input_tokens + u.input_tokens, output_tokens: a.output_tokens + u.output_tokens, tool_calls: a.tool_calls + u.tool_calls }),
      { input_tokens: 0n, output_tokens: 0n, tool_calls: 0n },
    );
    const billed = s.billed_ms ?? 90_000n;
    const settlement = priceSession(PRICE_BOOK, s.mode, s.mode === "shadow" ? 0n : s.hold_micro, total, billed, FEE_BPS);
    const chain: Transfer[] = planDoff(ids, { session_id, agent_id: s.agent, author_id: s.author, masque_index: s.masque_index, settlement, billed_duration_ms: billed, fee_bps: FEE_BPS, reason: "doff" });
    await ok("doff", client.createTransfers(chain));
  } else if (s.end === "cancel") {
    await ok("cancel", client.createTransfers([planCancel(session_id)]));
  }
  return session_id;
}

/** Every transfer of a session, from the ledger. */
export async function sessionTransfers(client: Client, session_id: bigint): Promise<Transfer[]> {
  return client.queryTransfers({
    user_data_128: session_id, user_data_64: 0n, user_data_32: 0, ledger: 0, code: 0,
    timestamp_min: 0n, timestamp_max: 0n, limit: 8189, flags: 0,
  });
}
