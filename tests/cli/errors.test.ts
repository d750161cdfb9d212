/**
 * Every failure a plugin user can hit prints what happened and what to do, with the exit code a
 * script can branch on: 1 user error, 2 usage error, 3 outage. And an outage never loses or
 * doubles anything: re-running the same command finishes the same operation.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { at, micro, runCli, runInProcess } from "./helpers.js";
import { loadCommands } from "../../clients/cli/commands/index.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";

const MASQUES_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../masques");

let d: Daemon;
let live: string;
let dead: string;
let dir: string;
let adminToken: string;

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function agent(id: string, fund?: string): Promise<Record<string, string>> {
  if (fund) {
    const r = await runInProcess(["deposit", id, fund], { MASQUES_ENDPOINT: live, MASQUES_TOKEN: adminToken });
    expect(r.code, r.stderr).toBe(0);
  }
  return { MASQUES_ENDPOINT: live, MASQUES_TOKEN: await d.token("agent", id), MASQUES_SESSION_FILE: path.join(dir, `${id}.session.yaml`) };
}

beforeAll(async () => {
  d = await startDaemon({ env: { MASQUES_DIR } });
  live = `http://${d.grpcAddr}`;
  dead = `http://127.0.0.1:${await closedPort()}`;
  dir = await mkdtemp(path.join(tmpdir(), "masques-cli-err-"));
  adminToken = await d.token("admin", "ops");
});

afterAll(async () => {
  await d?.stop();
});

describe("user errors exit 1 with an actionable message", () => {
  it("insufficient funds shows the balance and the reservation, and holds nothing", async () => {
    const env = await agent("agent-poor", "0.50");
    const r = await runCli(["don", "code-reviewer"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Insufficient funds: this needs a reservation of $2.00, your available balance is $0.50. Nothing was charged.");
    expect(r.stderr).toContain("Add at least $1.50");
    const j = await runCli(["don", "code-reviewer", "--json"], env);
    expect(j.code).toBe(1);
    expect(at(j.json, "error")).toMatchObject({ error: "InsufficientFundsError", available_micro: "500000", required_micro: "2000000", kind: "user" });
    const file = parse(await readFile(env.MASQUES_SESSION_FILE!, "utf8"));
    expect(file.active?.ledger).toBeUndefined();
    const bal = await runCli(["balance", "--json"], env);
    expect(micro(bal.json, "account", "available", "micro")).toBe(500_000n);
    expect(micro(bal.json, "account", "pending_debits", "micro")).toBe(0n);
  });

  it("unknown masque, no wallet, someone else's wallet, agent depositing, no token", async () => {
    const env = await agent("agent-errs", "5");
    // The first through the binary; the rest in-process (same code path minus process start-up).
    const unknownP = runCli(["don", "no-such-masque"], env);
    const nowallet = await runInProcess(["don", "code-reviewer"], { ...env, MASQUES_TOKEN: await d.token("agent", "agent-nowallet"), MASQUES_SESSION_FILE: path.join(dir, "nw.yaml") });
    const denied = await runInProcess(["balance", "--agent", "agent-poor"], env);
    const deposit = await runInProcess(["deposit", "agent-errs", "100"], env);
    const notoken = await runInProcess(["balance"], { MASQUES_ENDPOINT: live });
    const badtoken = await runInProcess(["balance"], { MASQUES_ENDPOINT: live, MASQUES_TOKEN: "not-a-jwt" });
    const unknown = await unknownP;
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/Unknown masque: .*no-such-masque/);
    expect(unknown.stderr).toContain("The daemon knows: code-reviewer (reserve $2.00)");
    expect(nowallet.code).toBe(1);
    expect(nowallet.stderr).toContain("No such account");
    // Errors about an account name it the way the user did, not only by its hex id (issue 12).
    expect(nowallet.stderr).toContain('the wallet of agent "agent-nowallet"');
    expect(nowallet.stderr).toContain("masques-ledger-client deposit");
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("Permission denied");
    expect(denied.stderr).toContain('the wallet of agent "agent-poor"');
    expect(denied.stderr).toContain("token");
    expect(deposit.code).toBe(1);
    expect(deposit.stderr).toContain("Permission denied");
    const adminMissing = await runInProcess(["balance", "--agent", "agent-never-funded"], { MASQUES_ENDPOINT: live, MASQUES_TOKEN: adminToken });
    expect(adminMissing.code).toBe(1);
    expect(adminMissing.stderr).toMatch(/No such account: the wallet of agent "agent-never-funded" does not exist \(account [0-9a-f]{32} does not exist\)/);
    expect(notoken.code).toBe(1);
    expect(notoken.stderr).toContain("MASQUES_TOKEN");
    expect(badtoken.code).toBe(1);
    expect(badtoken.stderr).toMatch(/not a JWT/);
    // Nothing moved for the agent whose calls were refused.
    const bal = await runInProcess(["balance", "--json"], env);
    expect(micro(bal.json, "account", "available", "micro")).toBe(5_000_000n);
  });

  it("doff with nothing donned and donning a second masque say what to do", async () => {
    const env = await agent("agent-twice", "5");
    const hbP = runCli(["heartbeat", "--quiet"], env);
    const none = await runInProcess(["doff"], env);
    const hookUsage = await runInProcess(["usage", "--tool-calls", "1", "--quiet", "--if-active"], env);
    const usage = await runInProcess(["usage", "--tool-calls", "1"], env);
    const hb = await hbP;
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("No masque is currently active");
    // Hooks run on every prompt / tool call: with nothing donned they are silent no-ops.
    expect([hb.code, hb.stdout, hb.stderr]).toEqual([0, "", ""]);
    expect([hookUsage.code, hookUsage.stdout, hookUsage.stderr]).toEqual([0, "", ""]);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toContain("No paid masque session is active");
    expect((await runInProcess(["don", "code-reviewer"], env)).code).toBe(0);
    const second = await runInProcess(["don", "pair-programmer"], env);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('"code-reviewer" is still donned');
    expect(second.stderr).toContain("masques-ledger-client doff");
    expect((await runInProcess(["cancel"], env)).code).toBe(0);
  });
});

describe("usage errors exit 2 and point to --help", () => {
  it("bad flags, missing arguments, bad amounts, bad configuration", async () => {
    const env = { MASQUES_ENDPOINT: live, MASQUES_TOKEN: "x" };
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [["don"], env, /missing <masque>/],
      [["don", "code-reviewer", "--fix", "it"], env, /Unknown option '--fix'/],
      [["usage", "--tool-calls", "abc"], env, /--tool-calls: expected a non-negative whole number/],
      [["usage"], env, /nothing to report/],
      [["don", "code-reviewer", "--max-spend", "1.0000001"], env, /--max-spend: .*at most 6 fractional digits/],
      [["balance", "--bogus"], env, /Unknown option '--bogus'/],
      [["deposit", "a", "five"], env, /<amount-usd>: "five" is not an amount in USD/],
      [["balance", "--transport", "carrier-pigeon"], env, /--transport: expected grpc or connect/],
      [["balance"], { MASQUES_ENDPOINT: "localhost:50051", MASQUES_TOKEN: "x" }, /MASQUES_ENDPOINT: must be an http/],
    ];
    // Through the binary for two of them (what a person types), in-process for the rest.
    const results: Awaited<ReturnType<typeof runCli>>[] = [];
    const viaBinary = Promise.all([runCli(cases[0]![0], cases[0]![1]), runCli(cases[8]![0], cases[8]![1])]);
    for (const [args, e] of cases.slice(1, 8)) results.push(await runInProcess(args, e));
    const [first, last] = await viaBinary;
    results.unshift(first!);
    results.push(last!);
    results.forEach((r, i) => {
      const [args, , msg] = cases[i]!;
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(msg);
    });
    expect(results[0]!.stderr).toContain("masques-ledger-client don --help");
  });

  it("--help works on every client command and documents exit codes", async () => {
    const names = ["don", "usage", "heartbeat", "doff", "cancel", "balance", "sessions", "earnings", "deposit"];
    const commands = await loadCommands();
    for (const n of names) {
      const cmd = commands.find((c) => c.name === n);
      expect(cmd, n).toBeDefined();
      expect(cmd!.help).toContain(`Usage: masques-ledger-client ${n}`);
      expect(cmd!.help).toContain("3 outage");
      expect(cmd!.help).toContain("MASQUES_ENDPOINT");
    }
    // And through the binary, as a person would type it.
    const r = await runCli(["don", "--help"], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: masques-ledger-client don <masque> [options] [--] [intent...]");
    expect(r.stdout).toContain("--session-file");
  });
});

describe("outages exit 3, and re-running finishes the same operation", () => {
  it("don, usage and doff against a dead daemon keep their intent; re-running holds and charges once", async () => {
    const env = await agent("agent-outage", "5");
    const down = { ...env, MASQUES_ENDPOINT: dead, MASQUES_TIMEOUT_MS: "3000" };

    const don1 = await runCli(["don", "pair-programmer"], down);
    expect(don1.code).toBe(3);
    expect(don1.stderr).toMatch(/unavailable/i);
    expect(don1.stderr).toContain("re-run `masques-ledger-client don pair-programmer`");
    let file = parse(await readFile(env.MASQUES_SESSION_FILE!, "utf8"));
    expect(file.active.ledger.status).toBe("pending");
    const sid = file.active.ledger.session_id as string;

    const don2 = await runCli(["don", "pair-programmer", "--json"], env);
    expect(don2.code, don2.stderr).toBe(0);
    expect(at(don2.json, "session", "session_id")).toBe(sid);
    expect(at(don2.json, "resumed")).toBe(true);

    const use1 = await runCli(["usage", "--input-tokens", "1000"], down);
    expect(use1.code).toBe(3);
    expect(use1.stderr).toContain("kept in the session file");
    file = parse(await readFile(env.MASQUES_SESSION_FILE!, "utf8"));
    expect(file.active.ledger.unsent_usage).toEqual([{ seq: 1, input_tokens: 1000, output_tokens: 0, tool_calls: 0 }]);

    const doff1 = await runCli(["doff"], down);
    expect(doff1.code).toBe(3);
    expect(doff1.stderr).toContain("Re-run `masques-ledger-client doff`");
    file = parse(await readFile(env.MASQUES_SESSION_FILE!, "utf8"));
    expect(file.active.ledger.session_id).toBe(sid);

    const doff2 = await runCli(["doff", "--json"], env);
    expect(doff2.code, doff2.stderr).toBe(0);
    expect(at(doff2.json, "session", "usage")).toMatchObject({ input_tokens: "1000", events: "1" });
    const charged = micro(doff2.json, "session", "charged", "micro");
    const bal = await runCli(["balance", "--json"], env);
    expect(micro(bal.json, "account", "available", "micro")).toBe(5_000_000n - charged);
    expect(micro(bal.json, "account", "pending_debits", "micro")).toBe(0n);
  });

  it("a don that failed is never finished by a later heartbeat; doff then drops it and charges nothing", async () => {
    const env = await agent("agent-pending", "5");
    const down = { ...env, MASQUES_ENDPOINT: dead, MASQUES_TIMEOUT_MS: "3000" };
    const don = await runCli(["don", "code-reviewer"], down);
    expect(don.code).toBe(3); // the user is told /don failed
    let file = parse(await readFile(env.MASQUES_SESSION_FILE!, "utf8"));
    expect(file.active.ledger.status).toBe("pending");
    const sid = file.active.ledger.session_id as string;

    // The hook's heartbeat, with the daemon back: it reports the pending intent and does not act.
    const hb = await runCli(["heartbeat", "--quiet"], env);
    expect(hb.code).toBe(1);
    expect(hb.stderr).toContain("The earlier don of code-reviewer did not finish");
    expect(hb.stderr).toContain("masques-ledger-client don code-reviewer");
    expect(hb.stderr).toContain("masques-ledger-client cancel");
    const hbJson = await runInProcess(["heartbeat", "--json"], env);
    expect(hbJson.code).toBe(1);
    expect(at(hbJson.json, "error", "code")).toBe("don_pending");
    file = parse(await readFile(env.MASQUES_SESSION_FILE!, "utf8"));
    expect(file.active.ledger).toMatchObject({ session_id: sid, status: "pending" });
    let bal = await runInProcess(["balance", "--json"], env);
    expect(micro(bal.json, "account", "available", "micro")).toBe(5_000_000n);
    expect(micro(bal.json, "account", "pending_debits", "micro")).toBe(0n);
    const open = await runInProcess(["sessions", "--status", "open", "--json"], env);
    expect(at(open.json, "sessions")).toEqual([]);

    // /doff of a don that never finished: dropped, nothing charged, the file says cancelled.
    const doff = await runCli(["doff"], env);
    expect(doff.code, doff.stderr).toBe(0);
    expect(doff.stdout).toContain("never finished, so it was dropped instead of doffed: nothing charged");
    expect(doff.stdout).not.toContain("hold is back"); // no hold the user was ever told of
    expect(doff.stdout).toContain(`session ${sid}`);
    bal = await runInProcess(["balance", "--json"], env);
    expect(micro(bal.json, "account", "available", "micro")).toBe(5_000_000n);
    expect(micro(bal.json, "account", "pending_debits", "micro")).toBe(0n);
    file = parse(await readFile(env.MASQUES_SESSION_FILE!, "utf8"));
    expect(file.previous.ledger).toMatchObject({ session_id: sid, status: "cancelled", charged_usd: "0.000000" });
  });

  it("heartbeat and balance against a dead daemon exit 3 with how to fix it", async () => {
    const env = { MASQUES_ENDPOINT: dead, MASQUES_TOKEN: await d.token("agent", "agent-x"), MASQUES_TIMEOUT_MS: "2000" };
    const [bal, json] = await Promise.all([runCli(["balance"], env), runInProcess(["balance", "--json"], env)]);
    expect(bal.code).toBe(3);
    expect(bal.stderr).toContain(dead);
    expect(bal.stderr).toContain("masques-ledger serve");
    expect(json.code).toBe(3);
    expect(at(json.json, "error", "kind")).toBe("outage");
    // An admin deposit that hit an outage says how to finish it without crediting twice.
    const dep = await runInProcess(["deposit", "agent-x", "5"], { ...env, MASQUES_TOKEN: adminToken });
    expect(dep.code).toBe(3);
    expect(dep.stderr).toMatch(/Re-run with --key [0-9a-f-]{36} to finish it without crediting twice/);
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    await expectAnalyticsReconcile(d);
  });
});
