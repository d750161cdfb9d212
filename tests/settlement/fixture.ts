/**
 * A private embedded ledger per test (temp data directory, injected clock that moves only when a
 * test says so), with the accounts settlement needs: platform accounts, every rail's inbound,
 * outbound and fee accounts, and helpers to fund an author's earnings and open agent wallets.
 */
import { authorDebtAccount } from "../../src/domain/refunds.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { TransferFlags, type Account, type CreateTransferResult, type Transfer } from "tigerbeetle-node";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import {
  agentWalletAccounts,
  agentWalletId,
  authorEarningsAccount,
  authorEarningsId,
  platformAccount,
  platformAccountId,
} from "../../src/domain/accounts.js";
import { Ledger, TransferCode, RAIL_NAMES } from "../../src/domain/codes.js";
import { deterministicId } from "../../src/domain/ids.js";
import { newTransfer } from "../../src/domain/records.js";
import { settlementAccounts } from "../../src/domain/settlement/index.js";
import { accountStatuses, transferStatuses } from "../support/ledger-backend.js";

export { transferStatuses };

export interface SettlementLedger {
  client: EmbeddedClient;
  nowNs(): bigint;
  advanceTime(seconds: number): void;
  close(): Promise<void>;
}

export async function openSettlementLedger(): Promise<SettlementLedger> {
  const dataDir = await mkdtemp(join(tmpdir(), "settlement-"));
  let now_ns = BigInt(Date.now()) * 1_000_000n;
  const client = createEmbeddedClient({ dataDir, clock: () => now_ns });
  const accounts = [platformAccount("platform_operator"), platformAccount("platform_revenue"), ...settlementAccounts(RAIL_NAMES)];
  expect(accountStatuses(await client.createAccounts(accounts))).toEqual(accounts.map(() => "created"));
  return {
    client,
    nowNs: () => now_ns,
    advanceTime: (seconds) => {
      now_ns += BigInt(seconds) * 1_000_000_000n;
    },
    close: async () => {
      await client.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Opens an author's earnings account and credits it `amount_micro` (as session shares would). */
export async function fundAuthor(l: SettlementLedger, author_id: string, amount_micro: bigint): Promise<bigint> {
  const acct = authorEarningsAccount(author_id);
  expect(accountStatuses(await l.client.createAccounts([acct]))).toEqual(["created"]);
  // The daemon opens an author's debt account with their earnings (ADR 0112); payout voids need it.
  expect(accountStatuses(await l.client.createAccounts([authorDebtAccount(acct.id)]))).toEqual(["created"]);
  const t = newTransfer({
    id: deterministicId("test", "earn", author_id),
    debit_account_id: platformAccountId("platform_operator"),
    credit_account_id: authorEarningsId(author_id),
    amount: amount_micro,
    ledger: Ledger.usd_micro,
    code: TransferCode.session_author_share,
    flags: TransferFlags.none,
  });
  expect(transferStatuses(await l.client.createTransfers([t]))).toEqual(["created"]);
  return acct.id;
}

export async function openAgentWallet(l: SettlementLedger, agent_id: string): Promise<bigint> {
  const accts = agentWalletAccounts(agent_id, "prepaid");
  expect(accountStatuses(await l.client.createAccounts(accts))).toEqual(["created"]);
  return agentWalletId(agent_id);
}

export async function account(l: SettlementLedger, id: bigint): Promise<Account> {
  const [a] = await l.client.lookupAccounts([id]);
  if (a === undefined) throw new Error(`account ${id} not found`);
  return a;
}

export async function submit(l: SettlementLedger, events: Transfer[]): Promise<CreateTransferResult[]> {
  return l.client.createTransfers(events);
}
