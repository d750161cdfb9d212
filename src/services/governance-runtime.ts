/**
 * The governance runtime inside the daemon (issue 16, ADR 0100/0101):
 * - at start-up: the first revenue rule (the configured fee) if none exists, then the audit chain
 *   verified against its ledger anchors (a broken chain is logged at error level with the
 *   position of the first bad entry; the daemon keeps serving and stops anchoring);
 * - every GOVERNANCE_TICK_MS: activate rules whose cooling is over (several daemons may tick at
 *   once: each rule is claimed in a transaction, so it activates exactly once), and, at most every
 *   AUDIT_ANCHOR_INTERVAL_S by the daemon clock, anchor the chain's head in the ledger;
 * - at start-up and on every tick: reload the store's in-memory view of the active rules, which
 *   Don pins from (ADR 0124), so a rule another daemon activated is seen within one tick.
 */
import { QueryFilterFlags, CreateTransferStatus as CT, type Client, type Transfer } from "tigerbeetle-node";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { auditHead, lastAnchorSeq, readChain, recordAnchor } from "../controlplane/audit.js";
import type { GovernanceStore } from "../controlplane/governance.js";
import type { Database } from "../controlplane/schema.js";
import { anchorOf, auditAnchorTransfer } from "../domain/audit-anchor.js";
import { verifyChain, type AuditVerification } from "../domain/audit-chain.js";
import { Ledger, TransferCode } from "../domain/codes.js";
import { idToHex } from "../domain/ids.js";

/** Ledger page size when reading anchors back (TigerBeetle's query limit). */
const ANCHOR_PAGE = 8_189;
/** Rules activated per tick at most (the rest on the next tick). */
const ACTIVATIONS_PER_TICK = 100;

/** Audit verification and anchoring over one database and one ledger. */
export interface AuditVerifier {
  /** Verify the chain as stored against every anchor in the ledger. */
  verify(): Promise<AuditVerification>;
  /**
   * Anchor the chain's current head in the ledger (no-op when it is anchored already or the log
   * is empty). Returns the anchored position, or null when nothing was written.
   */
  anchor(): Promise<bigint | null>;
}

/** Every audit anchor in the ledger, in ledger order. */
export async function readAnchors(ledger: Client): Promise<Transfer[]> {
  const out: Transfer[] = [];
  let cursor = 1n;
  for (;;) {
    const page = await ledger.queryTransfers({
      user_data_128: 0n,
      user_data_64: 0n,
      user_data_32: 0,
      ledger: Ledger.usd_micro,
      code: TransferCode.audit_anchor,
      timestamp_min: cursor,
      timestamp_max: 0n,
      limit: ANCHOR_PAGE,
      flags: QueryFilterFlags.none,
    });
    out.push(...page);
    if (page.length < ANCHOR_PAGE) return out;
    cursor = page[page.length - 1]!.timestamp + 1n;
  }
}

/** Build the verifier. `clock`: daemon clock (ns). */
export function createAuditVerifier(deps: { db: Kysely<Database>; ledger: Client; clock: () => bigint }): AuditVerifier {
  return {
    async verify() {
      const [entries, anchors] = await Promise.all([readChain(deps.db), readAnchors(deps.ledger)]);
      return verifyChain(entries, anchors.map(anchorOf));
    },
    async anchor() {
      const head = await auditHead(deps.db);
      if (head.seq === 0n) return null;
      const last = await lastAnchorSeq(deps.db);
      if (last !== null && last >= head.seq) return null;
      const t = auditAnchorTransfer(head.seq, head.hash);
      const [r] = await deps.ledger.createTransfers([t]);
      if (!r || (r.status !== CT.created && r.status !== CT.exists)) {
        throw new Error(`anchoring audit entry ${head.seq}: the ledger answered ${r ? (CT[r.status] ?? r.status) : "nothing"} (a different head was anchored at this position: the log was rewritten)`);
      }
      await recordAnchor(deps.db, { seq: head.seq, hash: head.hash, transfer_id: idToHex(t.id), time_ns: deps.clock() });
      return head.seq;
    },
  };
}

/** The running governance loop. */
export interface GovernanceRuntime {
  /** Run one tick now (activations, then anchoring when due). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Start-up steps (first rule, verification) then the loop. Throws only when the database or
 * ledger fails; a broken chain is logged, not thrown.
 */
export async function startGovernance(deps: {
  rules: GovernanceStore;
  audit: AuditVerifier;
  log: Logger;
  clock: () => bigint;
  platform_fee_bps: number;
  tick_ms: number;
  anchor_interval_s: number;
}): Promise<GovernanceRuntime> {
  const { log } = deps;
  const first = await deps.rules.bootstrap(deps.platform_fee_bps);
  if (first) log.info({ rule_id: first.rule_id, platform_fee_bps: first.platform_fee_bps }, "revenue rules: first platform-wide rule created from PLATFORM_FEE_BPS");
  await deps.rules.refreshActive();
  const v = await deps.audit.verify();
  let chainBroken = !v.ok;
  if (v.ok) log.info({ entries: v.entries, anchors: v.anchors }, "audit log verified");
  else log.error({ entries: v.entries, anchors: v.anchors, first_bad_seq: v.first_bad_seq?.toString(), detail: v.detail }, "audit log verification FAILED: the log was tampered with; anchoring stops until it is investigated");
  let lastAnchorNs = 0n;
  let running: Promise<void> | undefined;
  const tick = async (): Promise<void> => {
    const activated = await deps.rules.activateDue(ACTIVATIONS_PER_TICK);
    for (const r of activated) log.info({ rule_id: r.rule_id, scope: r.scope, platform_fee_bps: r.platform_fee_bps }, "revenue rule activated at the end of its cooling period");
    // Rules other daemons activated (emergency activations, scheduled ones they claimed).
    await deps.rules.refreshActive();
    const now = deps.clock();
    if (!chainBroken && now - lastAnchorNs >= BigInt(deps.anchor_interval_s) * 1_000_000_000n) {
      try {
        const seq = await deps.audit.anchor();
        lastAnchorNs = now;
        if (seq !== null) log.debug({ seq: seq.toString() }, "audit head anchored in the ledger");
      } catch (err) {
        chainBroken = true;
        log.error({ err }, "audit anchoring failed");
      }
    }
  };
  const runTick = (): Promise<void> =>
    (running ??= tick()
      .catch((err: unknown) => log.error({ err }, "governance tick failed"))
      .finally(() => (running = undefined)));
  const timer = setInterval(() => void runTick(), deps.tick_ms);
  timer.unref();
  return {
    tick: runTick,
    async stop() {
      clearInterval(timer);
      await running;
      // Anchor what this daemon appended before it stops (best effort).
      if (!chainBroken) await deps.audit.anchor().catch((err: unknown) => log.warn({ err }, "audit anchoring at shutdown failed"));
    },
  };
}
