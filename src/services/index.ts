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
import { sessionServiceRegistration } from "./sessions/service.js";
import { adminServiceRegistration } from "./admin/service.js";
import { settlementServiceRegistration } from "./settlement/service.js";
import { analyticsServiceRegistration } from "./analytics/service.js";
import { railFeesAccount } from "../domain/settlement/accounts.js";

export function createServices(ctx: DaemonContext): ServiceRegistration[] {
  return [
    defineService(AccountService, createAccountService({ ledger: ctx.ledger })),
    sessionServiceRegistration(ctx),
    adminServiceRegistration(ctx),
    settlementServiceRegistration(ctx),
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
  const accounts = [...startupPlatformAccounts(RAIL_NAMES), ...RAIL_NAMES.map(railFeesAccount)];
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
  ctx.log.info({ created, total: accounts.length }, "platform accounts ready");
}
