/**
 * SettlementService views and request parsing: control-plane rows + derived state → protobuf.
 */
import { create } from "@bufbuild/protobuf";
import { Rail as ProtoRail } from "../../../clients/gen/masques/ledger/v1/common_pb.js";
import {
  DestinationState,
  PayoutDestinationSchema,
  PayoutQuoteSchema,
  PayoutSchema,
  PayoutState as ProtoPayoutState,
  type Payout,
  type PayoutDestination,
} from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { getAddress, isAddress } from "viem";
import { Rail, type RailName } from "../../domain/codes.js";
import type { Destination } from "../../domain/settlement/destinations.js";
import type { PayoutState } from "../../domain/settlement/state.js";
import type { PayoutRow } from "../../controlplane/settlement.js";
import { timestampFromNs } from "../views.js";

/** The rail named by a protobuf Rail value, or null (unset or unknown). */
export function railOf(r: ProtoRail): RailName | null {
  const name = (Object.keys(Rail) as RailName[]).find((k) => Rail[k] === Number(r));
  return name ?? null;
}

export function protoRail(r: RailName): ProtoRail {
  return Rail[r] as number as ProtoRail;
}

const STATE: Record<PayoutState, ProtoPayoutState> = {
  quoted: ProtoPayoutState.QUOTED,
  requested: ProtoPayoutState.REQUESTED,
  claimed: ProtoPayoutState.CLAIMED,
  submitted: ProtoPayoutState.SUBMITTED,
  confirmed: ProtoPayoutState.CONFIRMED,
  failed: ProtoPayoutState.FAILED,
  cancelled: ProtoPayoutState.CANCELLED,
  expired: ProtoPayoutState.EXPIRED,
};

export function protoPayoutState(s: PayoutState): ProtoPayoutState {
  return STATE[s];
}

/**
 * A Base address in its canonical EIP-55 form, or null. All-lowercase and all-uppercase hex are
 * accepted as written; mixed case must carry a valid EIP-55 checksum (a typo is refused, not
 * "corrected" into another address).
 */
export function canonicalBaseAddress(text: string): string | null {
  if (!/^0x[0-9a-fA-F]{40}$/.test(text)) return null;
  const hex = text.slice(2);
  const uniform = hex === hex.toLowerCase() || hex === hex.toUpperCase();
  if (!uniform && !isAddress(text, { strict: true })) return null;
  return getAddress(`0x${hex.toLowerCase()}`);
}

/** A payout as the contract shows it; `state` is derived by the caller (ADR 0085). */
export function payoutView(row: PayoutRow, state: PayoutState): Payout {
  return create(PayoutSchema, {
    payoutId: row.payout_id,
    authorId: row.author_id,
    rail: protoRail(row.rail),
    destinationAddress: row.destination_address ?? "",
    quote: create(PayoutQuoteSchema, {
      amountMicro: row.amount_micro,
      feeMicro: row.fee_micro,
      netMicro: row.net_micro,
      expireTime: timestampFromNs(row.quote_expire_time_ns),
      accountRentFeeMicro: row.account_rent_fee_micro,
    }),
    state: protoPayoutState(state),
    idempotencyKey: row.idempotency_key,
    txRef: row.tx_ref ?? "",
    networkFeeNative: row.network_fee_native ?? 0n,
    failureReason: state === "failed" || state === "cancelled" ? (row.failure_reason ?? "") : "",
    createTime: timestampFromNs(row.create_time_ns),
    updateTime: timestampFromNs(row.update_time_ns),
  });
}

export function destinationView(rail: RailName, d: Destination, state: "active" | "pending"): PayoutDestination {
  return create(PayoutDestinationSchema, {
    rail: protoRail(rail),
    address: d.address,
    state: state === "active" ? DestinationState.ACTIVE : DestinationState.PENDING,
    effectiveTime: timestampFromNs(d.effective_time_ns),
    createTime: timestampFromNs(d.create_time_ns),
  });
}
