/**
 * The agent vanished (no heartbeat, no usage): the daemon finalizes the session at its accrued
 * price. The plugin's next heartbeat tells the user what happened (exit 1, non-blocking in a
 * hook), and the session file is brought in line with the ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { MasquesClient } from "../../clients/sdk/client.js";
import { SessionStatus } from "../../clients/sdk/sessions.js";
import { at, micro, runCli, runInProcess } from "./helpers.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";

const MASQUES_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../masques");
let d: Daemon;

beforeAll(async () => {
  d = await startDaemon({ env: { MASQUES_DIR, SESSION_IDLE_S: "1", SESSION_REAPER_INTERVAL_MS: "100" } });
});
afterAll(async () => {
  await d?.stop();
});

describe("a session reaped for idleness", () => {
  it("heartbeat reports it with the outcome and updates the session file; doff then reports it too", async () => {
    const endpoint = `http://${d.grpcAddr}`;
    const admin = { MASQUES_ENDPOINT: endpoint, MASQUES_TOKEN: await d.token("admin", "ops") };
    expect((await runCli(["deposit", "agent-idle", "3"], admin)).code).toBe(0);
    const dir = await mkdtemp(path.join(tmpdir(), "masques-reap-"));
    const token = await d.token("agent", "agent-idle");
    const env = { MASQUES_ENDPOINT: endpoint, MASQUES_TOKEN: token, MASQUES_SESSION_FILE: path.join(dir, "s.yaml") };
    const don = await runCli(["don", "pair-programmer", "--json"], env);
    expect(don.code, don.stderr).toBe(0);
    const sid = at(don.json, "session", "session_id") as string;

    // Wait (by polling the ledger, not by timing) until the reaper has finalized it.
    const sdk = new MasquesClient({ endpoint, token, env: {} });
    for (let i = 0; i < 300; i++) {
      if ((await sdk.sessions.get(sid)).status === SessionStatus.REAPED) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const reaped = await sdk.sessions.get(sid);
    expect(reaped.status).toBe(SessionStatus.REAPED);

    const hb = await runCli(["heartbeat", "--quiet"], env);
    expect(hb.code).toBe(1);
    expect(hb.stderr).toContain("Your session of pair-programmer had already ended on the ledger");
    expect(hb.stderr).toContain("Don the masque again");
    const file = parse(await readFile(env.MASQUES_SESSION_FILE, "utf8"));
    expect(file.active).toEqual({ name: null, source: null, donned_at: null });
    expect(file.previous.ledger).toMatchObject({ session_id: sid, status: "reaped" });

    const doff = await runCli(["doff", "--json"], env);
    expect(doff.code, doff.stderr).toBe(0);
    expect(at(doff.json, "result")).toBe("already_settled");
    const bal = await runCli(["balance", "--json"], env);
    expect(micro(bal.json, "account", "available", "micro")).toBe(3_000_000n - reaped.chargedMicro);
    expect(micro(bal.json, "account", "pending_debits", "micro")).toBe(0n);

    // /don of the same masque after it was reaped (no heartbeat in between) starts a new session
    // instead of claiming the settled one is still donned.
    const first = await runInProcess(["don", "pair-programmer", "--json"], env);
    expect(first.code, first.stderr).toBe(0);
    const sid2 = at(first.json, "session", "session_id") as string;
    for (let i = 0; i < 300; i++) {
      if ((await sdk.sessions.get(sid2)).status === SessionStatus.REAPED) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const again = await runInProcess(["don", "pair-programmer", "--json"], env);
    expect(again.code, again.stderr).toBe(0);
    expect(at(again.json, "result")).toBe("donned");
    const sid3 = at(again.json, "session", "session_id") as string;
    expect(sid3).not.toBe(sid2);
    const f2 = parse(await readFile(env.MASQUES_SESSION_FILE, "utf8"));
    expect(f2.previous.ledger).toMatchObject({ session_id: sid2, status: "reaped" });
    expect(f2.active.ledger).toMatchObject({ session_id: sid3, status: "active" });
    expect((await runInProcess(["cancel"], env)).code).toBe(0);
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    await expectAnalyticsReconcile(d);
  });
});
