/**
 * AdminService: operating a running daemon (admin principal only; see
 * proto/masques/ledger/v1/admin_service.proto). Today: reconciliation of the ledger against its
 * ClickHouse copy, run by the daemon's reconciler (src/streamer/reconciler.ts) on request, and its
 * last result.
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  AdminService,
  GetReconciliationResponseSchema,
  RunReconciliationResponseSchema,
} from "../../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { defineService, type DaemonContext, type ServiceRegistration } from "../../server/registry.js";
import type { ReconciliationPort } from "../../streamer/reconciler.js";
import { principalOf, requireAdmin } from "../authz.js";
import { failedPrecondition } from "../errors.js";
import { governanceHandlers, type GovernanceDeps } from "./governance.js";
import { governanceOf } from "../governance.js";
import { reconciliationView, timestampOfNs } from "./views.js";

/** What the admin service depends on. */
export interface AdminServiceDeps {
  /** Undefined when the daemon runs without its streamer. */
  reconciliation: ReconciliationPort | undefined;
  /** Revenue rules and the audit log (issue 16). */
  governance: GovernanceDeps;
}

function reconcilerOf(deps: AdminServiceDeps): ReconciliationPort {
  if (!deps.reconciliation) {
    throw failedPrecondition(
      "STREAMER_NOT_RUNNING",
      "reconciliation runs with the daemon's streamer, which is not running here (STREAMER_ENABLED=false, or it failed to start: see the daemon log); stop the daemon and run `masques-ledger reconcile`, or enable the streamer",
    );
  }
  return deps.reconciliation;
}

/** The handler object (Connect v2 ServiceImpl). Every method checks the admin principal first. */
export function createAdminService(deps: AdminServiceDeps): ServiceImpl<typeof AdminService> {
  const governance = governanceHandlers(deps.governance);
  return {
    createRevenueRule: governance.createRevenueRule!,
    submitRevenueRule: governance.submitRevenueRule!,
    approveRevenueRule: governance.approveRevenueRule!,
    rejectRevenueRule: governance.rejectRevenueRule!,
    activateRevenueRule: governance.activateRevenueRule!,
    emergencyActivateRevenueRule: governance.emergencyActivateRevenueRule!,
    getRevenueRule: governance.getRevenueRule!,
    listRevenueRules: governance.listRevenueRules!,
    listAuditEntries: governance.listAuditEntries!,
    verifyAuditLog: governance.verifyAuditLog!,
    async runReconciliation(_req, ctx: HandlerContext) {
      requireAdmin(principalOf(ctx), "run a reconciliation");
      const run = await reconcilerOf(deps).run("request");
      return create(RunReconciliationResponseSchema, { reconciliation: reconciliationView(run) });
    },
    async getReconciliation(_req, ctx: HandlerContext) {
      requireAdmin(principalOf(ctx), "read reconciliation results");
      const reconciler = reconcilerOf(deps);
      const last = reconciler.last();
      const next = reconciler.nextRunAtNs();
      return create(GetReconciliationResponseSchema, {
        reconciliation: last ? reconciliationView(last) : undefined,
        nextRunAt: next !== undefined ? timestampOfNs(next) : undefined,
      });
    },
  };
}

/** The registration line for src/services/index.ts. */
export function adminServiceRegistration(ctx: DaemonContext): ServiceRegistration {
  const g = governanceOf(ctx);
  return defineService(
    AdminService,
    // `reconciliation` is read per call: the daemon's streamer may start after the services (ADR 0119).
    createAdminService({
      get reconciliation() {
        return ctx.reconciliation;
      },
      governance: { db: ctx.controlplane.db, rules: g.rules, audit: g.audit },
    }),
  );
}
