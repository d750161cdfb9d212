/**
 * SessionService instances in this process over one embedded ledger, built the way the daemon
 * builds its one (src/services/index.ts -> createSessionInstance), for tests that call the
 * handlers directly with a principal (no transport): races, idempotency, ranges.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { BillingMode } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { agentWalletAccounts, agentWalletId, depositTransfer } from "../../src/domain/accounts.js";
import { createCoalescedClient } from "../../src/ledger/coalescer.js";
import { createEmbeddedClient } from "../../src/ledger/embedded/index.js";
import type { Principal } from "../../src/server/principal.js";
import type { DaemonContext } from "../../src/server/registry.js";
import { controlPlaneOptions, openControlPlane } from "../../src/controlplane/index.js";
import { onStart } from "../../src/services/index.js";
import { seedControlPlane } from "../support/pglite-template.js";
import { createSessionInstance, type SessionServiceInstance } from "../../src/services/sessions/service.js";

export interface InProcess {
  ctx: DaemonContext;
  /** A new instance (reaper off) over the shared ledger client; resolves once it is ready. */
  instance(): Promise<SessionServiceInstance>;
  /** A prepaid wallet for `id` holding `amount_micro`. */
  fundedAgent(id: string, amount_micro?: bigint): Promise<Principal>;
  close(): Promise<void>;
}

export const agentP = (id: string): Principal => ({ kind: "agent", id, scopes: ["ledger:read", "ledger:write"] });
export const adminP: Principal = { kind: "admin", id: "ops", scopes: ["admin", "ledger:read", "ledger:write"] };

/** Don request fields with defaults. */
export const donReq = (sessionId: string, over: Partial<{ masque: string; agentId: string; maxSpendMicro: bigint; billingMode: BillingMode }> = {}) => ({
  sessionId,
  masque: "researcher",
  agentId: "",
  maxSpendMicro: 0n,
  billingMode: BillingMode.UNSPECIFIED,
  ...over,
});

/** `clock`: the services' clock (default: the wall clock); the ledger keeps its own. */
export async function startInProcess(env: Record<string, string> = {}, clock?: () => bigint): Promise<InProcess> {
  const dir = mkdtempSync(path.join(tmpdir(), "sessions-inproc-"));
  const inner = createEmbeddedClient({ dataDir: path.join(dir, "ledger") });
  const ledger = createCoalescedClient(inner);
  const config = loadConfig({ MASQUES_DATA_DIR: dir, MASQUES_DIR: path.resolve("masques"), ...env });
  await seedControlPlane(dir, env);
  const ctx: DaemonContext = { ledger, controlplane: await openControlPlane(controlPlaneOptions(config)), config, log: pino({ level: "silent" }), clock: clock ?? (() => BigInt(Date.now()) * 1_000_000n) };
  await onStart(ctx);
  const instances: SessionServiceInstance[] = [];
  let k = 0;
  return {
    ctx,
    async instance() {
      const i = createSessionInstance(ctx, { reaper: false });
      instances.push(i);
      await i.ready;
      return i;
    },
    async fundedAgent(id, amount_micro = 100_000_000n) {
      await ledger.createAccounts(agentWalletAccounts(id, "prepaid"));
      await ledger.createTransfers([depositTransfer({ walletId: agentWalletId(id), amountMicro: amount_micro, rail: null, idempotencyKey: `inproc-${id}-${++k}` })]);
      return agentP(id);
    },
    async close() {
      for (const i of instances) i.stop();
      await inner.close();
      await ctx.controlplane.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
