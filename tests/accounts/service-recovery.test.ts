/**
 * AccountService handlers in-process on the embedded engine, for states the daemon cannot be
 * driven into over the network: an OpenAgentWallet that crashed between its two ledger requests
 * (accounts created, credit line not yet granted) is completed by re-running the same call.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createContextValues, createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AccountService,
  OpenAgentWalletRequestSchema,
  WalletMode,
} from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { RAIL_NAMES } from "../../src/domain/codes.js";
import { agentWalletAccounts, startupPlatformAccounts } from "../../src/domain/accounts.js";
import { createCoalescedClient } from "../../src/ledger/coalescer.js";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import { createAccountService } from "../../src/services/accounts/account-service.js";
import { principalKey, type Principal } from "../../src/server/principal.js";

function ctxFor(principal: Principal): HandlerContext {
  const values = createContextValues().set(principalKey, principal);
  return createHandlerContext({
    service: AccountService,
    method: AccountService.method.openAgentWallet,
    protocolName: "connect",
    requestMethod: "POST",
    url: "http://in-process/masques.ledger.v1.AccountService/OpenAgentWallet",
    contextValues: values,
  });
}

describe("OpenAgentWallet recovers a half-done postpaid open", () => {
  let dir: string;
  let engine: EmbeddedClient;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "accounts-recovery-"));
    engine = createEmbeddedClient({ dataDir: dir });
  });
  afterAll(async () => {
    await engine?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("re-running the same call grants the missing credit line exactly once", async () => {
    const ledger = createCoalescedClient(engine);
    await ledger.createAccounts(startupPlatformAccounts(RAIL_NAMES));
    // The crash: accounts exist, the grant transfer was never submitted.
    await ledger.createAccounts(agentWalletAccounts("crashy", "postpaid"));

    const service = createAccountService({ ledger });
    const admin: Principal = { kind: "admin", id: "ops", scopes: ["admin"] };
    const req = create(OpenAgentWalletRequestSchema, {
      agentId: "crashy",
      mode: WalletMode.POSTPAID,
      creditLimitMicro: 250n,
    });
    const first = await service.openAgentWallet(req, ctxFor(admin));
    const second = await service.openAgentWallet(req, ctxFor(admin));
    for (const r of [first, second]) {
      expect(r.account).toMatchObject({ creditLimitMicro: 250n, balance: { availableMicro: 250n } });
    }
  });
});
