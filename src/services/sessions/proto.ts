/**
 * SessionService protobuf ⇄ domain: enum maps, the Session message built from a SessionView (the
 * price recomputed with the pinned price book), and catalog masques as Masque messages.
 */
import { create } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  BillingMode as ApiBillingMode,
  CloseReason as ApiCloseReason,
  MasqueSchema,
  PricingSchema,
  SessionStatus as ApiSessionStatus,
  SessionView,
  type Masque as ApiMasque,
  type Session,
} from "../../../clients/gen/masques/ledger/v1/session_service_pb.js";
import type { Masque } from "../../domain/catalog.js";
import { idToHex } from "../../domain/ids.js";
import { accrue, formatPicoAsUsd, type BillingMode } from "../../domain/pricing.js";
import { billedDurationMs, type CloseReason, type SessionStatus, type SessionView as DomainSessionView } from "../../domain/sessions.js";
import { priceBookEntry } from "./reads.js";
import type { SessionState } from "./state.js";

export const MODE_TO_API: Record<BillingMode, ApiBillingMode> = {
  shadow: ApiBillingMode.SHADOW,
  soft: ApiBillingMode.SOFT,
  live: ApiBillingMode.LIVE,
};
export const MODE_FROM_API: Partial<Record<ApiBillingMode, BillingMode>> = {
  [ApiBillingMode.SHADOW]: "shadow",
  [ApiBillingMode.SOFT]: "soft",
  [ApiBillingMode.LIVE]: "live",
};
export const STATUS_TO_API: Record<SessionStatus, ApiSessionStatus> = {
  open: ApiSessionStatus.OPEN,
  doffed: ApiSessionStatus.DOFFED,
  reaped: ApiSessionStatus.REAPED,
  cancelled: ApiSessionStatus.CANCELLED,
  expired: ApiSessionStatus.EXPIRED,
};
const REASON_TO_API: Record<CloseReason, ApiCloseReason> = {
  doff: ApiCloseReason.DOFF,
  idle: ApiCloseReason.IDLE,
  max_length: ApiCloseReason.MAX_LENGTH,
};

/** google.protobuf.Timestamp as a literal message. */
function ts(ns: bigint): Timestamp {
  return { $typeName: "google.protobuf.Timestamp", seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) };
}

/**
 * API view: amounts from the ledger, the price recomputed with the pinned price book (from the
 * cache, or the control-plane database for a version another daemon registered). `view` BASIC
 * (a caller's opt-in, ADR 0128) sets only the id, the state and the amounts: the rest keep their
 * zero values, which protobuf leaves off the wire; the amounts are the full view's, to the micro.
 */
export async function sessionToProto(s: SessionState, v: DomainSessionView, view: SessionView = SessionView.FULL): Promise<Session> {
  const e = await priceBookEntry(s, v.price_version);
  const max_s = s.config.SESSION_MAX_S;
  const billed = v.status === "open" ? billedDurationMs(v.don_ns, s.clock(), max_s) : v.billed_duration_ms;
  let price = 0n;
  if (e && v.status !== "cancelled") price = accrue(e.pricing, v.usage, billed).price_micro;
  const charged = v.posted_micro + v.debt_micro;
  const settled = v.status === "doffed" || v.status === "reaped";
  const refund = settled || v.status === "cancelled" || v.status === "expired" ? v.hold_micro - v.posted_micro : 0n;
  const unbilled = settled || v.status === "expired" ? (price > charged ? price - charged : 0n) : 0n;
  if (view === SessionView.BASIC) {
    return {
      $typeName: "masques.ledger.v1.Session",
      sessionId: idToHex(v.session_id),
      agentWalletId: "",
      masqueName: "",
      masqueIndex: 0n,
      author: "",
      priceVersion: 0,
      billingMode: MODE_TO_API[v.mode],
      status: STATUS_TO_API[v.status],
      closeReason: v.close_reason ? REASON_TO_API[v.close_reason] : ApiCloseReason.UNSPECIFIED,
      holdMicro: v.hold_micro,
      donTime: undefined,
      deadlineTime: undefined,
      endTime: undefined,
      lastActivityTime: undefined,
      usage: undefined,
      usageEvents: 0n,
      billedDurationMs: 0n,
      priceMicro: price,
      chargedMicro: charged,
      postedMicro: v.posted_micro,
      debtMicro: v.debt_micro,
      refundMicro: refund,
      unbilledMicro: unbilled,
      authorShareMicro: v.author_micro,
      platformFeeMicro: v.platform_micro,
      platformFeeBps: v.fee_bps,
    };
  }
  // A literal message (protobuf-es v2 messages are plain objects): create() fills defaults by
  // reflection, which was a visible share of Don's CPU; every field is set here.
  return {
    $typeName: "masques.ledger.v1.Session",
    sessionId: idToHex(v.session_id),
    agentWalletId: idToHex(v.agent_wallet_id),
    masqueName: e?.masque_name ?? "",
    masqueIndex: BigInt(v.masque_index),
    author: e?.author ?? "",
    priceVersion: v.price_version,
    billingMode: MODE_TO_API[v.mode],
    status: STATUS_TO_API[v.status],
    closeReason: v.close_reason ? REASON_TO_API[v.close_reason] : ApiCloseReason.UNSPECIFIED,
    holdMicro: v.hold_micro,
    donTime: ts(v.don_ns),
    deadlineTime: ts(v.deadline_ns),
    endTime: v.end_ns === null ? undefined : ts(v.end_ns),
    lastActivityTime: ts(v.last_activity_ns),
    usage: {
      $typeName: "masques.ledger.v1.Usage",
      inputTokens: v.usage.input_tokens,
      outputTokens: v.usage.output_tokens,
      toolCalls: v.usage.tool_calls,
    },
    usageEvents: BigInt(v.usage_events),
    billedDurationMs: billed,
    priceMicro: price,
    chargedMicro: charged,
    postedMicro: v.posted_micro,
    debtMicro: v.debt_micro,
    refundMicro: refund,
    unbilledMicro: unbilled,
    authorShareMicro: v.author_micro,
    platformFeeMicro: v.platform_micro,
    platformFeeBps: v.fee_bps,
  };
}

/** A catalog masque with its current pricing. */
export function masqueToProto(m: Masque): ApiMasque {
  return create(MasqueSchema, {
    name: m.name,
    index: BigInt(m.index),
    version: m.version,
    author: m.author,
    pricing: create(PricingSchema, {
      flatPerSessionMicro: m.pricing.flat_per_session_micro,
      perMinuteUsd: formatPicoAsUsd(m.pricing.per_minute_pico),
      per1kInputTokensUsd: formatPicoAsUsd(m.pricing.per_1k_input_tokens_pico),
      per1kOutputTokensUsd: formatPicoAsUsd(m.pricing.per_1k_output_tokens_pico),
      perToolCallUsd: formatPicoAsUsd(m.pricing.per_tool_call_pico),
      capPerSessionMicro: m.pricing.cap_per_session_micro ?? 0n,
      hasCap: m.pricing.cap_per_session_micro !== null,
      reserveMicro: m.pricing.reserve_micro,
      priceVersion: m.price_version,
    }),
  });
}
