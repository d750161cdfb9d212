/**
 * Renderers shared by the client commands: protobuf enums and messages as JSON objects and human
 * lines (amounts through sdk/money.ts, never floats).
 */
import { enumToJson, type DescEnum } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { formatMicroAsUsd, formatUsd } from "../sdk/money.js";
import { AccountKindSchema, TransferKindSchema, type Account, type Transfer } from "../gen/masques/ledger/v1/common_pb.js";
import {
  BillingMode,
  BillingModeSchema,
  CloseReasonSchema,
  SessionStatus,
  SessionStatusSchema,
  type Session,
} from "../gen/masques/ledger/v1/session_service_pb.js";
import { isFullSession, type BasicSession } from "../sdk/sessions.js";

export function enumName(desc: DescEnum, v: number): string {
  try {
    return String(enumToJson(desc, v));
  } catch {
    return String(v);
  }
}

/** `ACCOUNT_KIND_AGENT_WALLET_PREPAID` -> `agent_wallet_prepaid` */
export function shortEnum(desc: DescEnum, v: number, prefix: string): string {
  return enumName(desc, v).replace(prefix, "").toLowerCase();
}

export function isoTime(t: Timestamp | undefined): string | null {
  return t ? timestampDate(t).toISOString() : null;
}

/** Amount pair for JSON: exact micro string + decimal USD string. */
export function money(micro: bigint): { micro: string; usd: string } {
  return { micro: micro.toString(), usd: formatMicroAsUsd(micro) };
}

export function accountJson(a: Account): Record<string, unknown> {
  const b = a.balance;
  return {
    account_id: a.accountId,
    kind: shortEnum(AccountKindSchema, a.kind, "ACCOUNT_KIND_"),
    available: money(b?.availableMicro ?? 0n),
    posted: money(b?.postedMicro ?? 0n),
    pending_debits: money(b?.debitsPendingMicro ?? 0n),
    pending_credits: money(b?.creditsPendingMicro ?? 0n),
    credits_posted: money(b?.creditsPostedMicro ?? 0n),
    debits_posted: money(b?.debitsPostedMicro ?? 0n),
    credit_limit: money(a.creditLimitMicro),
    closed: a.closed,
    create_time: isoTime(a.createTime),
  };
}

export function transferJson(t: Transfer): Record<string, unknown> {
  return {
    transfer_id: t.transferId,
    kind: shortEnum(TransferKindSchema, t.kind, "TRANSFER_KIND_"),
    amount: money(t.amountMicro),
    debit_account_id: t.debitAccountId,
    credit_account_id: t.creditAccountId,
    reference_id: t.referenceId || null,
    create_time: isoTime(t.createTime),
  };
}

export { formatUsd };

// ---- sessions --------------------------------------------------------------------------------

export function sessionStatusName(s: BasicSession): string {
  return shortEnum(SessionStatusSchema, s.status, "SESSION_STATUS_");
}

/**
 * A session as --json prints it. A basic session (view "basic") prints only what it carries — id,
 * status, close reason, billing mode, hold and amounts, in the same shapes as the full one — and
 * no masque, times or usage rather than empty ones.
 */
export function sessionJson(s: BasicSession | Session): Record<string, unknown> {
  if (!isFullSession(s)) {
    return {
      session_id: s.sessionId,
      status: sessionStatusName(s),
      close_reason: s.closeReason ? shortEnum(CloseReasonSchema, s.closeReason, "CLOSE_REASON_") : null,
      billing_mode: shortEnum(BillingModeSchema, s.billingMode, "BILLING_MODE_"),
      hold: money(s.holdMicro),
      price: money(s.priceMicro),
      charged: money(s.chargedMicro),
      refund: money(s.refundMicro),
      debt: money(s.debtMicro),
      unbilled: money(s.unbilledMicro),
      author_share: money(s.authorShareMicro),
      platform_fee: money(s.platformFeeMicro),
      platform_fee_bps: s.platformFeeBps,
    };
  }
  return {
    session_id: s.sessionId,
    masque: s.masqueName,
    masque_index: s.masqueIndex.toString(),
    author: s.author,
    status: sessionStatusName(s),
    close_reason: s.closeReason ? shortEnum(CloseReasonSchema, s.closeReason, "CLOSE_REASON_") : null,
    billing_mode: shortEnum(BillingModeSchema, s.billingMode, "BILLING_MODE_"),
    price_version: s.priceVersion,
    hold: money(s.holdMicro),
    price: money(s.priceMicro),
    charged: money(s.chargedMicro),
    refund: money(s.refundMicro),
    debt: money(s.debtMicro),
    unbilled: money(s.unbilledMicro),
    author_share: money(s.authorShareMicro),
    platform_fee: money(s.platformFeeMicro),
    platform_fee_bps: s.platformFeeBps,
    usage: {
      input_tokens: (s.usage?.inputTokens ?? 0n).toString(),
      output_tokens: (s.usage?.outputTokens ?? 0n).toString(),
      tool_calls: (s.usage?.toolCalls ?? 0n).toString(),
      events: s.usageEvents.toString(),
    },
    billed_duration_ms: s.billedDurationMs.toString(),
    don_time: isoTime(s.donTime),
    deadline_time: isoTime(s.deadlineTime),
    end_time: isoTime(s.endTime),
    last_activity_time: isoTime(s.lastActivityTime),
  };
}

export function usageLine(s: Session): string {
  const u = s.usage;
  const tools = u?.toolCalls ?? 0n;
  return `${u?.inputTokens ?? 0n} input + ${u?.outputTokens ?? 0n} output tokens, ${tools} tool call${tools === 1n ? "" : "s"}, ${formatDuration(s.billedDurationMs)}`;
}

export function formatDuration(ms: bigint): string {
  const total_s = Number(ms / 1000n);
  const h = Math.floor(total_s / 3600);
  const m = Math.floor((total_s % 3600) / 60);
  const sec = total_s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(sec).padStart(2, "0")}s` : `${sec}s`;
}

/**
 * The lines `doff`/`cancel`/`sessions <id>` print about a settled session. A basic session carries
 * no masque name and no usage: `name` names the masque (e.g. from the session file; default "the
 * masque") and the usage line is left out.
 */
export function settledLines(s: BasicSession | Session, name?: string | null): string[] {
  const status = sessionStatusName(s);
  const masque = isFullSession(s) ? s.masqueName : (name ?? "the masque");
  if (s.status === SessionStatus.CANCELLED) {
    return [`✓ Cancelled ${masque}: nothing charged, the ${formatUsd(s.holdMicro)} hold is back in your wallet.`, `  session ${s.sessionId}`];
  }
  if (s.status === SessionStatus.EXPIRED) {
    return [`! ${masque}: the hold expired on the ledger (the daemon was down past the session's maximum length); nothing charged.`, `  session ${s.sessionId}`];
  }
  const lines = [
    `✓ ${status === "reaped" ? "Session was already finalized by the daemon (idle) for" : "Doffed"} ${masque}. Charged ${formatUsd(s.chargedMicro)}` +
      (s.chargedMicro > 0n ? ` (author ${formatUsd(s.authorShareMicro)}, platform ${formatUsd(s.platformFeeMicro)})` : "") +
      `; ${formatUsd(s.refundMicro)} of the ${formatUsd(s.holdMicro)} hold returned.`,
  ];
  if (isFullSession(s)) lines.push(`  usage: ${usageLine(s)}`);
  if (s.debtMicro > 0n) lines.push(`  ${formatUsd(s.debtMicro)} above the hold was recorded as debt (soft billing).`);
  if (s.unbilledMicro > 0n) lines.push(`  ${formatUsd(s.unbilledMicro)} priced but not charged (${s.billingMode === BillingMode.SHADOW ? "shadow billing" : "capped at the hold"}).`);
  lines.push(`  session ${s.sessionId}`);
  return lines;
}
