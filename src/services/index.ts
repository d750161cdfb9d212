/**
 * Services served by the daemon (owned by the AccountService engineer; placeholder until then).
 * See src/server/registry.ts for the contract.
 */
import type { DaemonContext, ServiceRegistration } from "../server/registry.js";

export function createServices(_ctx: DaemonContext): ServiceRegistration[] {
  return [];
}
