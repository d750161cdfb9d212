/**
 * AccountService end to end: the real daemon, called with the generated client over native gRPC
 * and over Connect/JSON (every scenario runs on both), plus plain HTTP JSON.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import {
  AccountKind,
  Rail,
  TransferDirection,
  TransferKind,
  TransferPhase,
} from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { agentWalletId, usageSinkId } from "../../src/domain/accounts.js";
import { idToHex } from "../../src/domain/ids.js";
import { expectInvalid, expectStatus, insufficientFundsOf, keyReusedOf } from "./errors.js";
import { newKey, startHarness, type AccountClient, type Harness, type TransportKind } from "./harness.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";

const execFileP = promisify(execFile);

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

const wallet = (agentId: string) => ({ ref: { case: "agentWallet" as const, value: agentId } });
const byId = (accountId: string) => ({ ref: { case: "accountId" as const, value: accountId } });

describe.each<TransportKind>(["grpc", "connect-json"])("AccountService over %s", (transport) => {
  let admin: AccountClient;
  let base: AccountClient;
  let n = 0;
  const fresh = (p: string) => `${p}-${transport}-${++n}`;

  beforeAll(async () => {
    admin = await h.client("admin", "ops-1", { transport });
    // Rail deposits through AccountService are admin-only since issue 13 (adapters report through
    // SettlementService.ReportDeposit): an admin credits "from a rail" here.
    base = await h.client("admin", "ops-rail", { transport });
  });

  async function openPrepaid(agentId: string): Promise<{ agent: AccountClient; accountId: string }> {
    const agent = await h.client("agent", agentId, { transport });
    const { account } = await agent.openAgentWallet({ mode: WalletMode.PREPAID });
    return { agent, accountId: account!.accountId };
  }

  it("an agent opens its own prepaid wallet; reopening returns the same wallet", async () => {
    const agentId = fresh("alice");
    const agent = await h.client("agent", agentId, { transport });
    const first = await agent.openAgentWallet({ mode: WalletMode.PREPAID });
    expect(first.account).toMatchObject({
      accountId: idToHex(agentWalletId(agentId)),
      kind: AccountKind.AGENT_WALLET_PREPAID,
      history: true,
      closed: false,
      creditLimitMicro: 0n,
      balance: { postedMicro: 0n, availableMicro: 0n, pendingMicro: 0n },
    });
    expect(first.account!.createTime!.seconds).toBeGreaterThan(0n);
    const again = await agent.openAgentWallet({ agentId, mode: WalletMode.PREPAID });
    expect(again.account!.accountId).toBe(first.account!.accountId);
    expect(again.account!.createTime).toEqual(first.account!.createTime);
    // Another mode for the same agent is a conflict, not a second wallet.
    await expectStatus(
      admin.openAgentWallet({ agentId, mode: WalletMode.POSTPAID, creditLimitMicro: 5n }),
      Code.AlreadyExists,
      "ACCOUNT_EXISTS_WITH_DIFFERENT_TERMS",
    );
  });

  it("deposits from a rail and by hand credit the wallet; balances are exact", async () => {
    const { agent, accountId } = await openPrepaid(fresh("bob"));
    const railDeposit = await base.deposit({
      account: byId(accountId),
      amountMicro: 2_500_000n,
      rail: Rail.BASE,
      idempotencyKey: newKey("0xabc"),
    });
    expect(railDeposit.transfer).toMatchObject({
      creditAccountId: accountId,
      amountMicro: 2_500_000n,
      kind: TransferKind.DEPOSIT,
      phase: TransferPhase.POSTED,
      rail: Rail.BASE,
    });
    const manual = await admin.deposit({
      account: byId(accountId),
      amountMicro: 1n,
      rail: Rail.UNSPECIFIED,
      idempotencyKey: newKey("ticket"),
    });
    expect(manual.transfer!.kind).toBe(TransferKind.MANUAL_DEPOSIT);
    const { account } = await agent.getAccount({ account: byId(accountId) });
    expect(account!.balance).toMatchObject({
      creditsPostedMicro: 2_500_001n,
      debitsPostedMicro: 0n,
      postedMicro: 2_500_001n,
      availableMicro: 2_500_001n,
    });
  });

  it("a retried deposit returns the original transfer and credits once", async () => {
    const { agent, accountId } = await openPrepaid(fresh("carol"));
    const req = { account: byId(accountId), amountMicro: 700n, rail: Rail.BASE, idempotencyKey: newKey("tx") };
    const first = await base.deposit(req);
    const retries = await Promise.all([base.deposit(req), base.deposit(req), admin.deposit(req)]);
    for (const r of retries) expect(r.transfer).toEqual(first.transfer);
    const { account } = await agent.getAccount({ account: byId(accountId) });
    expect(account!.balance!.creditsPostedMicro).toBe(700n);
    const list = await agent.listTransfers({ account: byId(accountId) });
    expect(list.entries.map((e) => e.transfer!.transferId)).toEqual([first.transfer!.transferId]);
  });

  it("reusing a deposit key for a different request is a distinct error and moves nothing", async () => {
    const a = await openPrepaid(fresh("dave"));
    const b = await openPrepaid(fresh("erin"));
    const key = newKey("tx");
    const original = await base.deposit({ account: byId(a.accountId), amountMicro: 100n, rail: Rail.BASE, idempotencyKey: key });
    const otherAmount = await expectStatus(
      base.deposit({ account: byId(a.accountId), amountMicro: 101n, rail: Rail.BASE, idempotencyKey: key }),
      Code.AlreadyExists,
      "IDEMPOTENCY_KEY_REUSED",
    );
    expect(keyReusedOf(otherAmount)).toMatchObject({ idempotencyKey: key, existingId: original.transfer!.transferId });
    await expectStatus(
      base.deposit({ account: byId(b.accountId), amountMicro: 100n, rail: Rail.BASE, idempotencyKey: key }),
      Code.AlreadyExists,
      "IDEMPOTENCY_KEY_REUSED",
    );
    expect((await a.agent.getAccount({ account: byId(a.accountId) })).account!.balance!.creditsPostedMicro).toBe(100n);
    expect((await b.agent.getAccount({ account: byId(b.accountId) })).account!.balance!.creditsPostedMicro).toBe(0n);
    // The same key on another rail is another payment (keys are scoped by rail).
    const solana = await h.client("admin", "ops-solana", { transport });
    const other = await solana.deposit({ account: byId(a.accountId), amountMicro: 5n, rail: Rail.SOLANA, idempotencyKey: key });
    expect(other.transfer!.transferId).not.toBe(original.transfer!.transferId);
  });

  it("a deposit to a wallet that does not exist yet is NOT_FOUND and the key stays usable", async () => {
    const agentId = fresh("frank");
    const key = newKey("tx");
    const req = { account: wallet(agentId), amountMicro: 42n, rail: Rail.BASE, idempotencyKey: key };
    await expectStatus(base.deposit(req), Code.NotFound, "ACCOUNT_NOT_FOUND");
    const { agent } = await openPrepaid(agentId);
    const ok = await base.deposit(req);
    expect(ok.transfer!.amountMicro).toBe(42n);
    expect((await agent.getAccount({ account: wallet(agentId) })).account!.balance!.availableMicro).toBe(42n);
  });

  it("postpaid: the credit line is in the ledger; limits change by transfer; reopen is idempotent", async () => {
    const agentId = fresh("gina");
    const opened = await admin.openAgentWallet({ agentId, mode: WalletMode.POSTPAID, creditLimitMicro: 1_000n });
    expect(opened.account).toMatchObject({
      kind: AccountKind.AGENT_WALLET_POSTPAID,
      creditLimitMicro: 1_000n,
      balance: { availableMicro: 1_000n, postedMicro: 1_000n },
    });
    const again = await admin.openAgentWallet({ agentId, mode: WalletMode.POSTPAID, creditLimitMicro: 1_000n });
    expect(again.account!.creditLimitMicro).toBe(1_000n);
    await expectStatus(
      admin.openAgentWallet({ agentId, mode: WalletMode.POSTPAID, creditLimitMicro: 2_000n }),
      Code.AlreadyExists,
      "ACCOUNT_EXISTS_WITH_DIFFERENT_TERMS",
    );
    const key = newKey("limit");
    const up = await admin.adjustCreditLimit({ account: wallet(agentId), change: { case: "increaseMicro", value: 500n }, idempotencyKey: key });
    expect(up.account).toMatchObject({ creditLimitMicro: 1_500n, balance: { availableMicro: 1_500n } });
    expect(up.transfer!.kind).toBe(TransferKind.CREDIT_LINE);
    const retry = await admin.adjustCreditLimit({ account: wallet(agentId), change: { case: "increaseMicro", value: 500n }, idempotencyKey: key });
    expect(retry.transfer).toEqual(up.transfer);
    expect(retry.account!.creditLimitMicro).toBe(1_500n);
    await expectStatus(
      admin.adjustCreditLimit({ account: wallet(agentId), change: { case: "decreaseMicro", value: 500n }, idempotencyKey: key }),
      Code.AlreadyExists,
      "IDEMPOTENCY_KEY_REUSED",
    );
    const down = await admin.adjustCreditLimit({ account: wallet(agentId), change: { case: "decreaseMicro", value: 1_500n }, idempotencyKey: newKey("limit") });
    expect(down.account).toMatchObject({ creditLimitMicro: 0n, balance: { availableMicro: 0n } });
    await expectStatus(
      admin.adjustCreditLimit({ account: wallet(agentId), change: { case: "decreaseMicro", value: 1n }, idempotencyKey: newKey("limit") }),
      Code.FailedPrecondition,
      "INSUFFICIENT_FUNDS",
    );
  });

  it("postpaid: concurrent spends of the credit line never overdraw it", async () => {
    // Lowering the limit debits the wallet, so concurrent decreases compete for the same credit
    // exactly like concurrent spends: the ledger lets through only what the line can cover.
    const agentId = fresh("hank");
    await admin.openAgentWallet({ agentId, mode: WalletMode.POSTPAID, creditLimitMicro: 1_000n });
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () =>
        admin.adjustCreditLimit({ account: wallet(agentId), change: { case: "decreaseMicro", value: 150n }, idempotencyKey: newKey("spend") }),
      ),
    );
    const ok = results.filter((r) => r.status === "fulfilled").length;
    expect(ok).toBe(6);
    for (const r of results) {
      if (r.status === "rejected") {
        const err = await expectStatus(Promise.reject(r.reason), Code.FailedPrecondition, "INSUFFICIENT_FUNDS");
        expect(insufficientFundsOf(err)).toMatchObject({ requiredMicro: 150n });
        expect(insufficientFundsOf(err)!.availableMicro).toBeLessThan(150n);
      }
    }
    const { account } = await admin.getAccount({ account: wallet(agentId) });
    expect(account).toMatchObject({ creditLimitMicro: 100n, balance: { availableMicro: 100n } });
  });

  it("an author opens and reads their own earnings account", async () => {
    const authorId = fresh("author");
    const author = await h.client("author", authorId, { transport });
    const opened = await author.openAuthorEarnings({});
    expect(opened.account).toMatchObject({ kind: AccountKind.AUTHOR_EARNINGS, history: true });
    const read = await author.getAccount({ account: { ref: { case: "authorEarnings", value: authorId } } });
    expect(read.account!.accountId).toBe(opened.account!.accountId);
  });

  it("admins open platform accounts idempotently (they already exist from start-up)", async () => {
    const escrow = await admin.openPlatformAccount({ kind: AccountKind.SESSION_ESCROW });
    expect(escrow.account!.kind).toBe(AccountKind.SESSION_ESCROW);
    const inbound = await admin.openPlatformAccount({ kind: AccountKind.RAIL_INBOUND, rail: Rail.LIGHTNING });
    expect(inbound.account!.kind).toBe(AccountKind.RAIL_INBOUND);
    await expectInvalid(admin.openPlatformAccount({ kind: AccountKind.RAIL_INBOUND }), ["rail"]);
    await expectInvalid(admin.openPlatformAccount({ kind: AccountKind.AGENT_WALLET_PREPAID }), ["kind"]);
  });

  it("lists transfers newest first, paged without gaps or repeats, with filters", async () => {
    const { agent, accountId } = await openPrepaid(fresh("ivan"));
    const amounts = [1n, 2n, 3n, 4n, 5n, 6n, 7n];
    for (const amountMicro of amounts) {
      // Sequential, so ledger order = amount order.
      await (amountMicro % 2n === 0n ? admin : base).deposit({
        account: byId(accountId),
        amountMicro,
        rail: amountMicro % 2n === 0n ? Rail.UNSPECIFIED : Rail.BASE,
        idempotencyKey: newKey("tx"),
      });
    }
    const seen: bigint[] = [];
    let pageToken = "";
    const pageSizes: number[] = [];
    do {
      const page = await agent.listTransfers({ account: byId(accountId), pageSize: 3, pageToken });
      pageSizes.push(page.entries.length);
      for (const e of page.entries) {
        expect(e.direction).toBe(TransferDirection.CREDIT);
        seen.push(e.transfer!.amountMicro);
      }
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(pageSizes).toEqual([3, 3, 1]);
    expect(seen).toEqual([...amounts].reverse());

    const manual = await agent.listTransfers({ account: byId(accountId), kind: TransferKind.MANUAL_DEPOSIT });
    expect(manual.entries.map((e) => e.transfer!.amountMicro)).toEqual([6n, 4n, 2n]);
    const debits = await agent.listTransfers({ account: byId(accountId), direction: TransferDirection.DEBIT });
    expect(debits.entries).toEqual([]);

    // Time range: [time of 3rd, time of 6th) -> 3, 4, 5.
    const all = await agent.listTransfers({ account: byId(accountId) });
    const t = (amount: bigint) => all.entries.find((e) => e.transfer!.amountMicro === amount)!.transfer!.createTime;
    const ranged = await agent.listTransfers({ account: byId(accountId), startTime: t(3n), endTime: t(6n) });
    expect(ranged.entries.map((e) => e.transfer!.amountMicro)).toEqual([5n, 4n, 3n]);

    // A page token only continues the query it came from.
    const first = await agent.listTransfers({ account: byId(accountId), pageSize: 2 });
    await expectInvalid(
      agent.listTransfers({ account: byId(accountId), pageSize: 2, pageToken: first.nextPageToken, kind: TransferKind.DEPOSIT }),
      ["page_token"],
    );
  });

  it("balance history: the balance after each transfer, newest first, paged", async () => {
    const { agent, accountId } = await openPrepaid(fresh("judy"));
    for (const amountMicro of [10n, 20n, 30n, 40n]) {
      await base.deposit({ account: byId(accountId), amountMicro, rail: Rail.BASE, idempotencyKey: newKey("tx") });
    }
    const p1 = await agent.getBalanceHistory({ account: byId(accountId), pageSize: 3 });
    expect(p1.snapshots.map((s) => s.balance!.creditsPostedMicro)).toEqual([100n, 60n, 30n]);
    const p2 = await agent.getBalanceHistory({ account: byId(accountId), pageSize: 3, pageToken: p1.nextPageToken });
    expect(p2.snapshots.map((s) => s.balance!.availableMicro)).toEqual([10n]);
    expect(p2.nextPageToken).toBe("");
    // Platform accounts keep no history.
    const escrow = await admin.openPlatformAccount({ kind: AccountKind.SESSION_ESCROW });
    await expectStatus(
      admin.getBalanceHistory({ account: byId(escrow.account!.accountId) }),
      Code.FailedPrecondition,
      "NO_HISTORY",
    );
  });

  it("invalid requests name the field and the rule", async () => {
    const { accountId } = await openPrepaid(fresh("kim"));
    const e1 = await expectInvalid(
      base.deposit({ account: byId(accountId), amountMicro: 0n, rail: Rail.BASE, idempotencyKey: "" }),
      ["amount_micro", "idempotency_key"],
    );
    expect(e1.rawMessage).toContain("amount_micro: must be > 0");
    await expectInvalid(base.deposit({ amountMicro: 1n, rail: Rail.BASE, idempotencyKey: "k" }), ["account"]);
    await expectInvalid(admin.getAccount({ account: byId("xyz") }), ["account.account_id"]);
    await expectInvalid(admin.getAccount({ account: byId("0".repeat(32)) }), ["account.account_id"]);
    await expectInvalid(admin.getAccount({ account: wallet("has space") }), ["account.agent_wallet"]);
    await expectInvalid(admin.openAgentWallet({ agentId: "x" }), ["mode"]);
    await expectInvalid(
      admin.openAgentWallet({ agentId: "x", mode: WalletMode.PREPAID, creditLimitMicro: 5n }),
      ["credit_limit_micro"],
    );
    await expectInvalid(admin.listTransfers({ account: byId(accountId), pageSize: 5000 }), ["page_size"]);
    await expectInvalid(admin.listTransfers({ account: byId(accountId), pageToken: "garbage" }), ["page_token"]);
    await expectInvalid(
      admin.listTransfers({ account: byId(accountId), startTime: { seconds: 20n, nanos: 0 }, endTime: { seconds: 10n, nanos: 0 } }),
      ["end_time"],
    );
    await expectInvalid(
      base.deposit({ account: byId(accountId), amountMicro: 1n << 63n, rail: Rail.BASE, idempotencyKey: "k" }),
      ["amount_micro"],
    );
    await expectInvalid(admin.adjustCreditLimit({ account: byId(accountId), idempotencyKey: "k" }), ["change"]);
  });

  it("unknown accounts are NOT_FOUND", async () => {
    const unknown = idToHex(agentWalletId(fresh("nobody")));
    await expectStatus(admin.getAccount({ account: byId(unknown) }), Code.NotFound, "ACCOUNT_NOT_FOUND");
    await expectStatus(admin.listTransfers({ account: byId(unknown) }), Code.NotFound, "ACCOUNT_NOT_FOUND");
    const { agent } = await openPrepaid(fresh("lee"));
    await expectStatus(agent.getAccount({ account: wallet("never-opened") }), Code.PermissionDenied, "PERMISSION_DENIED");
    // Usage sinks live on usage ledgers (tokens, not money): not readable as money accounts.
    await expectStatus(
      admin.getAccount({ account: byId(idToHex(usageSinkId(2))) }),
      Code.FailedPrecondition,
      "NOT_A_MONEY_ACCOUNT",
    );
  });
});

describe("plain HTTP JSON", () => {
  it("GetAccount over POST JSON renders 64-bit money as strings", async () => {
    const admin = await h.client("admin", "ops-json", { transport: "connect-json" });
    const agentId = "json-agent";
    const opened = await admin.openAgentWallet({ agentId, mode: WalletMode.PREPAID });
    await admin.deposit({ account: wallet(agentId), amountMicro: 9_007_199_254_740_993n, rail: Rail.UNSPECIFIED, idempotencyKey: "json-1" });
    const token = await h.daemon.token("agent", agentId);
    const res = await fetch(`http://${h.daemon.httpAddr}/masques.ledger.v1.AccountService/GetAccount`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ account: { agentWallet: agentId } }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { account: { accountId: string; kind: string; balance: Record<string, string> } };
    expect(body.account.accountId).toBe(opened.account!.accountId);
    expect(body.account.kind).toBe("ACCOUNT_KIND_AGENT_WALLET_PREPAID");
    // 2^53 + 1: would be corrupted by a JSON number.
    expect(body.account.balance.availableMicro).toBe("9007199254740993");

    const bad = await fetch(`http://${h.daemon.httpAddr}/masques.ledger.v1.AccountService/Deposit`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ account: { agentWallet: agentId }, amountMicro: "5", rail: "RAIL_BASE", idempotencyKey: "j" }),
    });
    expect(bad.status).toBe(403);
    const err = (await bad.json()) as { code: string; message: string };
    expect(err.code).toBe("permission_denied");
  });
});

describe("buf curl via server reflection (no proto files)", () => {
  it("opens a wallet and reads it; errors carry their details", async () => {
    const token = await h.daemon.token("admin", "ops-curl");
    const curl = async (method: string, body: unknown) => {
      try {
        const { stdout } = await execFileP(
          "node_modules/.bin/buf",
          [
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "-H",
            `authorization: Bearer ${token}`,
            "-d",
            JSON.stringify(body),
            `http://${h.daemon.grpcAddr}/masques.ledger.v1.AccountService/${method}`,
          ],
          { timeout: 60_000 },
        );
        return JSON.parse(stdout) as Record<string, unknown>;
      } catch (err) {
        return JSON.parse((err as { stderr: string }).stderr) as Record<string, unknown>;
      }
    };
    const opened = await curl("OpenAgentWallet", { agentId: "curl-agent", mode: "WALLET_MODE_PREPAID" });
    expect(opened).toMatchObject({ account: { kind: "ACCOUNT_KIND_AGENT_WALLET_PREPAID", history: true } });
    const bad = await curl("GetAccount", { account: { accountId: "nope" } });
    expect(bad).toMatchObject({ code: "invalid_argument", message: "account.account_id: must be 32 lowercase hex digits" });
    expect((bad.details as { type: string }[]).map((d) => d.type)).toEqual([
      "masques.ledger.v1.ErrorInfo",
      "masques.ledger.v1.BadRequest",
    ]);
  });
});

describe("crash safety", () => {
  it("after a SIGKILL and restart, balances are intact and a retried deposit returns the original", async () => {
    const admin = await h.client("admin", "ops-crash");
    const agentId = "crash-agent";
    await admin.openAgentWallet({ agentId, mode: WalletMode.POSTPAID, creditLimitMicro: 300n });
    const req = { account: wallet(agentId), amountMicro: 1_234n, rail: Rail.UNSPECIFIED, idempotencyKey: "crash-1" };
    const original = await admin.deposit(req);
    await h.daemon.kill();
    await h.daemon.start();
    const after = await h.client("admin", "ops-crash");
    const retried = await after.deposit(req);
    expect(retried.transfer).toEqual(original.transfer);
    const { account } = await after.getAccount({ account: wallet(agentId) });
    expect(account).toMatchObject({ creditLimitMicro: 300n, balance: { availableMicro: 1_534n } });
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    await expectAnalyticsReconcile(h.daemon);
  });
});
