/**
 * One governance store and audit verifier per daemon context, shared by AdminService, the
 * session service (pins at Don, splits at settlement) and the account service (audit of admin
 * money actions). Both are stateless over the control plane and the ledger; the runtime
 * (scheduler, anchoring) is started by src/services/index.ts after the platform accounts exist.
 */
import { createGovernanceStore, type GovernanceStore } from "../controlplane/governance.js";
import type { DaemonContext } from "../server/registry.js";
import { createAuditVerifier, startGovernance, type AuditVerifier, type GovernanceRuntime } from "./governance-runtime.js";

export interface Governance {
  rules: GovernanceStore;
  audit: AuditVerifier;
}

const byContext = new WeakMap<DaemonContext, Governance>();
const runtimes = new WeakMap<DaemonContext, GovernanceRuntime>();

/** The context's governance store and verifier (created on first use). */
export function governanceOf(ctx: DaemonContext): Governance {
  let g = byContext.get(ctx);
  if (!g) {
    const db = ctx.controlplane.db;
    g = {
      rules: createGovernanceStore(db, { clock: ctx.clock, cooling_s: () => ctx.config.REVENUE_RULE_COOLING_S }),
      audit: createAuditVerifier({ db, ledger: ctx.ledger, clock: ctx.clock }),
    };
    byContext.set(ctx, g);
  }
  return g;
}

/** Start-up: first rule, verification, then the scheduler (see governance-runtime.ts). */
export async function startGovernanceRuntime(ctx: DaemonContext): Promise<void> {
  const g = governanceOf(ctx);
  runtimes.set(
    ctx,
    await startGovernance({
      rules: g.rules,
      audit: g.audit,
      log: ctx.log.child({ component: "governance" }),
      clock: ctx.clock,
      platform_fee_bps: ctx.config.PLATFORM_FEE_BPS,
      tick_ms: ctx.config.GOVERNANCE_TICK_MS,
      anchor_interval_s: ctx.config.AUDIT_ANCHOR_INTERVAL_S,
    }),
  );
}

/** Shutdown: stop the scheduler and anchor the head once more. */
export async function stopGovernanceRuntime(ctx: DaemonContext): Promise<void> {
  await runtimes.get(ctx)?.stop();
  runtimes.delete(ctx);
}
