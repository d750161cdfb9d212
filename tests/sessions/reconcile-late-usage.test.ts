/**
 * Issue 11: `reconcile` detects usage recorded after its session settled (usage no price
 * included). The late event is written straight to the ledger with the session plans, as an
 * older daemon (before ADR 0036 closed the usage meters at settlement) could have.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planUsage } from "../../src/domain/sessions.js";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import { ChdbSink, migrate, reconcile, Streamer } from "../../src/streamer/index.js";
import { createSessionAccounts, ids, runSession } from "../streamer/sessions-fixture.js";
import { CREATED, tempDir } from "../streamer/support.js";

describe("reconcile: usage after settlement", () => {
  const tmp = tempDir("reconcile-late-usage");
  let client: EmbeddedClient;
  let sink: ChdbSink;
  beforeAll(async () => {
    client = createEmbeddedClient({ dataDir: path.join(tmp.dir, "ledger") });
    sink = await ChdbSink.open({ path: path.join(tmp.dir, "chdb"), database: "masques" });
    await migrate(sink);
  });
  afterAll(async () => {
    await sink?.close();
    await client?.close();
    tmp.cleanup();
  });

  it("passes for usage before the Doff and reports usage recorded after it", async () => {
    await createSessionAccounts(client, "late-agent", "late-author");
    const usage = { input_tokens: 1_000n, output_tokens: 200n, tool_calls: 1n };
    const sid = await runSession(client, {
      name: "late", agent: "late-agent", author: "late-author", masque_index: 3, mode: "live", hold_micro: 500_000n, timeout_s: 3600, usage: [usage], end: "doff",
    });
    const streamer = await Streamer.create({ client, sink, expiry_check_ms: 0 });
    await streamer.syncOnce();
    const before = await reconcile({ client, sink });
    expect(before.drift).toEqual([]);
    expect(before.checks.find((c) => c.name.startsWith("usage after settlement"))?.ok).toBe(true);

    const late = planUsage(ids, { session_id: sid, agent_id: "late-agent", seq: 2n, ...usage });
    expect((await client.createTransfers(late)).map((r) => r.status)).toEqual(late.map(() => CREATED));
    await streamer.syncOnce();
    const after = await reconcile({ client, sink });
    expect(after.ok).toBe(false);
    expect(after.drift).toEqual([
      expect.objectContaining({ check: "usage after settlement", subject: `session ${sid.toString(16)}`, clickhouse: expect.stringMatching(/^3 usage events after it/) }),
    ]);
  }, 120_000);
});
