/**
 * AccountService.RefundSession (ADR 0112): validate, read the settled session from the ledger,
 * authorize (admin; the masque's author within the window), and submit the refund's one linked
 * chain (src/domain/refunds.ts). The ledger keeps the total refunded <= the charge and turns an
 * already paid-out author's shortfall into author debt; nothing here decides money.
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { CreateAccountStatus, CreateTransferStatus as CT, type Client, type Transfer } from "tigerbeetle-node";
import { RefundSessionResponseSchema, type RefundSessionRequest } from "../../../clients/gen/masques/ledger/v1/account_service_pb.js";
import type { LimitsStore } from "../../controlplane/limits.js";
import { AMOUNT_MAX_MICRO, IDEMPOTENCY_KEY_RE, OWNER_ID_RULE, platformAccountId } from "../../domain/accounts.js";
import { idToHex } from "../../domain/ids.js";
import { capValueMicro } from "../../domain/limits.js";
import {
  authorDebtAccount,
  authorDebtId,
  planRefund,
  refundId,
  refundTransferIds,
  refundableAccount,
  refundableFunding,
  refundableId,
  splitRefund,
} from "../../domain/refunds.js";
import { parseSessionId, sessionTransferIds } from "../../domain/sessions.js";
import { authorizeRefund, principalOf } from "../authz.js";
import { requestIdKey } from "../../server/principal.js";
import type { AuditInput } from "../../domain/audit-chain.js";
import { failedPrecondition, idempotencyKeyReused, invalidArgument, ledgerRejected, statusError, type Violation } from "../errors.js";
import { transferView } from "../views.js";
import { Code } from "@connectrpc/connect";

export interface RefundDeps {
  readonly ledger: Client;
  readonly store: LimitsStore;
  readonly clock: () => bigint;
  /** REFUND_AUTHOR_WINDOW_S (0: authors may not refund). */
  readonly author_window_s: number;
  /** Appends an audit entry (ADR 0101): every refund is recorded once (ADR 0109). */
  readonly audit?: (entry: AuditInput) => Promise<void>;
}

const REASON_MAX_CHARS = 500;

/** The settled session's money facts, read from the ledger by its deterministic ids. */
interface SettledSession {
  session_id: bigint;
  wallet_id: bigint;
  earnings_id: bigint;
  author_micro: bigint;
  platform_micro: bigint;
  settled_ns: bigint;
}

async function readSettled(ledger: Client, sid: bigint): Promise<SettledSession> {
  const ids = sessionTransferIds(sid);
  const found = await ledger.lookupTransfers([ids.hold, ids.post, ids.author, ids.platform]);
  const by = (id: bigint) => found.find((t) => t.id === id);
  const hold = by(ids.hold);
  const post = by(ids.post);
  const author = by(ids.author);
  const platform = by(ids.platform);
  if (hold === undefined) throw statusError(Code.NotFound, "SESSION_NOT_FOUND", `session ${idToHex(sid)} does not exist`, { session_id: idToHex(sid) });
  if (post === undefined || author === undefined || platform === undefined) {
    throw failedPrecondition("SESSION_NOT_SETTLED", `session ${idToHex(sid)} is not settled: only a settled session can be refunded`, { session_id: idToHex(sid) });
  }
  return { session_id: sid, wallet_id: hold.debit_account_id, earnings_id: author.credit_account_id, author_micro: author.amount, platform_micro: platform.amount, settled_ns: post.timestamp };
}

export function createRefundHandler(deps: RefundDeps) {
  const { ledger, store, clock } = deps;

  async function ensure(s: SettledSession, charge: bigint): Promise<void> {
    const accounts = [refundableAccount(s.session_id), authorDebtAccount(s.earnings_id)];
    const res = await ledger.createAccounts(accounts);
    for (const [i, r] of res.entries()) {
      if (r.status !== CreateAccountStatus.created && r.status !== CreateAccountStatus.exists) {
        throw ledgerRejected(`create ${idToHex(accounts[i]!.id)}`, CreateAccountStatus[r.status] ?? String(r.status));
      }
    }
    // The charge never changes once settled: every daemon funds the same amount under one id.
    const [f] = await ledger.createTransfers([refundableFunding(s.session_id, charge)]);
    if (f && f.status !== CT.created && f.status !== CT.exists) throw ledgerRejected("fund refundable amount", CT[f.status] ?? String(f.status));
  }

  return async function refundSession(req: RefundSessionRequest, ctx: HandlerContext) {
    const p = principalOf(ctx);
    const v: Violation[] = [];
    let sid = 0n;
    try {
      sid = parseSessionId(req.sessionId);
    } catch (e) {
      v.push({ field: "session_id", description: (e as Error).message.replace(/^session_id /, "") });
    }
    if (req.amountMicro > AMOUNT_MAX_MICRO) v.push({ field: "amount_micro", description: "must be <= 9223372036854775807" });
    const reasonChars = [...req.reason.trim()].length;
    if (reasonChars === 0 || reasonChars > REASON_MAX_CHARS) v.push({ field: "reason", description: `must be 1-${REASON_MAX_CHARS} characters` });
    if (!IDEMPOTENCY_KEY_RE.test(req.idempotencyKey)) v.push({ field: "idempotency_key", description: OWNER_ID_RULE });
    if (v.length > 0) throw invalidArgument(v);

    const s = await readSettled(ledger, sid);
    authorizeRefund(p, s, clock(), deps.author_window_s);
    const charge = s.author_micro + s.platform_micro;
    if (charge === 0n) throw failedPrecondition("NOTHING_TO_REFUND", `session ${idToHex(sid)} charged nothing`, { session_id: idToHex(sid) });
    await ensure(s, charge);

    const id = refundId(sid, req.idempotencyKey);
    // The amount a key stands for is fixed by its first request (amount 0 = what was left then).
    const known = (await store.refunds([idToHex(id)])).get(idToHex(id));
    let amount = req.amountMicro;
    if (known !== undefined) {
      if (amount === 0n || amount === known.amount_micro) amount = known.amount_micro;
      else throw idempotencyKeyReused(req.idempotencyKey, idToHex(id), "refund (amount differs)");
    } else if (amount === 0n) {
      const [r] = await ledger.lookupAccounts([refundableId(sid)]);
      amount = capValueMicro(r);
      if (amount === 0n) throw refundExceeds(sid, charge, charge, 0n);
    }
    if (amount > charge) throw refundExceeds(sid, charge, charge - (await remaining(sid)), amount);
    if (known === undefined) {
      await store.putRefund({ refund_id: idToHex(id), session_id: idToHex(sid), amount_micro: amount, reason: req.reason.trim(), requested_by: `${p.kind}:${p.id}`, idempotency_key: req.idempotencyKey, create_time_ns: clock() });
    }
    const split = splitRefund(amount, s.author_micro, s.platform_micro);
    const chain = planRefund({ id, session_id: sid, wallet_id: s.wallet_id, earnings_id: s.earnings_id, platform_revenue_id: platformAccountId("platform_revenue"), amount_micro: amount, split });
    const res = await ledger.createTransfers(chain);
    const st = res[0]?.status;
    if (st === undefined || res.length !== chain.length) throw ledgerRejected("refund", "result count mismatch");
    if (st !== CT.created && st !== CT.exists) {
      const name = CT[st] ?? String(st);
      if (name.startsWith("exists_with_different")) throw idempotencyKeyReused(req.idempotencyKey, idToHex(id), "refund");
      if (st === CT.exceeds_credits) throw refundExceeds(sid, charge, charge - (await remaining(sid)), amount);
      // A refusal for the amount burns the chain's ids: a retry of that key can never succeed.
      if (res.some((r) => r.status === CT.id_already_failed)) {
        throw failedPrecondition(
          "IDEMPOTENCY_KEY_FAILED",
          `a refund with idempotency key ${JSON.stringify(req.idempotencyKey)} of session ${idToHex(sid)} was refused earlier (e.g. past what was left to refund); the ledger never reuses a refused id: use a new key`,
          { idempotency_key: req.idempotencyKey, session_id: idToHex(sid), refundable_micro: String(await remaining(sid)) },
        );
      }
      const bad = res.find((r) => r.status !== CT.linked_event_failed);
      throw ledgerRejected("refund", bad ? (CT[bad.status] ?? String(bad.status)) : name);
    }
    const tids = refundTransferIds(id);
    const [moved, [debt], rem, row] = await Promise.all([
      ledger.lookupTransfers([tids.debt, tids.author, tids.repayment, tids.platform]),
      ledger.lookupAccounts([authorDebtId(s.earnings_id)]),
      remaining(sid),
      store.refunds([idToHex(id)]),
    ]);
    if (deps.audit) {
      // A money action (issue 16, ADR 0109), recorded once the ledger accepted it; a retry of the
      // same key finds its entry (dedupe) and appends nothing.
      await deps.audit({
        time_ns: clock(),
        actor_kind: p.kind,
        actor_id: p.id,
        action: "session.refund",
        subject: `session:${idToHex(sid)}`,
        request_id: ctx.values.get(requestIdKey) || "unknown",
        reason: req.reason.trim(),
        before: { charge_micro: charge, refundable_micro: rem + amount },
        after: { refund_id: idToHex(id), amount_micro: amount, author_micro: split.author_micro, platform_micro: split.platform_micro, refundable_micro: rem },
        dedupe_key: `session.refund:${idToHex(id)}`,
      });
    }
    return create(RefundSessionResponseSchema, {
      refundId: idToHex(id),
      sessionId: idToHex(sid),
      amountMicro: amount,
      authorMicro: split.author_micro,
      platformMicro: split.platform_micro,
      chargeMicro: charge,
      refundedTotalMicro: charge - rem,
      authorDebtMicro: debt === undefined ? 0n : debtMicro(debt),
      reason: row.get(idToHex(id))?.reason ?? req.reason.trim(),
      transfers: moved.map((t: Transfer) => transferView(t)),
    });
  };

  async function remaining(sid: bigint): Promise<bigint> {
    const [r] = await ledger.lookupAccounts([refundableId(sid)]);
    return capValueMicro(r);
  }
}

/** What an author debt account says is owed (its debit balance). */
export function debtMicro(a: { debits_posted: bigint; credits_posted: bigint }): bigint {
  const d = a.debits_posted - a.credits_posted;
  return d > 0n ? d : 0n;
}

function refundExceeds(sid: bigint, charge: bigint, refunded: bigint, asked: bigint) {
  const left = charge - refunded;
  return failedPrecondition(
    "REFUND_EXCEEDS_CHARGE",
    `session ${idToHex(sid)} charged ${charge} micro-USD and ${refunded} are refunded already: at most ${left} more can be refunded, not ${asked}`,
    { session_id: idToHex(sid), charge_micro: String(charge), refunded_micro: String(refunded), refundable_micro: String(left), requested_micro: String(asked) },
  );
}
