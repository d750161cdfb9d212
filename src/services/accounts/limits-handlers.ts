/**
 * AccountService handlers for spending limits (ADR 0110) and peer transfers (ADR 0111).
 * Thin like the others: validate every field, authorize (the agent itself, or an admin), plan
 * with src/domain/limits.ts / peer.ts, submit one linked chain, map the ledger's answer. Every
 * limit is decided inside the ledger by the chain; the reads here only explain a refusal.
 */
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { AccountFilterFlags, CreateTransferStatus as CT, TransferFlags, type Client, type Transfer as LedgerTransfer } from "tigerbeetle-node";
import {
  GetSpendingLimitsResponseSchema,
  PeerTransferDirection,
  PeerTransferSchema,
  SpendingLimitSchema,
  type GetSpendingLimitsRequest,
  type GetSpendingLimitsResponse,
  type ListPeerTransfersRequest,
  type PeerTransfer,
  type SetSpendingLimitsRequest,
  type TransferFundsRequest,
} from "../../../clients/gen/masques/ledger/v1/account_service_pb.js";
import type { LimitsStore, PeerTransferRow } from "../../controlplane/limits.js";
import { AMOUNT_MAX_MICRO, IDEMPOTENCY_KEY_RE, OWNER_ID_RE, OWNER_ID_RULE, agentWalletId, availableMicro, isAgentWalletCode } from "../../domain/accounts.js";
import { TransferCode } from "../../domain/codes.js";
import { idToHex } from "../../domain/ids.js";
import { NO_CAP_MICRO, SET_CAP_PROBE_INDEX, agentCapId, planSetCap } from "../../domain/limits.js";
import { MEMO_MAX_CHARS, peerTransferId, planPeerTransfer } from "../../domain/peer.js";
import { authorizeAgentOwn, isAdmin, principalOf } from "../authz.js";
import { accountNotFound, failedPrecondition, idempotencyKeyReused, insufficientFunds, invalidArgument, ledgerRejected, permissionDenied, type Violation } from "../errors.js";
import { dayOf, refusedBy, spendingLimitExceeded, type LimitState, type Limits } from "../limits/limits.js";
import { decodePageToken, encodePageToken, parsePageSize, timestampFromNs, transferView } from "../views.js";
import { requestIdKey, type Principal } from "../../server/principal.js";
import type { AuditInput } from "../../domain/audit-chain.js";

export interface LimitHandlerDeps {
  readonly ledger: Client;
  readonly limits: Limits;
  readonly store: LimitsStore;
  /** Wall clock, ns since the epoch (the UTC day of a spend). */
  readonly clock: () => bigint;
  /** Appends an audit entry (ADR 0101); an admin's SetSpendingLimits is recorded (ADR 0109). */
  readonly audit?: (entry: AuditInput) => Promise<void>;
}

/** The caps an audit entry records (micro-USD; NO_CAP_MICRO means none). */
function capsOf(v: GetSpendingLimitsResponse): { daily_cap_micro: bigint | null; session_cap_micro: bigint | null } {
  return { daily_cap_micro: v.daily?.limitMicro ?? null, session_cap_micro: v.perSession?.limitMicro ?? null };
}

/** The agent a request names (empty: the calling agent), validated and authorized (authz.ts). */
function agentOf(p: Principal, requested: string, field: string, scope: "ledger:read" | "ledger:write", action: string): string {
  const id = requested === "" && p.kind === "agent" ? p.id : requested;
  if (!OWNER_ID_RE.test(id)) throw invalidArgument([{ field, description: id === "" ? "must be set" : OWNER_ID_RULE }]);
  authorizeAgentOwn(p, id, scope, action);
  return id;
}

function limitView(s: LimitState) {
  return create(SpendingLimitSchema, {
    limitMicro: s.limit_micro,
    unlimited: s.limit_micro >= NO_CAP_MICRO,
    usedMicro: s.used_micro,
    remainingMicro: s.remaining_micro,
    ...(s.resets_at_ns === null ? {} : { resetTime: timestampFromNs(s.resets_at_ns) }),
  });
}

function peerView(t: LedgerTransfer, row: PeerTransferRow | undefined): PeerTransfer {
  return create(PeerTransferSchema, {
    transfer: transferView(t),
    fromAgentId: row?.from_agent_id ?? "",
    toAgentId: row?.to_agent_id ?? "",
    memo: row?.memo ?? "",
    idempotencyKey: row?.idempotency_key ?? "",
  });
}

export function createLimitHandlers(deps: LimitHandlerDeps) {
  const { ledger, limits, store, clock } = deps;

  async function mustWallet(agent_id: string, field: string): Promise<bigint> {
    const id = agentWalletId(agent_id);
    const [a] = await ledger.lookupAccounts([id]);
    if (a === undefined) throw accountNotFound(idToHex(id));
    if (!isAgentWalletCode(a.code)) throw invalidArgument([{ field, description: "must name an agent with a wallet" }]);
    return id;
  }

  async function limitsView(agent_id: string, wallet: bigint): Promise<GetSpendingLimitsResponse> {
    const day = dayOf(clock());
    const [own, peer] = await Promise.all([limits.read(wallet, day), limits.readPeer(wallet, day)]);
    return create(GetSpendingLimitsResponseSchema, {
      agentId: agent_id,
      daily: limitView(own.daily),
      perSession: limitView(own.session),
      peerTransferMax: limitView(peer.max),
      peerDailyVolume: limitView(peer.daily),
    });
  }

  return {
    async getSpendingLimits(req: GetSpendingLimitsRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      const agent = agentOf(p, req.agentId, "agent_id", "ledger:read", "read the spending limits");
      return limitsView(agent, await mustWallet(agent, "agent_id"));
    },

    async setSpendingLimits(req: SetSpendingLimitsRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      const v: Violation[] = [];
      if (req.dailyCapMicro === undefined && req.sessionCapMicro === undefined) v.push({ field: "daily_cap_micro", description: "set daily_cap_micro and/or session_cap_micro" });
      for (const [field, value] of [["daily_cap_micro", req.dailyCapMicro], ["session_cap_micro", req.sessionCapMicro]] as const) {
        if (value !== undefined && value > AMOUNT_MAX_MICRO) v.push({ field, description: "must be <= 9223372036854775807 (which means no cap)" });
      }
      if (v.length > 0) throw invalidArgument(v);
      const agent = agentOf(p, req.agentId, "agent_id", "ledger:write", "set the spending limits");
      const wallet = await mustWallet(agent, "agent_id");
      await limits.ensureAgent(wallet);
      const lowerOnly = !isAdmin(p);
      const before = lowerOnly || !deps.audit ? null : await limitsView(agent, wallet);
      const nonce = randomUUID();
      const parts: { field: string; chain: LedgerTransfer[] }[] = [];
      if (req.dailyCapMicro !== undefined) parts.push({ field: "daily_cap_micro", chain: planSetCap(agentCapId("daily", wallet), req.dailyCapMicro, nonce, lowerOnly) });
      if (req.sessionCapMicro !== undefined) parts.push({ field: "session_cap_micro", chain: planSetCap(agentCapId("session", wallet), req.sessionCapMicro, nonce, lowerOnly) });
      // Both caps in one linked chain: all or nothing.
      const chain = parts.flatMap((x) => x.chain);
      for (let i = 0; i < chain.length - 1; i++) chain[i]!.flags |= TransferFlags.linked;
      const res = await ledger.createTransfers(chain);
      if (!res.every((r) => r.status === CT.created)) {
        let at = 0;
        for (const part of parts) {
          if (lowerOnly && res[at + SET_CAP_PROBE_INDEX]?.status === CT.exceeds_credits) {
            throw permissionDenied(`agent ${JSON.stringify(agent)} may only lower its own spending limits (${part.field}); an admin may raise them`, {
              reason: "SPENDING_LIMIT_RAISE_DENIED",
              field: part.field,
            });
          }
          at += part.chain.length;
        }
        const bad = res.find((r) => r.status !== CT.linked_event_failed && r.status !== CT.created);
        throw ledgerRejected("set spending limits", bad ? (CT[bad.status] ?? String(bad.status)) : "linked_event_failed");
      }
      const after = await limitsView(agent, wallet);
      if (before !== null && deps.audit) {
        // An admin money action (issue 16, ADR 0109): recorded once the ledger accepted it.
        await deps.audit({
          time_ns: clock(),
          actor_kind: p.kind,
          actor_id: p.id,
          action: "account.set_spending_limits",
          subject: `agent:${agent}`,
          request_id: ctx.values.get(requestIdKey) || "unknown",
          before: capsOf(before),
          after: capsOf(after),
          dedupe_key: `account.set_spending_limits:${nonce}`,
        });
      }
      return { limits: after };
    },

    async transferFunds(req: TransferFundsRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      const v: Violation[] = [];
      if (!OWNER_ID_RE.test(req.toAgentId)) v.push({ field: "to_agent_id", description: req.toAgentId === "" ? "must be set" : OWNER_ID_RULE });
      if (req.amountMicro <= 0n) v.push({ field: "amount_micro", description: "must be > 0" });
      else if (req.amountMicro > AMOUNT_MAX_MICRO) v.push({ field: "amount_micro", description: "must be <= 9223372036854775807" });
      if ([...req.memo].length > MEMO_MAX_CHARS) v.push({ field: "memo", description: `must be at most ${MEMO_MAX_CHARS} characters` });
      if (!IDEMPOTENCY_KEY_RE.test(req.idempotencyKey)) v.push({ field: "idempotency_key", description: OWNER_ID_RULE });
      if (v.length > 0) throw invalidArgument(v);
      const from = agentOf(p, req.fromAgentId, "from_agent_id", "ledger:write", "send a peer transfer");
      if (from === req.toAgentId) throw invalidArgument([{ field: "to_agent_id", description: "must differ from the sender" }]);
      const [fromWallet, toWallet] = await Promise.all([mustWallet(from, "from_agent_id"), mustWallet(req.toAgentId, "to_agent_id")]);
      const now = clock();
      const day = dayOf(now);
      await limits.ensureAgent(fromWallet);
      const [dayPeer, daySpend] = await Promise.all([limits.ensureDay("peer", fromWallet, day), limits.ensureDay("spend", fromWallet, day)]);
      const id = peerTransferId(from, req.idempotencyKey);
      const row: PeerTransferRow = {
        transfer_id: idToHex(id),
        from_agent_id: from,
        to_agent_id: req.toAgentId,
        amount_micro: req.amountMicro,
        memo: req.memo,
        idempotency_key: req.idempotencyKey,
        create_time_ns: now,
      };
      // The text first (insert-or-keep): the ledger then decides; a refused transfer's row is never listed.
      await store.putPeerTransfer(row);
      const { chain, checks } = planPeerTransfer({
        id,
        from_wallet_id: fromWallet,
        to_wallet_id: toWallet,
        amount_micro: req.amountMicro,
        memo: req.memo,
        day_peer_account_id: dayPeer,
        day_spend_account_id: daySpend,
      });
      const res = await ledger.createTransfers(chain);
      if (res.length !== chain.length) throw ledgerRejected("transfer funds", "result count mismatch");
      const st = res[0]!.status;
      const name = CT[st] ?? String(st);
      if (st !== CT.created && st !== CT.exists) {
        if (name.startsWith("exists_with_different")) throw idempotencyKeyReused(req.idempotencyKey, idToHex(id), "peer transfer (recipient, amount or memo differ)");
        if (st === CT.exceeds_credits) {
          const [w] = await ledger.lookupAccounts([fromWallet]);
          throw insufficientFunds(idToHex(fromWallet), w ? availableMicro(w) : 0n, req.amountMicro);
        }
        if (st === CT.id_already_failed) {
          throw failedPrecondition("IDEMPOTENCY_KEY_FAILED", `a peer transfer with idempotency key ${JSON.stringify(req.idempotencyKey)} already failed; use a new key`, {
            idempotency_key: req.idempotencyKey,
          });
        }
        if (st === CT.debit_account_already_closed || st === CT.credit_account_already_closed) {
          throw failedPrecondition("ACCOUNT_CLOSED", `a wallet of this transfer is closed (${name})`, {});
        }
        const limit = refusedBy(res, checks);
        if (limit !== null) {
          const whose = `agent ${JSON.stringify(from)}`;
          if (limit === "daily_cap") throw spendingLimitExceeded(limit, (await limits.read(fromWallet, day)).daily, req.amountMicro, whose);
          const peer = await limits.readPeer(fromWallet, day);
          throw spendingLimitExceeded(limit, limit === "peer_transfer_max" ? peer.max : peer.daily, req.amountMicro, whose);
        }
        const bad = res.find((r) => r.status !== CT.linked_event_failed);
        throw ledgerRejected("transfer funds", bad ? (CT[bad.status] ?? String(bad.status)) : name);
      }
      const [stored] = await ledger.lookupTransfers([id]);
      if (stored === undefined) throw ledgerRejected("transfer funds", "created transfer not found");
      const rows = await store.peerTransfers([idToHex(id)]);
      return { transfer: peerView(stored, rows.get(idToHex(id))) };
    },

    async listPeerTransfers(req: ListPeerTransfersRequest, ctx: HandlerContext) {
      const p = principalOf(ctx);
      const v: Violation[] = [];
      const pageSize = parsePageSize(req.pageSize, v);
      if (![PeerTransferDirection.UNSPECIFIED, PeerTransferDirection.SENT, PeerTransferDirection.RECEIVED].includes(req.direction)) {
        v.push({ field: "direction", description: "must be PEER_TRANSFER_DIRECTION_SENT, _RECEIVED or unset" });
      }
      const agent = agentOf(p, req.agentId, "agent_id", "ledger:read", "list the peer transfers");
      const query = ["ListPeerTransfers", agent, req.direction];
      const before = decodePageToken(req.pageToken, query, v);
      if (v.length > 0) throw invalidArgument(v);
      const wallet = await mustWallet(agent, "agent_id");
      const flags =
        req.direction === PeerTransferDirection.SENT
          ? AccountFilterFlags.debits
          : req.direction === PeerTransferDirection.RECEIVED
            ? AccountFilterFlags.credits
            : AccountFilterFlags.debits | AccountFilterFlags.credits;
      const transfers = await ledger.getAccountTransfers({
        account_id: wallet,
        user_data_128: 0n,
        user_data_64: 0n,
        user_data_32: 0,
        code: TransferCode.peer_transfer,
        timestamp_min: 0n,
        timestamp_max: before === 0n ? 0n : before - 1n,
        limit: pageSize + 1,
        flags: flags | AccountFilterFlags.reversed,
      });
      const page = transfers.slice(0, pageSize);
      const rows = await store.peerTransfers(page.map((t) => idToHex(t.id)));
      return {
        transfers: page.map((t) => peerView(t, rows.get(idToHex(t.id)))),
        nextPageToken: transfers.length > pageSize ? encodePageToken(page[page.length - 1]!.timestamp, query) : "",
      };
    },
  };
}
