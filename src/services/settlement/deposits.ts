/**
 * SettlementService, deposits (issue 13 "Deposits"; seed 004 §4.3; docs/adr/0087): an agent binds
 * a deposit source address with proof of ownership; the rail adapter (the only holder of chain
 * credentials, which verified the deposit on chain) reports it; the daemon decides with
 * decideDepositReport and credits the bound agent's wallet exactly once per canonical
 * (chain id, tx ref, event index). Unbound source → HELD for an admin, never credited to a guess;
 * below finality → CONFIRMING, nothing credited; contradicting facts → refused and recorded.
 *
 * Order of writes: the ledger credit first (deterministic id: a retry answers `exists`), then
 * the record; a crash between them is repaired by the adapter's retry of the same report.
 */
import { create } from "@bufbuild/protobuf";
import { AccountFlags, type Client } from "tigerbeetle-node";
import {
  BindDepositSourceResponseSchema,
  DepositSchema,
  DepositSourceSchema,
  DepositState,
  ReportDepositResponseSchema,
  type SettlementService,
} from "../../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Config } from "../../config.js";
import type { DepositRow, DepositStore, SettlementStore } from "../../controlplane/settlement.js";
import { agentWalletId } from "../../domain/accounts.js";
import type { RailName } from "../../domain/codes.js";
import { idToHex } from "../../domain/ids.js";
import { decideDepositReport } from "../../domain/settlement/deposits.js";
import { canonicalDepositKey, depositCreditId, DepositKeyError } from "../../domain/settlement/ids.js";
import { depositOutcome } from "../../domain/settlement/plans.js";
import { railProfile } from "./rails.js";
import { requestLogger } from "../../server/context.js";
import { authorizeBindDepositSource, authorizeRailAdapter, principalOf } from "../authz.js";
import { alreadyExists, failedPrecondition, invalidArgument, ledgerRejected, permissionDenied, statusError, type Violation } from "../errors.js";
import { Code } from "@connectrpc/connect";
import { transferView, timestampFromNs } from "../views.js";
import { protoRail, railOf } from "./views.js";

export interface DepositDeps {
  ledger: Client;
  challenges: SettlementStore;
  deposits: DepositStore;
  config: Config;
  clock: () => bigint;
  /** Rails whose deposits this daemon accepts. */
  rails: readonly RailName[];
}

const NS_PER_MS = 1_000_000n;

const STATE = { confirming: DepositState.CONFIRMING, credited: DepositState.CREDITED, held: DepositState.HELD, reorged: DepositState.REORGED } as const;

export function depositView(d: DepositRow) {
  return create(DepositSchema, {
    depositId: d.deposit_id,
    rail: protoRail(d.rail),
    chainId: d.chain_id,
    txRef: d.tx_ref,
    eventIndex: d.event_index,
    fromAddress: d.from_address,
    amountMicro: d.amount_micro,
    confirmations: d.confirmations,
    finalityDepth: d.finality_depth,
    state: STATE[d.state],
    agentId: d.agent_id ?? "",
    createTime: timestampFromNs(d.create_time_ns),
    blockNumber: d.block_number,
    blockHash: d.block_hash,
    releasedBy: d.released_by ?? "",
    releaseReason: d.release_reason ?? "",
    releaseTime: d.release_time_ns === null ? undefined : timestampFromNs(d.release_time_ns),
  });
}

/** The deposit handlers, merged into the SettlementService implementation. */
export function createDepositHandlers(deps: DepositDeps): Pick<ServiceImpl<typeof SettlementService>, "bindDepositSource" | "reportDeposit"> {
  const { ledger, config } = deps;
  const chainId = (rail: RailName): string => railProfile(config, rail).chain_id;
  const finality = (rail: RailName): number => railProfile(config, rail).finality_depth;

  function enabled(r: number): RailName {
    const rail = railOf(r);
    if (rail === null) throw invalidArgument([{ field: "rail", description: "must be set (RAIL_BASE, RAIL_SOLANA or RAIL_LIGHTNING)" }]);
    if (!deps.rails.includes(rail)) throw failedPrecondition("RAIL_NOT_ENABLED", `deposits on rail ${rail} are not enabled on this daemon`, { rail });
    return rail;
  }

  return {
    async bindDepositSource(req, ctx) {
      const agent = authorizeBindDepositSource(principalOf(ctx));
      const rail = enabled(req.rail);
      const rp = railProfile(config, rail);
      const v: Violation[] = [];
      const address = rp.canonicalAddress(req.address);
      if (address === null) v.push({ field: "address", description: rp.address_rule });
      if (!req.proof || !/^[0-9a-f]{32}$/.test(req.proof.challengeId)) v.push({ field: "proof.challenge_id", description: "must be the 32-hex challenge_id from CreateDestinationChallenge" });
      if (v.length > 0) throw invalidArgument(v);
      const now = deps.clock();
      const invalid = (why: string) => failedPrecondition("CHALLENGE_INVALID", `proof.challenge_id: ${why}; ask for a new challenge`, { challenge_id: req.proof!.challengeId });
      const c = await deps.challenges.getChallenge(req.proof!.challengeId);
      if (c === null || c.principal !== `agent:${agent}` || c.purpose !== "deposit_source" || c.rail !== rail) throw invalid("unknown, or not issued to you for a deposit source on this rail");
      if (c.address !== address) throw invalid(`the challenge is for ${c.address}, not ${address}`);
      const view = (owner: string) => {
        if (owner !== agent) {
          throw alreadyExists("DEPOSIT_SOURCE_TAKEN", `${address} is already bound to another agent on rail ${rail}`, { rail, address: address! });
        }
        return create(BindDepositSourceResponseSchema, { source: create(DepositSourceSchema, { rail: protoRail(rail), address: address!, agentId: agent, createTime: timestampFromNs(now) }) });
      };
      if (c.used_at_ms !== null) {
        const owner = await deps.deposits.sourceAgent(rail, address!);
        if (owner !== null) return view(owner);
        throw invalid("already used");
      }
      const proof = await rp.verifyProof(c, req.proof!.signature, Number(now / NS_PER_MS));
      if (!proof.ok) {
        if (proof.kind === "expired") throw invalid(proof.reason);
        if (proof.kind === "malformed_signature") throw invalidArgument([{ field: "proof.signature", description: proof.reason.replace(/^signature: /, "") }]);
        throw statusError(Code.PermissionDenied, "OWNERSHIP_PROOF_INVALID", proof.reason, { address: address! });
      }
      await deps.challenges.useChallenge(c.challenge_id, Number(now / NS_PER_MS));
      return view(await deps.deposits.bindSource(rail, address!, agent, now));
    },

    async reportDeposit(req, ctx) {
      const p = principalOf(ctx);
      if (p.kind !== "rail") throw permissionDenied(`${p.kind} ${JSON.stringify(p.id)} may not report deposits: rail adapters only (deposits are credited only from a rail's verified report)`, { principal_kind: p.kind });
      const rail = (["base", "solana", "lightning"] as const).find((r) => r === p.id);
      if (rail === undefined) throw permissionDenied(`rail adapter ${JSON.stringify(p.id)} is not a known rail`, { principal_kind: p.kind });
      authorizeRailAdapter(p, rail, "report deposits");
      if (!deps.rails.includes(rail)) throw failedPrecondition("RAIL_NOT_ENABLED", `deposits on rail ${rail} are not enabled on this daemon`, { rail });
      const rp = railProfile(config, rail);
      const from = rp.canonicalAddress(req.fromAddress);
      if (from === null) throw invalidArgument([{ field: "from_address", description: rp.address_rule }]);
      const now = deps.clock();
      const report = { chain_id: req.chainId, tx_ref: req.txRef, event_index: req.eventIndex, from_address: from, amount_micro: req.amountMicro, confirmations: req.confirmations };
      let depositId: string | null = null;
      try {
        depositId = idToHex(depositCreditId(canonicalDepositKey(rail, report)));
      } catch (e) {
        if (!(e instanceof DepositKeyError)) throw e;
      }
      const earlier = depositId === null ? null : await deps.deposits.getDeposit(depositId);
      // Block hashes compare case-insensitively where they are hex (Base); Solana's are base58.
      const blockHash = rp.canonicalBlockHash(req.blockHash);
      const boundAgent = await deps.deposits.sourceAgent(rail, from);
      let binding: { wallet_id: bigint; wallet: "open" | "missing" | "closed" } | null = null;
      if (boundAgent !== null) {
        const wallet_id = agentWalletId(boundAgent);
        const [w] = await ledger.lookupAccounts([wallet_id]);
        binding = { wallet_id, wallet: w === undefined ? "missing" : w.flags & AccountFlags.closed ? "closed" : "open" };
      }
      const decision = decideDepositReport({
        rail,
        chain_id: chainId(rail),
        finality_depth: finality(rail),
        report,
        earlier: earlier === null ? null : { from_address: earlier.from_address, amount_micro: earlier.amount_micro },
        binding,
      });
      const refuse = async (reason: string, detail: string) =>
        deps.deposits.recordRefusal(
          { rail, chain_id: req.chainId, tx_ref: req.txRef, event_index: req.eventIndex, reason, detail, report: JSON.stringify({ ...report, amount_micro: String(report.amount_micro), block_number: String(req.blockNumber), block_hash: req.blockHash }) },
          now,
        );
      const record = (key: { chain_id: string; tx_ref: string; event_index: number }, state: DepositRow["state"], agent_id: string | null) =>
        deps.deposits.recordDeposit(
          {
            deposit_id: depositId!,
            rail,
            chain_id: key.chain_id,
            tx_ref: key.tx_ref,
            event_index: key.event_index,
            from_address: from,
            amount_micro: req.amountMicro,
            block_number: req.blockNumber,
            block_hash: blockHash,
            confirmations: req.confirmations,
            finality_depth: finality(rail),
            state,
            agent_id,
            released_by: null,
            release_reason: null,
            release_time_ns: null,
          },
          now,
        );
      /**
       * Reorgs (ADR 0088): a report naming a block the adapter reported orphaned for this deposit
       * (or that a later report replaced with another block) is stale and refused; a `removed`
       * report marks that block orphaned and a deposit not yet
       * credited whose recorded block it is becomes REORGED (nothing credited); a credited one is
       * an alarm (finality was not final) and the report is refused. Null: carry on.
       */
      const reorgStep = async (key: { chain_id: string; tx_ref: string; event_index: number }) => {
        if (!req.removed && earlier !== null && (await deps.deposits.isOrphaned(earlier.deposit_id, blockHash))) {
          await refuse("DEPOSIT_BLOCK_ORPHANED", `block ${blockHash} was reported orphaned for this deposit`);
          throw failedPrecondition("DEPOSIT_BLOCK_ORPHANED", `block ${blockHash} was reported gone from the canonical chain for this deposit: a stale report; report the block that includes it now`, { deposit_id: earlier.deposit_id, block_hash: blockHash });
        }
        if (!req.removed) {
          // The same event in another block: the chain reorganised, the recorded block is no
          // longer canonical. Remember it, so a lagging report still counting on it is stale.
          if (earlier !== null && earlier.state !== "credited" && earlier.block_hash !== "" && blockHash !== "" && earlier.block_hash !== blockHash) {
            await deps.deposits.markOrphaned(earlier.deposit_id, earlier.block_hash, now);
          }
          return null;
        }
        if (earlier !== null && earlier.state === "credited") {
          requestLogger(ctx).error({ event: "deposit_reorged_after_credit", deposit_id: earlier.deposit_id, block_hash: blockHash }, "ALARM: a deposit credited at finality was reported gone from the chain");
          await refuse("DEPOSIT_ALREADY_CREDITED", `removed at ${blockHash} after it was credited`);
          throw failedPrecondition("DEPOSIT_ALREADY_CREDITED", `deposit ${earlier.deposit_id} was credited at finality; a removal is not applied (alarm raised)`, { deposit_id: earlier.deposit_id });
        }
        if (earlier === null) await record(key, "reorged", boundAgent);
        const row = await deps.deposits.markOrphaned(depositId!, blockHash, now);
        if (earlier?.state === "held" && row.state === "reorged") {
          requestLogger(ctx).error({ event: "deposit_reorged_after_hold", deposit_id: row.deposit_id }, "a held deposit was reported gone from the chain: not releasable");
        }
        return create(ReportDepositResponseSchema, { deposit: depositView(row) });
      };
      if (decision.action !== "refuse" && depositId !== null) {
        const reorg = await reorgStep(decision.key);
        if (reorg !== null) return reorg;
      }
      switch (decision.action) {
        case "refuse": {
          if (decision.reason === "INVALID_ARGUMENT") {
            await refuse(decision.reason, `${decision.field}: ${decision.rule}`);
            throw invalidArgument([{ field: decision.field, description: decision.rule }]);
          }
          if (decision.reason === "WRONG_CHAIN") {
            await refuse(decision.reason, `${decision.chain_id} is not ${decision.expected_chain_id}`);
            throw failedPrecondition("WRONG_CHAIN", `chain_id ${decision.chain_id} is not the ${rail} rail's chain ${decision.expected_chain_id}`, { chain_id: decision.chain_id, expected_chain_id: decision.expected_chain_id });
          }
          await refuse(decision.reason, `${decision.field}: recorded ${decision.recorded}, reported ${decision.reported}`);
          throw failedPrecondition("DEPOSIT_FACTS_MISMATCH", `${decision.field} ${decision.reported} contradicts the earlier report of this chain event (${decision.recorded}); nothing credited`, { field: decision.field, recorded: decision.recorded, reported: decision.reported });
        }
        case "record_confirming": {
          const row = await record(decision.key, "confirming", boundAgent);
          return create(ReportDepositResponseSchema, { deposit: depositView(row) });
        }
        case "hold": {
          if (decision.why !== "unbound_source") requestLogger(ctx).error({ event: "deposit_held", deposit_id: depositId, why: decision.why }, "deposit held for an admin: the bound agent's wallet cannot be credited");
          const row = await record(decision.key, "held", null);
          return create(ReportDepositResponseSchema, { deposit: depositView(row) });
        }
        case "credit": {
          if (earlier !== null && earlier.state === "held") {
            return create(ReportDepositResponseSchema, { deposit: depositView(await record(decision.key, "held", null)) });
          }
          if (earlier !== null && earlier.state === "credited") {
            // Already credited (by an earlier report or an admin's release): a replay, whatever
            // the source's binding says now; nothing is submitted again.
            const row = await record(decision.key, "credited", earlier.agent_id);
            const [t] = await ledger.lookupTransfers([decision.transfer.id]);
            return create(ReportDepositResponseSchema, { deposit: depositView(row), transfer: t ? transferView(t) : undefined });
          }
          const [result] = await ledger.createTransfers([decision.transfer]);
          const outcome = depositOutcome(result!);
          switch (outcome.kind) {
            case "credited":
            case "already_credited": {
              const row = await record(decision.key, "credited", boundAgent);
              const [t] = await ledger.lookupTransfers([decision.transfer.id]);
              return create(ReportDepositResponseSchema, { deposit: depositView(row), transfer: t ? transferView(t) : undefined });
            }
            case "facts_mismatch":
              await refuse("DEPOSIT_FACTS_MISMATCH", outcome.status);
              throw failedPrecondition("DEPOSIT_FACTS_MISMATCH", `the ledger already credited this chain event with other facts (${outcome.status}); nothing credited`);
            case "wallet_not_found":
            case "id_already_failed": {
              requestLogger(ctx).error({ event: "deposit_held", deposit_id: depositId, why: outcome.kind }, "deposit held for an admin: the credit was refused");
              const row = await record(decision.key, "held", null);
              return create(ReportDepositResponseSchema, { deposit: depositView(row) });
            }
            case "rejected":
              throw ledgerRejected("deposit credit", outcome.status);
          }
        }
      }
    },
  };
}
