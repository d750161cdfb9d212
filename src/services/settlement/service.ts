/**
 * SettlementService: author payouts on the Base rail, end to end over the ledger plans of
 * src/domain/settlement (issue 13; docs/adr/0085, 0086). Served today: ownership challenges and
 * payout destinations (Base, EIP-191), quotes, confirmation (the pending hold earnings → rail
 * outbound with NO timeout), reads, cancel while queued, and the rail adapter's side (claim
 * under a lease, record the signed transaction before broadcast, complete = post, fail = void).
 * Deposits: ./deposits.ts (BindDepositSource, ReportDeposit), ./deposit-reads.ts (ListDepositSources,
 * ListDeposits, the admin's ListDepositRefusals and ReleaseHeldDeposit). Not registered here:
 * the Lightning deposit invoices.
 *
 * Order of writes (ADR 0070, "the ledger decides, the database records"): the control-plane
 * intent first (fixed destination, void intent, signed transaction), then the ledger, then the
 * control-plane record of the ledger's answer. Every read derives the state from the ledger's
 * facts (derivePayoutState) and brings a lagging row up to the ledger (syncRow), so a crash
 * between the ledger write and its record is repaired by the next read or retry.
 */
import { submitPayoutVoid } from "./void.js";
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  CancelPayoutDestinationChangeResponseSchema,
  CancelPayoutResponseSchema,
  ClaimedPayoutSchema,
  ClaimPayoutsResponseSchema,
  CompletePayoutResponseSchema,
  ConfirmPayoutResponseSchema,
  CreateDestinationChallengeResponseSchema,
  FailPayoutResponseSchema,
  GetPayoutResponseSchema,
  ListPayoutDestinationsResponseSchema,
  ListPayoutFeesResponseSchema,
  ListPayoutsResponseSchema,
  OwnershipChallengeSchema,
  OwnershipPurpose,
  RailPayoutFeesSchema,
  RecordSignedTransactionResponseSchema,
  RegisterPayoutDestinationResponseSchema,
  RequestPayoutResponseSchema,
  SettlementService,
  type Payout,
  type PayoutDestination,
} from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import type { Config } from "../../config.js";
import { feeSchedule } from "./fees.js";
import type { SettlementStore, PayoutRow } from "../../controlplane/settlement.js";
import { IDEMPOTENCY_KEY_RE, OWNER_ID_RULE, authorEarningsId, availableMicro } from "../../domain/accounts.js";
import type { RailName } from "../../domain/codes.js";
import { idToHex } from "../../domain/ids.js";
import { computePayoutQuote, isQuoteUsable, type PayoutFeeSchedule } from "../../domain/settlement/quote.js";
import { payoutId, payoutTransferIds } from "../../domain/settlement/ids.js";
import {
  holdOutcome,
  payoutHoldPlan,
  payoutPostPlan,
  readPayoutHold,
  settleOutcome,
} from "../../domain/settlement/plans.js";
import { timestampFromNs } from "../views.js";
import { DESTINATION_CHANGE_PENDING, DESTINATION_CHANGE_WITHDRAWN, destinationChangeNotification } from "./notifications.js";
import {
  type Destination,
  cancelDestinationChange,
  destinationsAt,
  payingDestination,
  registerDestination,
  type RailDestinations,
} from "../../domain/settlement/destinations.js";
import {
  derivePayoutState,
  isCancellable,
  readPayoutLedgerFacts,
  type PayoutLedgerFacts,
  type PayoutState,
} from "../../domain/settlement/state.js";
import type { DaemonContext, ServiceRegistration } from "../../server/registry.js";
import { defineService } from "../../server/registry.js";
import { requestLogger } from "../../server/context.js";
import type { Client } from "tigerbeetle-node";
import {
  authorizeAuthorPayouts,
  authorizeBindDepositSource,
  authorizeRailAdapter,
  authorizeReadPayouts,
  canSeePayout,
  principalOf,
} from "../authz.js";
import {
  accountNotFound,
  failedPrecondition,
  idempotencyKeyReused,
  insufficientFunds,
  invalidArgument,
  ledgerRejected,
  permissionDenied,
  statusError,
  type Violation,
} from "../errors.js";
import { parseHexId, parsePageSize } from "../views.js";
import { createDepositHandlers } from "./deposits.js";
import { enabledRails, railProfile } from "./rails.js";
import { createDepositReadHandlers } from "./deposit-reads.js";
import { configuredRateProvider, withLightning } from "./lightning.js";
import { destinationView, payoutView, protoPayoutState, protoRail, railOf } from "./views.js";

/** Rails a daemon can pay out on (Lightning follows, issue 15); enabled per configuration (rails.ts). */
export const PAYOUT_RAILS: readonly RailName[] = ["base", "solana"];

export interface SettlementServiceDeps {
  ledger: Client;
  store: SettlementStore;
  config: Config;
  /** ns since the epoch (injectable). */
  clock: () => bigint;
}

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;
const MAX_CLAIM = 100;
const MAX_REASON_CHARS = 1000;

function payoutNotFound(id: string): Error {
  return statusError(Code.NotFound, "PAYOUT_NOT_FOUND", `payout ${id} does not exist (or is not yours)`, { payout_id: id });
}

/** The rail of a request, enabled here; throws INVALID_ARGUMENT / FAILED_PRECONDITION. */
export function enabledRailOf(enabled: readonly RailName[], r: number, field = "rail"): RailName {
  const rail = railOf(r);
  if (rail === null) throw invalidArgument([{ field, description: "must be set (RAIL_BASE, RAIL_SOLANA or RAIL_LIGHTNING)" }]);
  if (!enabled.includes(rail) || !PAYOUT_RAILS.includes(rail)) {
    throw failedPrecondition("RAIL_NOT_ENABLED", `payouts on rail ${rail} are not enabled on this daemon (enabled: ${enabled.join(", ")})`, { rail });
  }
  return rail;
}

function throwIf(v: Violation[]): void {
  if (v.length > 0) throw invalidArgument(v);
}

export function createSettlementService(deps: SettlementServiceDeps): Partial<ServiceImpl<typeof SettlementService>> {
  const { ledger, store, config } = deps;
  const schedule = feeSchedule(config);
  const ENABLED_PAYOUT_RAILS = enabledRails(config).filter((r) => PAYOUT_RAILS.includes(r));
  const enabledRail = (r: number, field = "rail") => enabledRailOf(ENABLED_PAYOUT_RAILS, r, field);
  const profile = (rail: RailName) => railProfile(config, rail);

  async function ledgerFacts(id: bigint): Promise<PayoutLedgerFacts> {
    const ids = payoutTransferIds(id);
    return readPayoutLedgerFacts(id, await ledger.lookupTransfers([ids.hold, ids.post, ids.void]));
  }

  /** Brings a lagging row up to the ledger (recovery direction: DB ← ledger). */
  async function syncRow(row: PayoutRow, facts: PayoutLedgerFacts, now_ns: bigint): Promise<void> {
    if (facts.held && !row.held) await store.markHeld(row.payout_id, now_ns);
    if (facts.posted && row.settled !== "posted") await store.markSettled(row.payout_id, "posted", now_ns, null);
    if (facts.voided !== null && row.settled !== "voided") await store.markSettled(row.payout_id, "voided", now_ns, null);
  }

  function stateOf(row: PayoutRow, facts: PayoutLedgerFacts, now_ns: bigint): PayoutState {
    return derivePayoutState(
      {
        ledger: facts,
        control: {
          quote_expire_time_ns: row.quote_expire_time_ns,
          quote_cancelled: row.quote_cancelled,
          confirm_refused: row.confirm_refused,
          claimed: row.claimed,
          signed_recorded: row.tx_ref !== null,
        },
      },
      now_ns,
    );
  }

  /** Reads a payout fresh (row + ledger), synced; null when unknown. */
  async function load(id: string): Promise<{ row: PayoutRow; facts: PayoutLedgerFacts; state: PayoutState } | null> {
    const now = deps.clock();
    let row = await store.getPayout(id);
    if (row === null) return null;
    const facts = await ledgerFacts(BigInt(`0x${id}`));
    if ((facts.held && !row.held) || (facts.posted && row.settled !== "posted") || (facts.voided !== null && row.settled !== "voided")) {
      await syncRow(row, facts, now);
      row = (await store.getPayout(id))!;
    }
    return { row, facts, state: stateOf(row, facts, now) };
  }

  async function view(id: string): Promise<Payout> {
    const l = await load(id);
    if (l === null) throw new Error(`payout ${id} vanished`);
    return payoutView(l.row, l.state);
  }

  function parseId(text: string): string {
    const v: Violation[] = [];
    const id = parseHexId(text, "payout_id", v);
    throwIf(v);
    return idToHex(id!);
  }

  /** Payout visible to the caller, or PAYOUT_NOT_FOUND. */
  async function visible(ctx: HandlerContext, text: string) {
    const id = parseId(text);
    const l = await load(id);
    if (l === null || !canSeePayout(principalOf(ctx), l.row.author_id, l.row.rail)) throw payoutNotFound(id);
    return l;
  }

  /** A payout of the calling rail adapter: NOT_FOUND when unknown, PERMISSION_DENIED when of another rail. */
  async function railPayout(ctx: HandlerContext, text: string, action: string) {
    const p = principalOf(ctx);
    if (p.kind !== "rail") throw permissionDenied(`${p.kind} ${JSON.stringify(p.id)} may not ${action}: rail adapters only`, { principal_kind: p.kind });
    const id = parseId(text);
    const l = await load(id);
    if (l === null) throw payoutNotFound(id);
    authorizeRailAdapter(p, l.row.rail, action);
    return l;
  }

  /**
   * Solana (ADR 0091): the author pays the rent of the destination's USDC token account when the
   * platform never paid that destination (the adapter creates the account idempotently); the part
   * is posted only if the payout created the account. 0 on other rails and for paid destinations.
   */
  async function accountRentFee(author_id: string, rail: RailName, address: string): Promise<bigint> {
    if (rail !== "solana") return 0n;
    return (await store.hasPaidDestination(author_id, rail, address)) ? 0n : config.PAYOUT_SOLANA_ACCOUNT_RENT_FEE_MICRO;
  }

  async function availableEarnings(author_id: string): Promise<bigint> {
    const [a] = await ledger.lookupAccounts([authorEarningsId(author_id)]);
    return a === undefined ? 0n : availableMicro(a);
  }

  /** A pending destination's view with the notification recorded for it (ADR 0089). */
  async function pendingView(author: string, rail: RailName, d: Destination): Promise<PayoutDestination> {
    const v = destinationView(rail, d, "pending");
    const n = await store.latestNotification(author, rail, DESTINATION_CHANGE_PENDING, d.address);
    if (n !== null) {
      v.notificationId = n.notification_id;
      v.notifyTime = timestampFromNs(n.create_time_ns);
    }
    return v;
  }

  async function destinationList(author: string, rail: RailName, d: RailDestinations): Promise<PayoutDestination[]> {
    const out: PayoutDestination[] = [];
    if (d.active) out.push(destinationView(rail, d.active, "active"));
    if (d.pending) out.push(await pendingView(author, rail, d.pending));
    return out;
  }

  return {
    // ---- ownership and destinations ----

    async createDestinationChallenge(req, ctx) {
      const p = principalOf(ctx);
      if (req.purpose !== OwnershipPurpose.PAYOUT_DESTINATION && req.purpose !== OwnershipPurpose.DEPOSIT_SOURCE) {
        throw invalidArgument([{ field: "purpose", description: "must be OWNERSHIP_PURPOSE_PAYOUT_DESTINATION or OWNERSHIP_PURPOSE_DEPOSIT_SOURCE" }]);
      }
      const purpose = req.purpose === OwnershipPurpose.PAYOUT_DESTINATION ? "payout_destination" : "deposit_source";
      const principal = purpose === "payout_destination" ? `author:${authorizeAuthorPayouts(p, "prove a payout destination")}` : `agent:${authorizeBindDepositSource(p)}`;
      const rail = enabledRail(req.rail);
      const rp = profile(rail);
      const address = rp.canonicalAddress(req.address);
      if (address === null) throw invalidArgument([{ field: "address", description: rp.address_rule }]);
      const now_ms = Number(deps.clock() / NS_PER_MS);
      const c = rp.issueChallenge({ purpose, principal, address, now_ms, ttl_ms: config.OWNERSHIP_CHALLENGE_TTL_S * 1000 });
      const challenge_id = randomBytes(16).toString("hex");
      await store.insertChallenge({ ...c, challenge_id, rail, used_at_ms: null });
      return create(CreateDestinationChallengeResponseSchema, {
        challenge: create(OwnershipChallengeSchema, {
          challengeId: challenge_id,
          message: c.message,
          expireTime: { seconds: BigInt(Math.floor(c.expires_at_ms / 1000)), nanos: (c.expires_at_ms % 1000) * 1_000_000 },
        }),
      });
    },

    async registerPayoutDestination(req, ctx) {
      const p = principalOf(ctx);
      const author = authorizeAuthorPayouts(p, "register a payout destination");
      const rail = enabledRail(req.rail);
      const rp = profile(rail);
      const v: Violation[] = [];
      const address = rp.canonicalAddress(req.address);
      if (address === null) v.push({ field: "address", description: rp.address_rule });
      if (!req.proof || !/^[0-9a-f]{32}$/.test(req.proof.challengeId)) v.push({ field: "proof.challenge_id", description: "must be the 32-hex challenge_id from CreateDestinationChallenge" });
      throwIf(v);
      const now = deps.clock();
      const invalid = (why: string) => failedPrecondition("CHALLENGE_INVALID", `proof.challenge_id: ${why}; ask for a new challenge`, { challenge_id: req.proof!.challengeId });
      const c = await store.getChallenge(req.proof!.challengeId);
      if (c === null || c.principal !== `author:${author}` || c.purpose !== "payout_destination" || c.rail !== rail) throw invalid("unknown, or not issued to you for a payout destination on this rail");
      if (c.address !== address) throw invalid(`the challenge is for ${c.address}, not ${address}`);
      const respond = async (d: RailDestinations) => {
        if (d.active?.address === address) return destinationView(rail, d.active, "active");
        if (d.pending?.address === address) return pendingView(author, rail, d.pending);
        return null;
      };
      if (c.used_at_ms !== null) {
        const again = await respond(destinationsAt(await store.getDestinations(author, rail), now));
        if (again !== null) return create(RegisterPayoutDestinationResponseSchema, { destination: again });
        throw invalid("already used");
      }
      const proof = await rp.verifyProof(c, req.proof!.signature, Number(now / NS_PER_MS));
      if (!proof.ok) {
        if (proof.kind === "expired") throw invalid(proof.reason);
        if (proof.kind === "malformed_signature") throw invalidArgument([{ field: "proof.signature", description: proof.reason.replace(/^signature: /, "") }]);
        throw statusError(Code.PermissionDenied, "OWNERSHIP_PROOF_INVALID", proof.reason, { address });
      }
      if (!(await store.useChallenge(c.challenge_id, Number(now / NS_PER_MS)))) {
        const again = await respond(destinationsAt(await store.getDestinations(author, rail), now));
        if (again !== null) return create(RegisterPayoutDestinationResponseSchema, { destination: again });
        throw invalid("already used");
      }
      const current = await store.getDestinations(author, rail);
      const r = registerDestination(current, address, now, config.PAYOUT_DESTINATION_COOLING_S);
      const before = destinationsAt(current, now);
      const notification = !r.notify
        ? null
        : r.change === "pending"
          ? destinationChangeNotification({ event_type: DESTINATION_CHANGE_PENDING, author_id: author, rail, address, active_address: before.active?.address ?? null, effective_time_ns: r.destinations.pending!.effective_time_ns, now_ns: now })
          : destinationChangeNotification({ event_type: DESTINATION_CHANGE_WITHDRAWN, author_id: author, rail, address: before.pending!.address, active_address: before.active?.address ?? null, effective_time_ns: null, now_ns: now });
      await store.putDestinations(author, rail, r.destinations, notification);
      if (r.notify) {
        // The author's notification (issue 13: the account takeover path) is the outbox row
        // written with the change (ADR 0089); the warn line is for operators.
        requestLogger(ctx).warn(
          { event: "payout_destination_change", notification_id: notification?.notification_id, author_id: author, rail, address, change: r.change, effective_time_ns: String(r.destinations.pending?.effective_time_ns ?? now) },
          "payout destination change registered: notify the author",
        );
      }
      const dest = await respond(r.destinations);
      if (dest === null) throw new Error("registered destination not found in its own result");
      return create(RegisterPayoutDestinationResponseSchema, { destination: dest });
    },

    async cancelPayoutDestinationChange(req, ctx) {
      const author = authorizeAuthorPayouts(principalOf(ctx), "cancel a payout destination change");
      const rail = enabledRail(req.rail);
      const now = deps.clock();
      const before = destinationsAt(await store.getDestinations(author, rail), now);
      const d = cancelDestinationChange(before, now);
      const notification =
        before.pending === null
          ? null
          : destinationChangeNotification({ event_type: DESTINATION_CHANGE_WITHDRAWN, author_id: author, rail, address: before.pending.address, active_address: before.active?.address ?? null, effective_time_ns: null, now_ns: now });
      await store.putDestinations(author, rail, d, notification);
      return create(CancelPayoutDestinationChangeResponseSchema, { destinations: await destinationList(author, rail, d) });
    },

    async listPayoutDestinations(req, ctx) {
      const author = authorizeReadPayouts(principalOf(ctx), req.authorId, "list payout destinations");
      if (author === "") throw invalidArgument([{ field: "author_id", description: "must be set (admins name the author)" }]);
      const rails = req.rail === 0 ? ENABLED_PAYOUT_RAILS : [enabledRail(req.rail)];
      const now = deps.clock();
      const destinations: PayoutDestination[] = [];
      for (const rail of rails) destinations.push(...(await destinationList(author, rail, destinationsAt(await store.getDestinations(author, rail), now))));
      return create(ListPayoutDestinationsResponseSchema, { destinations });
    },

    // ---- payouts (authors) ----

    async requestPayout(req, ctx) {
      const author = authorizeAuthorPayouts(principalOf(ctx), "request a payout");
      const rail = enabledRail(req.rail);
      const v: Violation[] = [];
      if (!IDEMPOTENCY_KEY_RE.test(req.idempotencyKey)) v.push({ field: "idempotency_key", description: OWNER_ID_RULE });
      let request: string;
      if (req.amount.case === "amountMicro") request = `amount:${req.amount.value}`;
      else if (req.amount.case === "allAvailable" && req.amount.value) request = "all_available";
      else {
        v.push({ field: "amount", description: "exactly one of amount_micro or all_available (true) must be set" });
        request = "";
      }
      throwIf(v);
      const id = idToHex(payoutId(author, req.idempotencyKey));
      const same = (row: PayoutRow) => row.rail === rail && row.request === request;
      const existing = await store.getPayout(id);
      if (existing !== null) {
        if (!same(existing)) throw idempotencyKeyReused(req.idempotencyKey, id, "payout");
        return create(RequestPayoutResponseSchema, { payout: await view(id) });
      }
      const now = deps.clock();
      const paying = payingDestination(await store.getDestinations(author, rail), now);
      if (paying === null) {
        throw failedPrecondition("NO_PAYOUT_DESTINATION", `no active payout destination on rail ${rail}: register one first (RegisterPayoutDestination)`, { rail });
      }
      const rent_fee_micro = await accountRentFee(author, rail, paying.address);
      const available = await availableEarnings(author);
      const quoted = computePayoutQuote(
        req.amount.case === "amountMicro" ? { amount_micro: req.amount.value } : { all_available: true },
        available,
        { ...schedule, fixed_fee_micro: schedule.fixed_fee_micro + rent_fee_micro },
        now,
      );
      if (!quoted.ok) {
        const r = quoted.refusal;
        switch (r.reason) {
          case "INVALID_ARGUMENT":
            throw invalidArgument([{ field: r.field, description: r.rule }]);
          case "INSUFFICIENT_FUNDS":
            throw insufficientFunds(idToHex(authorEarningsId(author)), r.available_micro, r.required_micro);
          case "FEE_EXCEEDS_AMOUNT":
            throw failedPrecondition("FEE_EXCEEDS_AMOUNT", `amount_micro ${r.amount_micro} does not cover the payout fee ${r.fee_micro}`, { amount_micro: String(r.amount_micro), fee_micro: String(r.fee_micro) });
          case "AMOUNT_BELOW_MINIMUM":
            throw failedPrecondition("AMOUNT_BELOW_MINIMUM", `the net payout ${r.net_micro} micro-USD is below the minimum ${r.minimum_net_micro}`, { net_micro: String(r.net_micro), minimum_net_micro: String(r.minimum_net_micro) });
        }
      }
      const q = quoted.quote;
      const row = await store.insertPayout({
        payout_id: id,
        author_id: author,
        idempotency_key: req.idempotencyKey,
        rail,
        request,
        amount_micro: q.amount_micro,
        fee_micro: q.fee_micro,
        net_micro: q.net_micro,
        account_rent_fee_micro: rent_fee_micro,
        quote_expire_time_ns: q.expire_time_ns,
        create_time_ns: now,
      });
      if (!same(row)) throw idempotencyKeyReused(req.idempotencyKey, id, "payout");
      return create(RequestPayoutResponseSchema, { payout: await view(id) });
    },

    async confirmPayout(req, ctx) {
      const author = authorizeAuthorPayouts(principalOf(ctx), "confirm a payout");
      const l = await visible(ctx, req.payoutId);
      const { row } = l;
      if (row.author_id !== author) throw payoutNotFound(row.payout_id);
      if (req.bolt11Invoice !== "") throw invalidArgument([{ field: "bolt11_invoice", description: `must be empty on rail ${row.rail}` }]);
      if (l.facts.held) return create(ConfirmPayoutResponseSchema, { payout: payoutView(row, l.state) });
      const now = deps.clock();
      if (l.state === "cancelled") throw failedPrecondition("QUOTE_CANCELLED", `payout ${row.payout_id} was cancelled before it was confirmed; request a new payout`);
      if (l.state === "failed") {
        throw failedPrecondition("IDEMPOTENCY_KEY_FAILED", `payout ${row.payout_id} was refused by the ledger when it was confirmed; request a new payout with a new idempotency key`);
      }
      if (l.state === "expired" || !isQuoteUsable({ expire_time_ns: row.quote_expire_time_ns }, now)) {
        throw failedPrecondition("QUOTE_EXPIRED", `the quote of payout ${row.payout_id} expired; request a new payout (a new idempotency key)`, { payout_id: row.payout_id });
      }
      const dest = payingDestination(await store.getDestinations(author, row.rail), now);
      if (dest === null) throw failedPrecondition("NO_PAYOUT_DESTINATION", `no active payout destination on rail ${row.rail}`, { rail: row.rail });
      const fixed = await store.fixDestination(row.payout_id, dest.address, now);
      if (fixed === null) throw failedPrecondition("QUOTE_CANCELLED", `payout ${row.payout_id} was cancelled before it was confirmed`);
      const plan = payoutHoldPlan({ author_id: author, idempotency_key: row.idempotency_key, rail: row.rail, net_micro: row.net_micro, fee_micro: row.fee_micro });
      if (idToHex(plan.hold.payout_id) !== row.payout_id) throw new Error("payout id does not match its (author, key)");
      const outcome = holdOutcome(await ledger.createTransfers(plan.transfers));
      switch (outcome.kind) {
        case "held":
        case "exists":
          await store.markHeld(row.payout_id, now);
          return create(ConfirmPayoutResponseSchema, { payout: await view(row.payout_id) });
        case "insufficient_funds":
          await store.markConfirmRefused(row.payout_id, now);
          throw insufficientFunds(idToHex(authorEarningsId(author)), await availableEarnings(author), row.amount_micro);
        case "idempotency_key_failed":
          await store.markConfirmRefused(row.payout_id, now);
          throw failedPrecondition("IDEMPOTENCY_KEY_FAILED", `payout ${row.payout_id} can no longer be held (an earlier attempt was refused); request a new payout with a new idempotency key`);
        case "earnings_not_found":
          await store.markConfirmRefused(row.payout_id, now);
          throw accountNotFound(idToHex(authorEarningsId(author)));
        case "idempotency_key_reused":
        case "rejected":
          throw ledgerRejected("payout hold", outcome.statuses.join(","));
      }
    },

    async getPayout(req, ctx) {
      const p = principalOf(ctx);
      if (p.kind === "author") authorizeReadPayouts(p, p.id, "read payouts");
      const l = await visible(ctx, req.payoutId);
      return create(GetPayoutResponseSchema, { payout: payoutView(l.row, l.state) });
    },

    async listPayouts(req, ctx) {
      const author = authorizeReadPayouts(principalOf(ctx), req.authorId, "list payouts");
      const v: Violation[] = [];
      // an admin may omit the author: every author's payouts (the operator dashboard's rail queues)
      const size = parsePageSize(req.pageSize, v);
      const rail = req.rail === 0 ? null : enabledRail(req.rail);
      const states = new Set(req.states);
      let cursor: { create_time_ns: bigint; payout_id: string } | null = null;
      if (req.pageToken !== "") {
        const m = /^v1\.(\d{1,20})\.([0-9a-f]{32})$/.exec(Buffer.from(req.pageToken, "base64url").toString("utf8"));
        if (m) cursor = { create_time_ns: BigInt(m[1]!), payout_id: m[2]! };
        else v.push({ field: "page_token", description: "must be a next_page_token returned by ListPayouts" });
      }
      throwIf(v);
      const now = deps.clock();
      const payouts: Payout[] = [];
      let last: PayoutRow | null = null;
      let exhausted = false;
      while (payouts.length < size && !exhausted) {
        const rows = await store.listPayouts(author, rail, cursor, size);
        exhausted = rows.length < size;
        for (const row of rows) {
          cursor = { create_time_ns: row.create_time_ns, payout_id: row.payout_id };
          const facts = await ledgerFacts(BigInt(`0x${row.payout_id}`));
          const state = stateOf(row, facts, now);
          if (states.size === 0 || states.has(protoPayoutState(state))) payouts.push(payoutView(row, state));
          last = row;
          if (payouts.length === size) break;
        }
      }
      const more = payouts.length === size && last !== null && (await store.listPayouts(author, rail, { create_time_ns: last.create_time_ns, payout_id: last.payout_id }, 1)).length > 0;
      const nextPageToken = more && last ? Buffer.from(`v1.${last.create_time_ns}.${last.payout_id}`).toString("base64url") : "";
      return create(ListPayoutsResponseSchema, { payouts, nextPageToken });
    },

    async cancelPayout(req, ctx) {
      const author = authorizeAuthorPayouts(principalOf(ctx), "cancel a payout");
      const l = await visible(ctx, req.payoutId);
      const { row } = l;
      if (row.author_id !== author) throw payoutNotFound(row.payout_id);
      const now = deps.clock();
      const notCancellable = (state: string) =>
        failedPrecondition("PAYOUT_NOT_CANCELLABLE", `payout ${row.payout_id} is ${state}: only a queued payout (not yet being paid) can be cancelled`, { payout_id: row.payout_id, state });
      if (l.state === "cancelled") return create(CancelPayoutResponseSchema, { payout: payoutView(row, l.state) });
      if (l.state === "quoted") {
        if (!(await store.cancelQuote(row.payout_id, now))) throw notCancellable("being confirmed");
        return create(CancelPayoutResponseSchema, { payout: await view(row.payout_id) });
      }
      if (!isCancellable(l.state, row.lease_expire_time_ns, now)) throw notCancellable(l.state);
      const intent = await store.setVoidIntent(row.payout_id, "cancelled", "cancelled by the author while queued", now);
      if (intent === null) throw notCancellable((await load(row.payout_id))!.state);
      const outcome = settleOutcome(await submitPayoutVoid(ledger, row.payout_id, row.author_id, "cancelled"));
      switch (outcome.kind) {
        case "applied":
        case "exists":
          await store.markSettled(row.payout_id, "voided", now, null);
          return create(CancelPayoutResponseSchema, { payout: await view(row.payout_id) });
        case "already_posted":
        case "voided_with_other_cause":
          throw notCancellable((await load(row.payout_id))!.state);
        case "already_voided":
        case "hold_not_found":
          throw ledgerRejected("payout void", outcome.kind);
        case "rejected":
          throw ledgerRejected("payout void", outcome.statuses.join(","));
      }
    },

    async listPayoutFees(_req, ctx) {
      principalOf(ctx);
      return create(ListPayoutFeesResponseSchema, {
        rails: ENABLED_PAYOUT_RAILS.map((rail) =>
          create(RailPayoutFeesSchema, {
            rail: protoRail(rail),
            fixedFeeMicro: schedule.fixed_fee_micro,
            feeBps: schedule.fee_bps,
            minimumNetMicro: schedule.minimum_net_micro,
            quoteTtlS: schedule.quote_ttl_s,
            destinationCoolingS: config.PAYOUT_DESTINATION_COOLING_S,
            accountRentFeeMicro: rail === "solana" ? config.PAYOUT_SOLANA_ACCOUNT_RENT_FEE_MICRO : 0n,
          }),
        ),
      });
    },

    // ---- rail adapters ----

    async claimPayouts(req, ctx) {
      const rail = railOf(req.rail);
      if (rail === null) throw invalidArgument([{ field: "rail", description: "must be set to the caller's rail" }]);
      authorizeRailAdapter(principalOf(ctx), rail, "claim payouts");
      enabledRail(req.rail);
      if (!(req.maxPayouts >= 1 && req.maxPayouts <= MAX_CLAIM)) throw invalidArgument([{ field: "max_payouts", description: `must be 1-${MAX_CLAIM}` }]);
      const lease_s = Math.min(req.leaseS === 0 ? config.PAYOUT_LEASE_S : req.leaseS, config.PAYOUT_LEASE_MAX_S);
      const now = deps.clock();
      await store.claim(rail, now, now + BigInt(lease_s) * NS_PER_S, req.maxPayouts);
      const payouts = [];
      for (const row of await store.leased(rail, now)) {
        const facts = await ledgerFacts(BigInt(`0x${row.payout_id}`));
        if (!facts.held || facts.posted || facts.voided !== null) {
          await syncRow(row, facts, now); // the ledger already settled it: not to be paid
          continue;
        }
        payouts.push(
          create(ClaimedPayoutSchema, {
            payout: payoutView(row, stateOf(row, facts, now)),
            leaseExpireTime: { seconds: row.lease_expire_time_ns! / NS_PER_S, nanos: Number(row.lease_expire_time_ns! % NS_PER_S) },
            signedTransaction: row.signed_transaction ?? new Uint8Array(),
          }),
        );
      }
      return create(ClaimPayoutsResponseSchema, { payouts });
    },

    async recordSignedTransaction(req, ctx) {
      const l = await railPayout(ctx, req.payoutId, "record a signed transaction");
      const { row } = l;
      const rp = profile(row.rail);
      const v: Violation[] = [];
      if (req.signedTransaction.length === 0) v.push({ field: "signed_transaction", description: "must not be empty" });
      const tx_ref = rp.canonicalTxRef(req.txRef);
      const replaces = rp.canonicalTxRef(req.replacesTxRef);
      const bad = rp.checkSignedTransaction(req.signedTransaction, tx_ref);
      if (bad !== null) v.push({ field: "tx_ref", description: bad });
      if (replaces !== "" && rp.checkSignedTransaction(new Uint8Array(), replaces) !== null) v.push({ field: "replaces_tx_ref", description: "must be empty or a transaction reference" });
      if (replaces === "" && req.observedBlockHeight !== 0n) v.push({ field: "observed_block_height", description: "must be 0 without replaces_tx_ref" });
      throwIf(v);
      if (row.tx_ref === tx_ref) return create(RecordSignedTransactionResponseSchema, { payout: payoutView(row, l.state) }); // same hash = same bytes
      if (l.state !== "claimed" && l.state !== "submitted") {
        throw failedPrecondition(l.state === "confirmed" ? "PAYOUT_ALREADY_POSTED" : "PAYOUT_ALREADY_VOIDED", `payout ${row.payout_id} is ${l.state}: nothing may be signed for it`, { payout_id: row.payout_id, state: l.state });
      }
      if (replaces !== "" && row.tx_ref === replaces) {
        const proven = rp.checkReplacement(row.replay_guard, req.observedBlockHeight);
        if (!proven.ok) {
          throw failedPrecondition("REPLACEMENT_NOT_PROVEN", `observed_block_height: ${proven.rule}`, { payout_id: row.payout_id, recorded_tx_ref: row.tx_ref, replay_guard: String(row.replay_guard ?? "") });
        }
      }
      const now = deps.clock();
      const r = await store.recordSigned({ payout_id: row.payout_id, now_ns: now, signed_transaction: req.signedTransaction, tx_ref, replay_guard: req.replayGuard, replaces_tx_ref: replaces });
      if (r.ok) return create(RecordSignedTransactionResponseSchema, { payout: await view(row.payout_id) });
      const cur = r.row!;
      if (cur.tx_ref === tx_ref) return create(RecordSignedTransactionResponseSchema, { payout: await view(row.payout_id) });
      if (cur.tx_ref !== null && cur.tx_ref !== replaces) {
        throw failedPrecondition(
          "SIGNED_TRANSACTION_EXISTS",
          `payout ${row.payout_id} already has signed transaction ${cur.tx_ref}, which may still land: re-broadcast it, or name it in replaces_tx_ref once the chain proved it never can`,
          { payout_id: row.payout_id, recorded_tx_ref: cur.tx_ref },
        );
      }
      if (cur.tx_ref === null && replaces !== "") throw invalidArgument([{ field: "replaces_tx_ref", description: "must be empty: no transaction is recorded for this payout" }]);
      if (cur.void_intent !== null) throw failedPrecondition("PAYOUT_ALREADY_VOIDED", `payout ${row.payout_id} is being ${cur.void_intent === "cancelled" ? "cancelled" : "failed"}: nothing may be signed for it`);
      throw failedPrecondition("LEASE_NOT_HELD", `payout ${row.payout_id} is not leased to you (the lease expired or it was never claimed): claim it again`, { payout_id: row.payout_id });
    },

    async completePayout(req, ctx) {
      const l = await railPayout(ctx, req.payoutId, "complete a payout");
      const { row } = l;
      const v: Violation[] = [];
      const rp = profile(row.rail);
      const tx_ref = rp.canonicalTxRef(req.txRef);
      if (row.tx_ref === null) v.push({ field: "tx_ref", description: "no signed transaction is recorded for this payout: record it before broadcasting" });
      else if (tx_ref !== row.tx_ref) v.push({ field: "tx_ref", description: `must be the recorded transaction ${row.tx_ref}` });
      if (req.confirmations < rp.finality_depth) v.push({ field: "confirmations", description: `must be >= the finality depth ${rp.finality_depth}` });
      if (req.preimage !== "") v.push({ field: "preimage", description: `must be empty on rail ${row.rail}` });
      if (req.accountCreated && row.rail !== "solana") v.push({ field: "account_created", description: `must be false on rail ${row.rail}` });
      throwIf(v);
      if (l.state === "confirmed") return create(CompletePayoutResponseSchema, { payout: payoutView(row, l.state) });
      const ids = payoutTransferIds(BigInt(`0x${row.payout_id}`));
      const found = await ledger.lookupTransfers([ids.hold, ids.fee_hold]);
      const hold = found.find((t) => t.id === ids.hold);
      const fee = found.find((t) => t.id === ids.fee_hold);
      if (!hold || !fee) throw ledgerRejected("payout post", "hold_not_found");
      const now = deps.clock();
      // Solana: the quoted rent part of the fee is charged only if this payout created the
      // destination's token account; otherwise it returns to the author (ADR 0091).
      const held = readPayoutHold(hold, fee);
      const fee_posted_micro = req.accountCreated ? held.fee_micro : held.fee_micro - row.account_rent_fee_micro;
      // The rail's facts first (ADR 0084): the streamer that sees the post must find them.
      await store.recordRailFacts(row.payout_id, { network_fee_native: req.networkFeeNative, block_number: req.blockNumber, confirmations: req.confirmations }, now);
      const outcome = settleOutcome(await ledger.createTransfers(payoutPostPlan(held, { fee_posted_micro })));
      switch (outcome.kind) {
        case "applied":
        case "exists":
          await store.markSettled(row.payout_id, "posted", now, req.networkFeeNative);
          return create(CompletePayoutResponseSchema, { payout: await view(row.payout_id) });
        case "already_voided":
          requestLogger(ctx).error({ event: "payout_paid_after_void", payout_id: row.payout_id, tx_ref }, "ALARM: a voided payout was confirmed on chain: money left while the ledger returned it");
          throw failedPrecondition("PAYOUT_ALREADY_VOIDED", `payout ${row.payout_id} was already voided in the ledger; the rail reports it paid (alarm raised)`, { payout_id: row.payout_id, tx_ref });
        case "already_posted":
        case "voided_with_other_cause":
        case "hold_not_found":
          throw ledgerRejected("payout post", outcome.kind);
        case "rejected":
          throw ledgerRejected("payout post", outcome.statuses.join(","));
      }
    },

    async failPayout(req, ctx) {
      const l = await railPayout(ctx, req.payoutId, "fail a payout");
      const { row } = l;
      const v: Violation[] = [];
      const reason = req.reason.trim();
      if (reason === "" || reason.length > MAX_REASON_CHARS) v.push({ field: "reason", description: `must be a sentence of 1-${MAX_REASON_CHARS} characters` });
      const tx_ref = profile(row.rail).canonicalTxRef(req.txRef);
      if (row.tx_ref === null && tx_ref !== "") v.push({ field: "tx_ref", description: "must be empty: no signed transaction is recorded for this payout" });
      if (row.tx_ref !== null && tx_ref !== row.tx_ref) v.push({ field: "tx_ref", description: `must be the recorded transaction ${row.tx_ref}, which the chain proved can never land` });
      throwIf(v);
      if (l.state === "failed" || l.state === "cancelled") return create(FailPayoutResponseSchema, { payout: payoutView(row, l.state) });
      if (l.state === "confirmed") throw failedPrecondition("PAYOUT_ALREADY_POSTED", `payout ${row.payout_id} was already completed`, { payout_id: row.payout_id });
      const now = deps.clock();
      const intent = await store.setVoidIntent(row.payout_id, "failed", reason, now);
      if (intent === null) {
        const cur = (await load(row.payout_id))!;
        if (cur.state === "confirmed") throw failedPrecondition("PAYOUT_ALREADY_POSTED", `payout ${row.payout_id} was already completed`, { payout_id: row.payout_id });
        if (cur.row.void_intent !== "cancelled") throw ledgerRejected("payout void", `unexpected state ${cur.state}`);
        // Being cancelled by the author: void as cancelled (the money returns either way).
      }
      const cause = intent === null ? "cancelled" : "failed";
      const outcome = settleOutcome(await submitPayoutVoid(ledger, row.payout_id, row.author_id, cause));
      switch (outcome.kind) {
        case "applied":
        case "exists":
        case "voided_with_other_cause":
          await store.markSettled(row.payout_id, "voided", now, null);
          return create(FailPayoutResponseSchema, { payout: await view(row.payout_id) });
        case "already_posted":
          throw failedPrecondition("PAYOUT_ALREADY_POSTED", `payout ${row.payout_id} was already completed`, { payout_id: row.payout_id });
        case "already_voided":
        case "hold_not_found":
          throw ledgerRejected("payout void", outcome.kind);
        case "rejected":
          throw ledgerRejected("payout void", outcome.statuses.join(","));
      }
    },
  };
}

/** The registration line for src/services/index.ts. */
export function settlementServiceRegistration(ctx: DaemonContext): ServiceRegistration {
  const generic = {
    ...createSettlementService({ ledger: ctx.ledger, store: ctx.controlplane.settlement, config: ctx.config, clock: ctx.clock }),
    ...createDepositHandlers({
      ledger: ctx.ledger,
      challenges: ctx.controlplane.settlement,
      deposits: ctx.controlplane.deposits,
      config: ctx.config,
      clock: ctx.clock,
      rails: enabledRails(ctx.config),
    }),
    ...createDepositReadHandlers({ ledger: ctx.ledger, deposits: ctx.controlplane.deposits, clock: ctx.clock }),
  };
  // The Lightning rail (issue 15) wraps the generic handlers: ./lightning.ts.
  return defineService(
    SettlementService,
    withLightning(generic, {
      ledger: ctx.ledger,
      store: ctx.controlplane.settlement,
      lightning: ctx.controlplane.lightning,
      config: ctx.config,
      clock: ctx.clock,
      rates: configuredRateProvider(ctx.config),
    }),
  );
}
