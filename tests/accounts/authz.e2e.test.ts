/**
 * Nobody acts for someone else (seed 003, confused deputy): every cross-principal attempt fails
 * with PERMISSION_DENIED and moves nothing. Each case runs against the real daemon over native
 * gRPC; after all of them, every victim account's balances and statement are exactly as before.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WalletMode } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { AccountKind, Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { expectDenied } from "./errors.js";
import { newKey, startHarness, type AccountClient, type Harness } from "./harness.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";

let h: Harness;
let admin: AccountClient;
/** Victims: agent A (prepaid, funded), agent P (postpaid), author X. */
let agentA: AccountClient;
let agentB: AccountClient;
let authorX: AccountClient;
let authorY: AccountClient;
let railBase: AccountClient;
let railSolana: AccountClient;
let walletA = "";
let walletP = "";
let earningsX = "";

const byId = (accountId: string) => ({ ref: { case: "accountId" as const, value: accountId } });
const agentRef = (agentId: string) => ({ ref: { case: "agentWallet" as const, value: agentId } });
const authorRef = (authorId: string) => ({ ref: { case: "authorEarnings" as const, value: authorId } });

async function snapshot() {
  const out: Record<string, unknown> = {};
  for (const id of [walletA, walletP, earningsX]) {
    const { account } = await admin.getAccount({ account: byId(id) });
    const list = await admin.listTransfers({ account: byId(id), pageSize: 1000 });
    out[id] = { balance: account!.balance, creditLimit: account!.creditLimitMicro, transfers: list.entries.length };
  }
  return out;
}
let before: Record<string, unknown>;

beforeAll(async () => {
  h = await startHarness();
  admin = await h.client("admin", "ops");
  agentA = await h.client("agent", "agent-a");
  agentB = await h.client("agent", "agent-b");
  authorX = await h.client("author", "author-x");
  authorY = await h.client("author", "author-y");
  railBase = await h.client("rail", "base");
  railSolana = await h.client("rail", "solana");
  walletA = (await agentA.openAgentWallet({ mode: WalletMode.PREPAID })).account!.accountId;
  await agentB.openAgentWallet({ mode: WalletMode.PREPAID });
  walletP = (await admin.openAgentWallet({ agentId: "agent-p", mode: WalletMode.POSTPAID, creditLimitMicro: 1_000n })).account!
    .accountId;
  earningsX = (await authorX.openAuthorEarnings({})).account!.accountId;
  await authorY.openAuthorEarnings({});
  await admin.deposit({ account: byId(walletA), amountMicro: 5_000n, rail: Rail.BASE, idempotencyKey: newKey() });
  before = await snapshot();
});
afterAll(async () => {
  await h?.stop();
});

describe("cross-principal attempts are PERMISSION_DENIED", () => {
  it("an agent reads another agent's wallet (by owner and by id), statement or history", async () => {
    await expectDenied(agentB.getAccount({ account: agentRef("agent-a") }));
    await expectDenied(agentB.getAccount({ account: byId(walletA) }));
    await expectDenied(agentB.listTransfers({ account: byId(walletA) }));
    await expectDenied(agentB.getBalanceHistory({ account: agentRef("agent-a") }));
  });

  it("an agent deposits into its own or another wallet (from any rail or by hand)", async () => {
    for (const rail of [Rail.BASE, Rail.SOLANA, Rail.UNSPECIFIED]) {
      await expectDenied(agentA.deposit({ account: byId(walletA), amountMicro: 1n, rail, idempotencyKey: newKey() }));
      await expectDenied(agentB.deposit({ account: byId(walletA), amountMicro: 1n, rail, idempotencyKey: newKey() }));
    }
  });

  it("an agent opens a wallet for another agent, or grants itself credit", async () => {
    await expectDenied(agentB.openAgentWallet({ agentId: "agent-a", mode: WalletMode.PREPAID }));
    await expectDenied(agentB.openAgentWallet({ agentId: "agent-new", mode: WalletMode.PREPAID }));
    await expectDenied(agentA.openAgentWallet({ mode: WalletMode.POSTPAID, creditLimitMicro: 1_000_000n }));
    await expectDenied(
      agentA.adjustCreditLimit({ account: byId(walletP), change: { case: "increaseMicro", value: 1n }, idempotencyKey: newKey() }),
    );
    const agentP = await h.client("agent", "agent-p");
    await expectDenied(
      agentP.adjustCreditLimit({ account: agentRef("agent-p"), change: { case: "increaseMicro", value: 1n }, idempotencyKey: newKey() }),
    );
  });

  it("a rail adapter deposits through AccountService (even on its own rail), via another rail, by hand, or reads a wallet", async () => {
    // issue 13: chain deposits are credited only from SettlementService.ReportDeposit.
    await expectDenied(railBase.deposit({ account: byId(walletA), amountMicro: 1n, rail: Rail.BASE, idempotencyKey: newKey() }));
    // base credits a deposit claiming to come from solana: refused.
    await expectDenied(railBase.deposit({ account: byId(walletA), amountMicro: 1n, rail: Rail.SOLANA, idempotencyKey: newKey() }));
    await expectDenied(railSolana.deposit({ account: byId(walletA), amountMicro: 1n, rail: Rail.BASE, idempotencyKey: newKey() }));
    await expectDenied(railBase.deposit({ account: byId(walletA), amountMicro: 1n, rail: Rail.UNSPECIFIED, idempotencyKey: newKey() }));
    await expectDenied(railBase.getAccount({ account: byId(walletA) }));
    // A rail token without rail:settle cannot deposit even on its own rail.
    const readOnlyRail = await h.client("rail", "base", { scopes: ["ledger:read"] });
    await expectDenied(readOnlyRail.deposit({ account: byId(walletA), amountMicro: 1n, rail: Rail.BASE, idempotencyKey: newKey() }));
  });

  it("an author reads or opens another author's earnings; an agent reads an author's", async () => {
    await expectDenied(authorY.getAccount({ account: authorRef("author-x") }));
    await expectDenied(authorY.getAccount({ account: byId(earningsX) }));
    await expectDenied(authorY.listTransfers({ account: byId(earningsX) }));
    await expectDenied(authorY.openAuthorEarnings({ authorId: "author-x" }));
    await expectDenied(agentA.getAccount({ account: byId(earningsX) }));
    await expectDenied(agentA.openAuthorEarnings({ authorId: "agent-a" }));
    await expectDenied(authorX.getAccount({ account: byId(walletA) }));
  });

  it("non-admins open platform accounts or read them", async () => {
    for (const c of [agentA, authorX, railBase]) {
      await expectDenied(c.openPlatformAccount({ kind: AccountKind.PLATFORM_REVENUE }));
      await expectDenied(c.openPlatformAccount({ kind: AccountKind.RAIL_INBOUND, rail: Rail.BASE }));
    }
    const escrow = (await admin.openPlatformAccount({ kind: AccountKind.SESSION_ESCROW })).account!.accountId;
    await expectDenied(agentA.getAccount({ account: byId(escrow) }));
    // An admin-kind token without the admin scope is not an admin.
    const weakAdmin = await h.client("admin", "ops-2", { scopes: ["ledger:read"] });
    await expectDenied(weakAdmin.openPlatformAccount({ kind: AccountKind.PLATFORM_REVENUE }));
    await expectDenied(weakAdmin.deposit({ account: byId(walletA), amountMicro: 1n, rail: Rail.UNSPECIFIED, idempotencyKey: newKey() }));
  });

  it("a token without the read scope cannot read even its own wallet", async () => {
    const writeOnly = await h.client("agent", "agent-a", { scopes: ["ledger:write"] });
    await expectDenied(writeOnly.getAccount({ account: byId(walletA) }));
    const readOnly = await h.client("agent", "agent-c", { scopes: ["ledger:read"] });
    await expectDenied(readOnly.openAgentWallet({ mode: WalletMode.PREPAID }));
  });

  it("owners still can (the refusals above are not blanket refusals)", async () => {
    expect((await agentA.getAccount({ account: agentRef("agent-a") })).account!.accountId).toBe(walletA);
    expect((await authorX.getAccount({ account: authorRef("author-x") })).account!.accountId).toBe(earningsX);
    const inbound = await admin.openPlatformAccount({ kind: AccountKind.RAIL_INBOUND, rail: Rail.BASE });
    expect((await railBase.getAccount({ account: byId(inbound.account!.accountId) })).account!.kind).toBe(AccountKind.RAIL_INBOUND);
  });

  it("nothing moved: every victim's balances and statement are unchanged", async () => {
    expect(await snapshot()).toEqual(before);
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    await expectAnalyticsReconcile(h.daemon);
  });
});
