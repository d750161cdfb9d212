/**
 * Account plans (src/domain/accounts.ts): ids, flags and transfer shapes, and what the plans do
 * when the ledger executes them (embedded engine behind the request coalescer, as in the daemon).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import {
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  TransferFlags,
  type Client,
} from "tigerbeetle-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AccountCode, Rail, RAIL_NAMES, TransferCode } from "../../src/domain/codes.js";
import {
  agentCreditLineId,
  agentWalletAccounts,
  agentWalletId,
  authorEarningsAccount,
  authorEarningsId,
  availableMicro,
  creditLimitChangeTransfer,
  creditLimitMicro,
  depositTransfer,
  openingCreditLineTransfer,
  platformAccountId,
  railAccountId,
  startupPlatformAccounts,
} from "../../src/domain/accounts.js";
import { deterministicId } from "../../src/domain/ids.js";
import { createCoalescedClient } from "../../src/ledger/coalescer.js";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import { authorizeDeposit, authorizeRead, ownedAccountIds } from "../../src/services/authz.js";
import { decodePageToken, encodePageToken } from "../../src/services/views.js";
import type { Violation } from "../../src/services/errors.js";

describe("account ids and flags", () => {
  it("an agent has one wallet id whatever the mode; owners of different kinds never collide", () => {
    const [prepaid] = agentWalletAccounts("a1", "prepaid");
    const postpaid = agentWalletAccounts("a1", "postpaid");
    expect(prepaid!.id).toBe(agentWalletId("a1"));
    expect(postpaid.map((a) => a.id)).toEqual([agentCreditLineId(agentWalletId("a1")), agentWalletId("a1")]);
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (x, y) => {
        expect(agentWalletId(x)).not.toBe(authorEarningsId(x));
        if (x !== y) expect(agentWalletId(x)).not.toBe(agentWalletId(y));
      }),
    );
  });

  it("user accounts never go negative and keep history; the credit line cannot go below zero", () => {
    const [line, wallet] = agentWalletAccounts("a1", "postpaid");
    const userFlags = AccountFlags.debits_must_not_exceed_credits | AccountFlags.history;
    expect(wallet).toMatchObject({ code: AccountCode.agent_wallet_postpaid, flags: userFlags, ledger: 1 });
    expect(agentWalletAccounts("a1", "prepaid")[0]).toMatchObject({ code: AccountCode.agent_wallet_prepaid, flags: userFlags });
    expect(authorEarningsAccount("x")).toMatchObject({ code: AccountCode.author_earnings, flags: userFlags });
    expect(line).toMatchObject({
      code: AccountCode.agent_credit_line,
      flags: AccountFlags.credits_must_not_exceed_debits | AccountFlags.history,
    });
  });

  it("start-up platform accounts: distinct ids, one inbound + outbound per rail, usage sinks", () => {
    const accounts = startupPlatformAccounts(RAIL_NAMES);
    expect(new Set(accounts.map((a) => a.id)).size).toBe(accounts.length);
    expect(accounts.filter((a) => a.code === AccountCode.rail_inbound)).toHaveLength(RAIL_NAMES.length);
    expect(accounts.filter((a) => a.code === AccountCode.usage_sink).map((a) => a.ledger)).toEqual([2, 3, 4]);
  });
});

describe("transfer plans", () => {
  it("a deposit's id depends only on (rail, key): retries collide, other rails don't", () => {
    const w1 = agentWalletId("a1");
    const w2 = agentWalletId("a2");
    const t = depositTransfer({ walletId: w1, amountMicro: 5n, rail: "base", idempotencyKey: "tx1" });
    expect(t).toMatchObject({
      debit_account_id: railAccountId("rail_inbound", "base"),
      credit_account_id: w1,
      amount: 5n,
      code: TransferCode.deposit,
      user_data_32: Rail.base,
      flags: TransferFlags.none,
    });
    expect(depositTransfer({ walletId: w2, amountMicro: 9n, rail: "base", idempotencyKey: "tx1" }).id).toBe(t.id);
    expect(depositTransfer({ walletId: w1, amountMicro: 5n, rail: "solana", idempotencyKey: "tx1" }).id).not.toBe(t.id);
    const manual = depositTransfer({ walletId: w1, amountMicro: 5n, rail: null, idempotencyKey: "tx1" });
    expect(manual).toMatchObject({
      debit_account_id: platformAccountId("platform_operator"),
      code: TransferCode.manual_deposit,
      user_data_32: 0,
    });
    expect(manual.id).not.toBe(t.id);
  });

  it("credit limit changes move money between the wallet and its credit line", () => {
    const w = agentWalletId("p");
    const up = creditLimitChangeTransfer(w, { direction: "increase", amountMicro: 7n }, "k");
    const down = creditLimitChangeTransfer(w, { direction: "decrease", amountMicro: 7n }, "k2");
    expect([up.debit_account_id, up.credit_account_id]).toEqual([agentCreditLineId(w), w]);
    expect([down.debit_account_id, down.credit_account_id]).toEqual([w, agentCreditLineId(w)]);
    expect(creditLimitChangeTransfer(w, { direction: "decrease", amountMicro: 1n }, "k").id).toBe(up.id);
    expect(openingCreditLineTransfer(w, 1n).id).toBe(openingCreditLineTransfer(w, 2n).id);
  });
});

describe("plans executed by the ledger", () => {
  let dir: string;
  let engine: EmbeddedClient;
  let ledger: Client;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "accounts-domain-"));
    engine = createEmbeddedClient({ dataDir: dir });
    ledger = createCoalescedClient(engine);
    const results = await ledger.createAccounts(startupPlatformAccounts(RAIL_NAMES));
    expect(results.every((r) => r.status === CreateAccountStatus.created)).toBe(true);
  });
  afterAll(async () => {
    await engine?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("platform accounts at start-up are idempotent", async () => {
    const again = await ledger.createAccounts(startupPlatformAccounts(RAIL_NAMES));
    expect(again.every((r) => r.status === CreateAccountStatus.exists)).toBe(true);
  });

  it("postpaid: concurrent spends never exceed deposits + credit limit (enforced inside the ledger)", async () => {
    const walletId = agentWalletId("spender");
    expect((await ledger.createAccounts(agentWalletAccounts("spender", "postpaid"))).map((r) => r.status)).toEqual([
      CreateAccountStatus.created,
      CreateAccountStatus.created,
    ]);
    const grant = await ledger.createTransfers([openingCreditLineTransfer(walletId, 1_000n)]);
    expect(grant[0]!.status).toBe(CreateTransferStatus.created);
    await ledger.createTransfers([depositTransfer({ walletId, amountMicro: 300n, rail: "base", idempotencyKey: "d1" })]);

    // 20 concurrent session holds of 100 (pending wallet -> escrow, as the sessions service
    // makes them): 1300 available, so exactly 13 fit.
    const holds = Array.from({ length: 20 }, (_, i) => ({
      id: deterministicId("test", "hold", i),
      debit_account_id: walletId,
      credit_account_id: platformAccountId("session_escrow"),
      amount: 100n,
      pending_id: 0n,
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      timeout: 3600,
      ledger: 1,
      code: TransferCode.session_hold,
      flags: TransferFlags.pending,
      timestamp: 0n,
    }));
    const results = await Promise.all(holds.map((h) => ledger.createTransfers([h])));
    const statuses = results.map((r) => r[0]!.status);
    expect(statuses.filter((s) => s === CreateTransferStatus.created)).toHaveLength(13);
    expect(statuses.filter((s) => s === CreateTransferStatus.exceeds_credits)).toHaveLength(7);

    const [wallet, line] = await ledger.lookupAccounts([walletId, agentCreditLineId(walletId)]);
    expect(availableMicro(wallet!)).toBe(0n);
    expect(creditLimitMicro(line!)).toBe(1_000n);
    // Lowering the limit while the credit is in use is refused atomically.
    const lower = await ledger.createTransfers([
      creditLimitChangeTransfer(walletId, { direction: "decrease", amountMicro: 1n }, "lower"),
    ]);
    expect(lower[0]!.status).toBe(CreateTransferStatus.exceeds_credits);
  });

  it("lowering a credit limit below zero is refused by the credit line itself", async () => {
    const walletId = agentWalletId("rich");
    await ledger.createAccounts(agentWalletAccounts("rich", "postpaid"));
    await ledger.createTransfers([openingCreditLineTransfer(walletId, 10n)]);
    await ledger.createTransfers([depositTransfer({ walletId, amountMicro: 500n, rail: null, idempotencyKey: "m1" })]);
    const r = await ledger.createTransfers([
      creditLimitChangeTransfer(walletId, { direction: "decrease", amountMicro: 11n }, "too-far"),
    ]);
    expect(r[0]!.status).toBe(CreateTransferStatus.exceeds_debits);
  });
});

describe("authorization rules", () => {
  const agent = { kind: "agent", id: "a1", scopes: ["ledger:read", "ledger:write"] } as const;
  const rail = { kind: "rail", id: "base", scopes: ["ledger:read", "rail:settle"] } as const;
  const admin = { kind: "admin", id: "ops", scopes: ["admin"] } as const;

  function denied(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      expect(ConnectError.from(err).code).toBe(Code.PermissionDenied);
      return;
    }
    throw new Error("expected PERMISSION_DENIED");
  }

  it("owned accounts are derived from the principal's identity", () => {
    expect(ownedAccountIds(agent).has(agentWalletId("a1"))).toBe(true);
    expect(ownedAccountIds(agent).has(agentWalletId("a2"))).toBe(false);
    expect(ownedAccountIds(rail).has(railAccountId("rail_inbound", "base"))).toBe(true);
    expect(ownedAccountIds(rail).has(railAccountId("rail_inbound", "solana"))).toBe(false);
    authorizeRead(agent, agentWalletId("a1"));
    authorizeRead(admin, agentWalletId("a2"));
    denied(() => authorizeRead(agent, agentWalletId("a2")));
  });

  it("AccountService deposits: admins only; rail adapters report through SettlementService (issue 13)", () => {
    denied(() => authorizeDeposit(rail, "base"));
    authorizeDeposit(admin, null);
    authorizeDeposit(admin, "base");
    denied(() => authorizeDeposit(rail, "solana"));
    denied(() => authorizeDeposit(rail, null));
    denied(() => authorizeDeposit(agent, "base"));
  });
});

describe("page tokens", () => {
  it("round-trip for the same query and are refused for another", () => {
    const q = ["ListTransfers", 1n, 0, 0, 0n, 0n];
    const token = encodePageToken(123456789n, q);
    const v: Violation[] = [];
    expect(decodePageToken(token, q, v)).toBe(123456789n);
    expect(v).toEqual([]);
    decodePageToken(token, ["ListTransfers", 2n, 0, 0, 0n, 0n], v);
    expect(v.map((x) => x.field)).toEqual(["page_token"]);
  });
});
