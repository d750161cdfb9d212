/**
 * The plugin's happy path, end to end through the real binary against a real daemon: an admin
 * funds a wallet, the agent dons (session file written next to the plugin's own fields), reports
 * usage, heartbeats, doffs (session file moved to `previous`), and every balance adds up.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { at, micro, runCli } from "./helpers.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";

const MASQUES_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../masques");

let d: Daemon;
let adminEnv: Record<string, string>;
let agentEnv: Record<string, string>;
let authorEnv: Record<string, string>;
let sessionFile: string;

beforeAll(async () => {
  d = await startDaemon({ env: { MASQUES_DIR } });
  const base = { MASQUES_ENDPOINT: `http://${d.grpcAddr}` };
  const project = await mkdtemp(path.join(tmpdir(), "masques-plugin-"));
  sessionFile = path.join(project, ".claude", "masque.session.yaml");
  adminEnv = { ...base, MASQUES_TOKEN: await d.token("admin", "ops") };
  // CLAUDE_PROJECT_DIR is how Claude Code tells commands and hooks where the project is.
  agentEnv = { ...base, MASQUES_TOKEN: await d.token("agent", "agent-flow"), CLAUDE_PROJECT_DIR: project };
  authorEnv = { ...base, MASQUES_TOKEN: await d.token("author", "author-ada") };
});

afterAll(async () => {
  await d?.stop();
});

describe("plugin flow: don -> usage -> heartbeat -> doff", () => {
  it("charges for actual use once, splits it, returns the rest and round-trips the session file", async () => {
    const dep = await runCli(["deposit", "agent-flow", "10", "--key", "flow-topup-1", "--json"], adminEnv);
    expect(dep.code, dep.stderr).toBe(0);
    expect(micro(dep.json, "wallet_available", "micro")).toBe(10_000_000n);
    const earnedBefore = micro((await runCli(["earnings", "--json", "--recent", "0"], authorEnv)).json, "account", "credits_posted", "micro");

    // The plugin already wrote its file for an earlier masque (seed 001 shape) plus its own keys.
    await mkdir(path.dirname(sessionFile), { recursive: true });
    await writeFile(
      sessionFile,
      "# Auto-managed by masques plugin\nactive:\n  name: null\n  source: null\n  donned_at: null\nprevious:\n  name: researcher\n  source: private\n  doffed_at: 2026-01-26T12:00:00Z\nplugin_setting: kept # must survive\n",
    );

    const don = await runCli(["don", "pair-programmer", "--source", "private", "--json", "--", "write", "the", "--tests"], agentEnv);
    expect(don.code, don.stderr).toBe(0);
    const sid = at(don.json, "session", "session_id") as string;
    expect(sid).toMatch(/^[0-9a-f]{32}$/);
    expect(micro(don.json, "session", "hold", "micro")).toBe(1_000_000n); // pair-programmer reserves $1
    let file = parse(await readFile(sessionFile, "utf8"));
    expect(file.active).toMatchObject({ name: "pair-programmer", source: "private", ledger: { session_id: sid, status: "active", reserved_usd: "1.000000", intent: "write the --tests", usage_seq: 0 } });
    expect(file.previous.name).toBe("researcher");
    expect(file.plugin_setting).toBe("kept");

    const held = await runCli(["balance", "--json"], agentEnv);
    expect(micro(held.json, "account", "available", "micro")).toBe(9_000_000n);
    expect(micro(held.json, "account", "pending_debits", "micro")).toBe(1_000_000n);

    // /don again with the same masque is idempotent: same session, nothing held twice.
    const again = await runCli(["don", "pair-programmer"], agentEnv);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("already donned");
    expect(again.stdout).toContain(sid);

    const u1 = await runCli(["usage", "--input-tokens", "1500", "--output-tokens", "400"], agentEnv);
    expect(u1.code, u1.stderr).toBe(0);
    expect(u1.stdout).toContain("Recorded usage #1");
    const u2 = await runCli(["usage", "--tool-calls", "3", "--json"], agentEnv);
    expect(u2.code, u2.stderr).toBe(0);
    expect(at(u2.json, "seq")).toBe(2);
    const hb = await runCli(["heartbeat", "--quiet"], agentEnv);
    expect(hb.code, hb.stderr).toBe(0);
    expect(hb.stdout).toBe("");
    file = parse(await readFile(sessionFile, "utf8"));
    expect(file.active.ledger.usage_seq).toBe(2);
    expect(file.active.ledger.unsent_usage).toBeUndefined();

    const list = await runCli(["sessions", "--status", "open", "--json"], agentEnv);
    expect(list.code, list.stderr).toBe(0);
    expect((at(list.json, "sessions") as unknown[]).map((s) => at(s, "session_id"))).toEqual([sid]);

    const doff = await runCli(["doff", "--json"], agentEnv);
    expect(doff.code, doff.stderr).toBe(0);
    const s = at(doff.json, "session");
    expect(at(s, "status")).toBe("doffed");
    expect(at(s, "usage")).toMatchObject({ input_tokens: "1500", output_tokens: "400", tool_calls: "3", events: "2" });
    const charged = micro(s, "charged", "micro");
    const author = micro(s, "author_share", "micro");
    const platform = micro(s, "platform_fee", "micro");
    const refund = micro(s, "refund", "micro");
    expect(charged).toBeGreaterThanOrEqual(50_000n); // at least the $0.05 flat fee
    expect(author + platform).toBe(charged);
    expect(charged + refund).toBe(1_000_000n);

    file = parse(await readFile(sessionFile, "utf8"));
    expect(file.active).toEqual({ name: null, source: null, donned_at: null });
    expect(file.previous).toMatchObject({ name: "pair-programmer", source: "private", ledger: { session_id: sid, status: "doffed" } });
    expect(BigInt(file.previous.ledger.charged_usd.replace(".", ""))).toBe(charged);
    expect(file.plugin_setting).toBe("kept");

    const after = await runCli(["balance", "--json"], agentEnv);
    expect(micro(after.json, "account", "available", "micro")).toBe(10_000_000n - charged);
    expect(micro(after.json, "account", "pending_debits", "micro")).toBe(0n);
    const earned = await runCli(["earnings", "--json"], authorEnv);
    expect(earned.code, earned.stderr).toBe(0);
    expect(micro(earned.json, "account", "credits_posted", "micro") - earnedBefore).toBe(author);
    expect((at(earned.json, "recent_payments") as unknown[]).some((p) => at(p, "reference_id") === sid)).toBe(true);

    // /doff again: nothing active, reports the recorded outcome, charges nothing more.
    const doff2 = await runCli(["doff"], agentEnv);
    expect(doff2.code, doff2.stderr).toBe(0);
    expect(doff2.stdout).toContain("already doffed");
    const final = await runCli(["balance", "--json"], agentEnv);
    expect(micro(final.json, "account", "available", "micro")).toBe(10_000_000n - charged);
  });

  it("cancel releases the whole hold and charges nothing", async () => {
    const env = { ...agentEnv, MASQUES_SESSION_FILE: path.join(path.dirname(sessionFile), "cancel.yaml") };
    const before = micro((await runCli(["balance", "--json"], env)).json, "account", "available", "micro");
    const don = await runCli(["don", "code-reviewer", "--max-spend", "0.75", "--json"], env);
    expect(don.code, don.stderr).toBe(0);
    expect(micro(don.json, "session", "hold", "micro")).toBe(750_000n); // min(reserve $2, max-spend $0.75)
    const cancel = await runCli(["cancel"], env);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toContain("nothing charged");
    const after = micro((await runCli(["balance", "--json"], env)).json, "account", "available", "micro");
    expect(after).toBe(before);
    const file = parse(await readFile(env.MASQUES_SESSION_FILE, "utf8"));
    expect(file.previous.ledger).toMatchObject({ status: "cancelled", charged_usd: "0.000000", refunded_usd: "0.750000" });
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    await expectAnalyticsReconcile(d);
  });
});
