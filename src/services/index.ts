/**
 * The services the daemon serves (see src/server/registry.ts for the contract). Each service adds
 * one registration line here.
 */
import { CreateAccountStatus } from "tigerbeetle-node";
import { AccountService } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { RAIL_NAMES } from "../domain/codes.js";
import { startupPlatformAccounts } from "../domain/accounts.js";
import { idToHex } from "../domain/ids.js";
import { defineService, type DaemonContext, type ServiceRegistration } from "../server/registry.js";
import { createAccountService, provisionIssuanceLimit } from "./accounts/account-service.js";
import { bindSessionInstance, createSessionInstance, sessionServiceImpl } from "./sessions/service.js";
import { SessionService } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { catalogServiceRegistration } from "./catalog/service.js";
import { adminServiceRegistration } from "./admin/service.js";
import { appendAudit } from "../controlplane/audit.js";
import { startGovernanceRuntime, stopGovernanceRuntime } from "./governance.js";
import { settlementServiceRegistration } from "./settlement/service.js";
import { analyticsServiceRegistration } from "./analytics/service.js";
import { railFeesAccount } from "../domain/settlement/accounts.js";
import { webhookServiceRegistration } from "./webhooks/service.js";
import { startDispatcher, type Dispatcher } from "../webhooks/dispatcher.js";

/** The webhook dispatcher of each running daemon (started in onStart, stopped in onStop). */
const dispatchers = new WeakMap<DaemonContext, Dispatcher>();
import { createLimits } from "./limits/limits.js";
import { createLimitsStore } from "../controlplane/limits.js";
import { conversionAccounts } from "../domain/settlement/conversion.js";

export function createServices(ctx: DaemonContext): ServiceRegistration[] {
  const sessions = bindSessionInstance(ctx, createSessionInstance(ctx));
  return [
    defineService(
      AccountService,
      createAccountService({
        ledger: ctx.ledger,
        clock: ctx.clock,
        audit: (e) => ctx.controlplane.db.transaction().execute(async (trx) => void (await appendAudit(trx, e))),
        limits: { limits: createLimits(ctx.ledger, ctx.config), store: createLimitsStore(ctx.controlplane.db), clock: ctx.clock },
        refunds: { store: createLimitsStore(ctx.controlplane.db), clock: ctx.clock, author_window_s: ctx.config.REFUND_AUTHOR_WINDOW_S },
      }),
    ),
    defineService(SessionService, sessionServiceImpl(sessions)),
    catalogServiceRegistration(ctx, sessions.state.live, sessions.ready),
    adminServiceRegistration(ctx),
    settlementServiceRegistration(ctx),
    webhookServiceRegistration(ctx),
    analyticsServiceRegistration(ctx),
  ];
}

/**
 * Before the listeners accept calls: create every platform account (revenue, escrow, credit
 * issuer, operator, per-rail inbound/outbound, usage sinks) and provision the issuance limit (its
 * accounts and one-time funding, ADR 0055), so neither a deposit nor a soft-mode Doff's debt ever
 * meets an unfunded limit. Idempotent: on every later start the
 * ledger answers `exists`. Any other answer (e.g. an account that exists with different flags)
 * means the ledger and this build disagree, and the daemon refuses to start.
 */
export async function onStart(ctx: DaemonContext): Promise<void> {
  const accounts = [...startupPlatformAccounts(RAIL_NAMES), ...RAIL_NAMES.map(railFeesAccount), ...conversionAccounts()];
  const results = await ctx.ledger.createAccounts(accounts);
  const bad = results
    .map((r, i) => ({ r, a: accounts[i]! }))
    .filter(({ r }) => r.status !== CreateAccountStatus.created && r.status !== CreateAccountStatus.exists);
  if (results.length !== accounts.length || bad.length > 0) {
    const what = bad.map(({ r, a }) => `${idToHex(a.id)} (code ${a.code}): ${CreateAccountStatus[r.status]}`);
    throw new Error(`creating platform accounts failed: ${what.join(", ") || "result count mismatch"}`);
  }
  const created = results.filter((r) => r.status === CreateAccountStatus.created).length;
  await provisionIssuanceLimit(ctx.ledger);
  // Spending limits (ADR 0110): platform limit accounts and the peer-transfer policy from the environment.
  await createLimits(ctx.ledger, ctx.config).provisionPlatform(`start-${ctx.clock()}`);
  ctx.log.info({ created, total: accounts.length }, "platform accounts ready");
  // Governance (issue 16) after the platform accounts: audit anchors move between two of them.
  await startGovernanceRuntime(ctx);
  if (ctx.config.WEBHOOK_DISPATCH_ENABLED) {
    dispatchers.set(
      ctx,
      startDispatcher({ store: ctx.controlplane.webhooks, log: ctx.log.child({ component: "webhooks" }), clock: ctx.clock, config: ctx.config }),
    );
  }
}

/**
 * On shutdown, after the listeners stopped: stop the governance scheduler (its last anchor) and
 * the webhook dispatcher (attempts in flight end by their timeout).
 */
export async function onStop(ctx: DaemonContext): Promise<void> {
  await stopGovernanceRuntime(ctx);
  await dispatchers.get(ctx)?.stop();
  dispatchers.delete(ctx);
}
