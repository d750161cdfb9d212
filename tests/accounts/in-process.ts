/**
 * AccountService handlers in-process over the embedded engine (no network): for edge cases that
 * need many calls or several service instances over ONE ledger (as N daemons share one
 * TigerBeetle cluster). Each instance gets its own coalescer, like a separate daemon would.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createContextValues, createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import { AccountService } from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { RAIL_NAMES } from "../../src/domain/codes.js";
import { startupPlatformAccounts } from "../../src/domain/accounts.js";
import { createCoalescedClient } from "../../src/ledger/coalescer.js";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import { createAccountService } from "../../src/services/accounts/account-service.js";
import { principalKey, type Principal } from "../../src/server/principal.js";

export type AccountHandlers = ReturnType<typeof createAccountService>;

export const ADMIN: Principal = { kind: "admin", id: "ops", scopes: ["admin"] };

/** A handler context carrying `principal` (the server's auth step puts it there). */
export function ctxFor(principal: Principal): HandlerContext {
  return createHandlerContext({
    service: AccountService,
    method: AccountService.method.getAccount,
    protocolName: "connect",
    requestMethod: "POST",
    url: "http://in-process/masques.ledger.v1.AccountService",
    contextValues: createContextValues().set(principalKey, principal),
  });
}

export interface InProcessLedger {
  engine: EmbeddedClient;
  /** A fresh AccountService instance (its own coalescer) over the shared engine. */
  service(): AccountHandlers;
  close(): Promise<void>;
}

/** A fresh embedded ledger in a temp dir, with the platform accounts the daemon creates at start. */
export async function openInProcessLedger(prefix: string): Promise<InProcessLedger> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  const engine = createEmbeddedClient({ dataDir: dir });
  await createCoalescedClient(engine).createAccounts(startupPlatformAccounts(RAIL_NAMES));
  return {
    engine,
    service: () => createAccountService({ ledger: createCoalescedClient(engine) }),
    async close() {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
