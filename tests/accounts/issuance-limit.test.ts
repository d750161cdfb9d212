/**
 * Values past the API's range (issue 11): no amount the daemon stores or returns may leave
 * 0..2^63-1 micro-USD. A wallet credited past 2^63-1, or the platform operator account after
 * manual deposits totalling more than that, used to become unreadable (GetAccount -> INTERNAL
 * "does not fit the API range"). Now the ledger itself refuses the issuance that would pass the
 * limit (ADR 0055), as INVALID_ARGUMENT naming the field, with nothing moved; the guarantee holds
 * for concurrent calls through two service instances (two daemons) over one ledger.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import {
  AdjustCreditLimitRequestSchema,
  DepositRequestSchema,
  DepositResponseSchema,
  GetAccountRequestSchema,
  GetAccountResponseSchema,
  OpenAgentWalletRequestSchema,
  WalletMode,
} from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { BadRequestSchema, Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { AMOUNT_MAX_MICRO, agentWalletId, platformAccountId, railAccountId } from "../../src/domain/accounts.js";
import { issuanceHeadroomMicro, issuanceLimitControlId } from "../../src/domain/balance-bounds.js";
import { idToHex } from "../../src/domain/ids.js";
import { expectInvalid, rpcError } from "./errors.js";
import { ADMIN, ctxFor, openInProcessLedger, type AccountHandlers, type InProcessLedger } from "./in-process.js";

const MAX = AMOUNT_MAX_MICRO;
const ctx = ctxFor(ADMIN);
const byId = (id: bigint) => ({ ref: { case: "accountId" as const, value: idToHex(id) } });

let ledger: InProcessLedger | undefined;
afterEach(async () => {
  await ledger?.close();
  ledger = undefined;
});

async function fresh(): Promise<InProcessLedger> {
  ledger = await openInProcessLedger("issuance-limit");
  return ledger;
}

async function openWallet(svc: AccountHandlers, agentId: string, mode = WalletMode.PREPAID, creditLimitMicro = 0n) {
  await svc.openAgentWallet(create(OpenAgentWalletRequestSchema, { agentId, mode, creditLimitMicro }), ctx);
  return agentWalletId(agentId);
}

async function deposit(svc: AccountHandlers, walletId: bigint, amountMicro: bigint, idempotencyKey: string, rail = Rail.UNSPECIFIED) {
  const req = create(DepositRequestSchema, { account: byId(walletId), amountMicro, rail, idempotencyKey });
  return create(DepositResponseSchema, await svc.deposit(req, ctx));
}

async function account(svc: AccountHandlers, id: bigint) {
  const r = create(GetAccountResponseSchema, await svc.getAccount(create(GetAccountRequestSchema, { account: byId(id) }), ctx));
  return r.account!;
}

async function headroom(l: InProcessLedger): Promise<bigint> {
  const [control] = await l.engine.lookupAccounts([issuanceLimitControlId()]);
  return issuanceHeadroomMicro(control!);
}

const OPERATOR = platformAccountId("platform_operator");

describe("the issuance limit keeps every account inside the API's range", () => {
  it("a wallet cannot be credited past 2^63-1: the next deposit is INVALID_ARGUMENT on amount_micro", async () => {
    const l = await fresh();
    const svc = l.service();
    const a = await openWallet(svc, "full");
    await deposit(svc, a, MAX, "fill");
    const err = await expectInvalid(deposit(svc, a, 1n, "one-more"), ["amount_micro"]);
    expect(err.rawMessage).toContain("at most 0 can still be issued");

    const wallet = await account(svc, a);
    expect(wallet.balance).toMatchObject({ creditsPostedMicro: MAX, postedMicro: MAX, availableMicro: MAX });
    // The refusal is stable: the same request retried is refused the same way.
    await expectInvalid(deposit(svc, a, 1n, "one-more"), ["amount_micro"]);
    // A retry of the accepted deposit still returns the original, and issues nothing more.
    const again = await deposit(svc, a, MAX, "fill");
    expect(again.transfer?.amountMicro).toBe(MAX);
    expect((await account(svc, a)).balance?.creditsPostedMicro).toBe(MAX);
  });

  it("the platform operator's lifetime debits cannot pass 2^63-1 across wallets, and rail deposits share the limit", async () => {
    const l = await fresh();
    const svc = l.service();
    const a = await openWallet(svc, "first");
    const b = await openWallet(svc, "second");
    await deposit(svc, a, MAX - 5n, "big");
    await deposit(svc, b, 5n, "small");
    await expectInvalid(deposit(svc, b, 1n, "over"), ["amount_micro"]);
    await expectInvalid(deposit(svc, b, 1n, "rail-over", Rail.BASE), ["amount_micro"]);

    const operator = await account(svc, OPERATOR);
    expect(operator.balance).toMatchObject({ debitsPostedMicro: MAX, postedMicro: -MAX });
    const base = await account(svc, railAccountId("rail_inbound", "base"));
    expect(base.balance?.debitsPostedMicro).toBe(0n);
    expect((await account(svc, b)).balance?.creditsPostedMicro).toBe(5n);
  });

  it("credit lines are issuance: opening or raising past the limit names the field; lowering and re-raising cannot cycle past it", async () => {
    const l = await fresh();
    const svc = l.service();
    const a = await openWallet(svc, "rich");
    const p = await openWallet(svc, "postpaid", WalletMode.POSTPAID, 60n);
    await deposit(svc, a, MAX - 100n, "most");
    expect(await headroom(l)).toBe(40n);

    await expectInvalid(
      (async () => svc.openAgentWallet(create(OpenAgentWalletRequestSchema, { agentId: "late", mode: WalletMode.POSTPAID, creditLimitMicro: 41n }), ctx))(),
      ["credit_limit_micro"],
    );
    const change = async (c: { case: "increaseMicro" | "decreaseMicro"; value: bigint }, key: string) =>
      svc.adjustCreditLimit(create(AdjustCreditLimitRequestSchema, { account: byId(p), change: c, idempotencyKey: key }), ctx);
    await change({ case: "decreaseMicro", value: 60n }, "down");
    await expectInvalid(change({ case: "increaseMicro", value: 60n }, "up"), ["increase_micro"]);
    await change({ case: "increaseMicro", value: 40n }, "up-40");
    expect(await headroom(l)).toBe(0n);
    await expectInvalid(change({ case: "increaseMicro", value: 1n }, "up-1"), ["increase_micro"]);
    const wallet = await account(svc, p);
    expect(wallet).toMatchObject({ creditLimitMicro: 40n, balance: { creditsPostedMicro: 100n, debitsPostedMicro: 60n } });
  });

  it("concurrent deposits through two daemons over one ledger issue exactly up to the limit", async () => {
    const l = await fresh();
    const [one, two] = [l.service(), l.service()];
    const wallets = [await openWallet(one, "w0"), await openWallet(two, "w1"), await openWallet(one, "w2")];
    await deposit(one, wallets[0]!, MAX - 10n, "base");

    const calls = Array.from({ length: 40 }, (_, i) =>
      deposit(i % 2 === 0 ? one : two, wallets[i % 3]!, 1n, `race-${i}`).then(
        () => "ok" as const,
        (err: unknown) => {
          const e = ConnectError.from(err);
          const fields = e.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field);
          return e.code === Code.InvalidArgument && fields?.join() === "amount_micro" ? ("refused" as const) : e;
        },
      ),
    );
    const outcomes = await Promise.all(calls);
    expect(outcomes.filter((o) => o === "ok")).toHaveLength(10);
    expect(outcomes.filter((o) => o === "refused")).toHaveLength(30);

    expect((await account(two, OPERATOR)).balance?.debitsPostedMicro).toBe(MAX);
    let credited = 0n;
    for (const w of wallets) credited += (await account(one, w)).balance!.creditsPostedMicro;
    expect(credited).toBe(MAX);
    expect(await headroom(l)).toBe(0n);
  });

  it("amounts above the range are still refused before the ledger is asked", async () => {
    const l = await fresh();
    const svc = l.service();
    const a = await openWallet(svc, "x");
    const err = await rpcError(deposit(svc, a, MAX + 1n, "too-big"));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(await l.engine.lookupAccounts([issuanceLimitControlId()])).toEqual([]);
  });
});
