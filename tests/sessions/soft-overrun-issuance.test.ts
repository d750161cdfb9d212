/**
 * ADR 0055 / issue 11 follow-up: a soft-mode overrun (agent debt -> escrow) brings money into
 * ledger 1, so it counts against the issuance limit like a deposit. The limit is provisioned at
 * start-up (onStart), so a Doff right after a fresh start with no deposit ever made through the
 * AccountService finds it funded; a soft Doff whose overrun would pass the limit is never refused:
 * the part beyond the limit is unbilled.
 */
import { CreateTransferStatus } from "tigerbeetle-node";
import { afterEach, describe, expect, it } from "vitest";
import { BillingMode, SessionStatus } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import {
  ISSUANCE_LIMIT_MICRO,
  issuanceHeadroomMicro,
  issuanceLimitControlId,
  issuanceLimitIssuedId,
  issuanceLimitTransferId,
} from "../../src/domain/balance-bounds.js";
import { Ledger, TransferCode } from "../../src/domain/codes.js";
import { deterministicId, idFromHex } from "../../src/domain/ids.js";
import { newTransfer } from "../../src/domain/records.js";
import { sessionTransferIds } from "../../src/domain/sessions.js";
import type { SessionServiceInstance } from "../../src/services/sessions/service.js";
import { newSessionId } from "./harness.js";
import { adminP, donReq, startInProcess, type InProcess } from "./inprocess.js";

let env: InProcess | undefined;
afterEach(async () => {
  await env?.close();
  env = undefined;
});

async function headroom(e: InProcess): Promise<bigint> {
  const [control] = await e.ctx.ledger.lookupAccounts([issuanceLimitControlId()]);
  expect(control, "the issuance limit's control account exists").toBeDefined();
  return issuanceHeadroomMicro(control!);
}

/** Issue `amount` on the limit ledger directly (what earlier deposits would have taken). */
async function consumeHeadroom(e: InProcess, amount: bigint, tag: string): Promise<CreateTransferStatus> {
  const [r] = await e.ctx.ledger.createTransfers([
    newTransfer({
      id: deterministicId("transfer", "test-issuance", tag),
      debit_account_id: issuanceLimitControlId(),
      credit_account_id: issuanceLimitIssuedId(),
      amount,
      ledger: Ledger.issuance_limit,
      code: TransferCode.issuance_limit,
    }),
  ]);
  return r!.status;
}

/** A soft-mode session (billing mode set by an admin) of researcher: 0.0008 USD per 1k output tokens -> 1M output tokens = 800_000 micro; hold 100 -> debt 799_900. */
async function softOverrun(S: SessionServiceInstance, e: InProcess, agent: string) {
  const p = await e.fundedAgent(agent);
  const sid = newSessionId();
  await S.handlers.don(adminP, donReq(sid, { agentId: agent, maxSpendMicro: 100n, billingMode: BillingMode.SOFT }));
  await S.handlers.recordUsage(p, [{ sessionId: sid, seq: 1n, inputTokens: 0n, outputTokens: 1_000_000n, toolCalls: 0n } as never]);
  return { sid, doff: () => S.handlers.doff(p, sid) };
}

describe("soft-mode overrun debt and the issuance limit", () => {
  it("right after a fresh start (no deposit through the AccountService) a soft Doff links an issuance transfer: the headroom shrinks by exactly the debt", async () => {
    env = await startInProcess();
    const S = await env.instance();
    expect(await headroom(env)).toBe(ISSUANCE_LIMIT_MICRO);
    const { sid, doff } = await softOverrun(S, env, "soft-fresh");
    const s = await doff();
    expect(s).toMatchObject({ status: SessionStatus.DOFFED, priceMicro: 800_000n, postedMicro: 100n, debtMicro: 799_900n, unbilledMicro: 0n, chargedMicro: 800_000n });
    expect(s.authorShareMicro + s.platformFeeMicro).toBe(800_000n);
    expect(await headroom(env)).toBe(ISSUANCE_LIMIT_MICRO - 799_900n);
    const debtId = sessionTransferIds(idFromHex(sid)).debt;
    const [limit] = await env.ctx.ledger.lookupTransfers([issuanceLimitTransferId(debtId)]);
    expect(limit).toMatchObject({ amount: 799_900n, user_data_128: debtId, ledger: Ledger.issuance_limit });
  });

  it("an overrun past the limit is never refused: the debt takes what is left, the rest is unbilled; then nothing is left and the next overrun is all unbilled", async () => {
    env = await startInProcess();
    const S = await env.instance();
    expect(await consumeHeadroom(env, ISSUANCE_LIMIT_MICRO - 500n, "almost-all")).toBe(CreateTransferStatus.created);
    const first = await (await softOverrun(S, env, "soft-capped")).doff();
    expect(first).toMatchObject({ status: SessionStatus.DOFFED, postedMicro: 100n, debtMicro: 500n, unbilledMicro: 799_400n, chargedMicro: 600n });
    expect(first.authorShareMicro + first.platformFeeMicro).toBe(600n);
    expect(await headroom(env)).toBe(0n);
    const second = await (await softOverrun(S, env, "soft-exhausted")).doff();
    expect(second).toMatchObject({ status: SessionStatus.DOFFED, postedMicro: 100n, debtMicro: 0n, unbilledMicro: 799_900n, chargedMicro: 100n });
    expect(await headroom(env)).toBe(0n);
  });

  it("when the limit refuses the debt after the headroom was read (its id already failed), the Doff settles with the overrun unbilled", async () => {
    env = await startInProcess();
    const S = await env.instance();
    const { sid, doff } = await softOverrun(S, env, "soft-raced");
    // Make this session's limit transfer id fail for good, as a lost race at the limit would.
    const debtId = sessionTransferIds(idFromHex(sid)).debt;
    const [failed] = await env.ctx.ledger.createTransfers([
      newTransfer({
        id: issuanceLimitTransferId(debtId),
        debit_account_id: issuanceLimitControlId(),
        credit_account_id: issuanceLimitIssuedId(),
        amount: ISSUANCE_LIMIT_MICRO + 1n,
        ledger: Ledger.issuance_limit,
        code: TransferCode.issuance_limit,
      }),
    ]);
    expect(failed!.status).toBe(CreateTransferStatus.exceeds_credits);
    const s = await doff();
    expect(s).toMatchObject({ status: SessionStatus.DOFFED, postedMicro: 100n, debtMicro: 0n, unbilledMicro: 799_900n });
    expect(await headroom(env)).toBe(ISSUANCE_LIMIT_MICRO);
    expect(await doff()).toEqual(s);
  });
});
