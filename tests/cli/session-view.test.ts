/**
 * The CLI's reply views (issue 20 follow-up, ADR 0128): `don` and `cancel` ask the daemon for the
 * basic session when their summary prints only what it carries, and print exactly what they print
 * with `--view full` (the full reply, as before); `doff` prints the usage, so it keeps the full
 * reply; --json keeps the whole session; `--view basic|full` overrides. What the binary sent is read
 * off the wire by a recording proxy in front of the daemon's Connect port.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { fromBinary, fromJsonString, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";
import {
  CancelRequestSchema,
  DoffRequestSchema,
  DonRequestSchema,
  SessionView,
} from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { at, micro, runCli, runInProcess } from "./helpers.js";
import { RecordingProxy, type RecordedRequest } from "./recording-proxy.js";

const MASQUES_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../masques");

let d: Daemon;
let proxy: RecordingProxy;
let adminEnv: Record<string, string>;
let project: string;

beforeAll(async () => {
  d = await startDaemon({ env: { MASQUES_DIR } });
  const [host, port] = d.httpAddr.split(":") as [string, string];
  proxy = new RecordingProxy({ host, port: Number(port) });
  const url = await proxy.listen();
  adminEnv = { MASQUES_ENDPOINT: url, MASQUES_TRANSPORT: "connect", MASQUES_TOKEN: await d.token("admin", "ops") };
  project = await mkdtemp(path.join(tmpdir(), "masques-view-"));
});
afterAll(async () => {
  await proxy?.close();
  await d?.stop();
});

let n = 0;
/** A funded agent ($5) with its own session file; the CLI goes through the proxy over Connect. */
async function agentEnv(): Promise<{ env: Record<string, string>; file: string; id: string }> {
  const id = `agent-cli-view-${++n}`;
  const dep = await runCli(["deposit", id, "5", "--key", `cli-view-${n}`, "--json"], adminEnv);
  expect(dep.code, dep.stderr).toBe(0);
  const file = path.join(project, `${id}.yaml`);
  return { env: { ...adminEnv, MASQUES_TOKEN: await d.token("agent", id), MASQUES_SESSION_FILE: file }, file, id };
}

function decode<D extends DescMessage>(schema: D, r: RecordedRequest): MessageShape<D> {
  return r.content_type.includes("json") ? fromJsonString(schema, r.body.toString("utf8")) : fromBinary(schema, r.body);
}

/** The `view` of the last request of `method` the CLI sent (one logical call; retries resend the same). */
function lastView(method: "Don" | "Doff" | "Cancel"): SessionView {
  const calls = proxy.calls(method);
  const last = calls[calls.length - 1];
  if (!last) throw new Error(`no ${method} request went through the proxy`);
  const schema = method === "Don" ? DonRequestSchema : method === "Doff" ? DoffRequestSchema : CancelRequestSchema;
  return decode(schema, last).view;
}

/** Output with this run's session id and session-file path replaced, to compare two runs. */
function normalised(out: string, sid: string, file: string): string {
  return out.replaceAll(sid, "<sid>").replaceAll(file, "<file>");
}

async function activeSessionId(file: string): Promise<string> {
  const sid = parse(await readFile(file, "utf8"))?.active?.ledger?.session_id;
  expect(sid).toMatch(/^[0-9a-f]{32}$/);
  return sid as string;
}

async function balance(env: Record<string, string>): Promise<{ available: bigint; pending: bigint }> {
  const b = await runCli(["balance", "--json"], env);
  expect(b.code, b.stderr).toBe(0);
  return { available: micro(b.json, "account", "available", "micro"), pending: micro(b.json, "account", "pending_debits", "micro") };
}

/** don researcher, usage, then `end` (doff or cancel) with `extra` flags on don and end; returns what they printed. */
async function flow(end: "doff" | "cancel", extra: string[]) {
  const a = await agentEnv();
  const don = await runCli(["don", "researcher", ...extra], a.env);
  expect(don.code, don.stderr).toBe(0);
  const donView = lastView("Don");
  const sid = await activeSessionId(a.file);
  const file = parse(await readFile(a.file, "utf8"));
  expect(file.active).toMatchObject({ name: "researcher", ledger: { session_id: sid, status: "active", reserved_usd: "0.500000" } });
  expect(Number.isNaN(Date.parse(file.active.donned_at))).toBe(false);
  expect(await balance(a.env)).toEqual({ available: 4_500_000n, pending: 500_000n });
  if (end === "doff") {
    const u = await runCli(["usage", "--input-tokens", "10000", "--output-tokens", "5000", "--tool-calls", "3"], a.env);
    expect(u.code, u.stderr).toBe(0);
  }
  const fin = await runCli([end, ...extra], a.env);
  expect(fin.code, fin.stderr).toBe(0);
  const endView = lastView(end === "doff" ? "Doff" : "Cancel");
  const after = parse(await readFile(a.file, "utf8"));
  expect(after.active).toEqual({ name: null, source: null, donned_at: null });
  const charged = end === "doff" ? 7_500n : 0n; // researcher: 2,000 + 4,000 + 1,500 micro-USD of usage
  expect(after.previous).toMatchObject({ name: "researcher", ledger: { session_id: sid, status: end === "doff" ? "doffed" : "cancelled" } });
  expect(BigInt(after.previous.ledger.charged_usd.replace(".", ""))).toBe(charged);
  expect(BigInt(after.previous.ledger.refunded_usd.replace(".", ""))).toBe(500_000n - charged);
  expect(await balance(a.env)).toEqual({ available: 5_000_000n - charged, pending: 0n });
  return { don: normalised(don.stdout, sid, a.file), end: normalised(fin.stdout, sid, a.file), donView, endView };
}

describe("CLI: the reply view of don, doff and cancel", () => {
  it("don asks for the basic session and prints what it printed with the full one; doff keeps the full reply", async () => {
    const slim = await flow("doff", []);
    const full = await flow("doff", ["--view", "full"]);
    expect(slim.donView).toBe(SessionView.BASIC);
    expect(full.donView).toBe(SessionView.FULL);
    expect(slim.don).toBe(full.don);
    expect(slim.don).toBe(
      "✓ Donned researcher\n  held $0.50 from your wallet; at doff you pay for actual use and the rest comes back\n  session <sid> · recorded in <file>\n",
    );
    // doff's summary prints the usage, which only the full reply carries.
    expect(slim.endView).toBe(SessionView.FULL);
    expect(slim.end).toBe(full.end);
    expect(slim.end).toMatch(/^✓ Doffed researcher\. Charged .*\n  usage: 10000 input \+ 5000 output tokens, 3 tool calls, /);
  });

  it("cancel asks for the basic session and prints what it printed with the full one", async () => {
    const slim = await flow("cancel", []);
    const full = await flow("cancel", ["--view", "full"]);
    expect([slim.donView, slim.endView]).toEqual([SessionView.BASIC, SessionView.BASIC]);
    expect([full.donView, full.endView]).toEqual([SessionView.FULL, SessionView.FULL]);
    expect(slim.end).toBe(full.end);
    expect(slim.end).toMatch(/^✓ Cancelled researcher: nothing charged, the \$0\.50 hold is back in your wallet\.\n  session <sid>\n/);
  });

  it("--no-session-file prints the same with the basic reply", async () => {
    const a = await agentEnv();
    const slim = await runCli(["don", "researcher", "--no-session-file"], a.env);
    expect(slim.code, slim.stderr).toBe(0);
    expect(lastView("Don")).toBe(SessionView.BASIC);
    expect(slim.stdout).toMatch(/^✓ Donned researcher \(session [0-9a-f]{32}\); held \$0\.50\.\n$/);
    const full = await runCli(["don", "researcher", "--no-session-file", "--view", "full"], a.env);
    expect(lastView("Don")).toBe(SessionView.FULL);
    expect(full.stdout.replace(/[0-9a-f]{32}/, "<sid>")).toBe(slim.stdout.replace(/[0-9a-f]{32}/, "<sid>"));
  });

  it("--json keeps the whole session; --view basic gives the slim one with exact amounts", async () => {
    const a = await agentEnv();
    const don = await runCli(["don", "researcher", "--json"], a.env);
    expect(don.code, don.stderr).toBe(0);
    expect(lastView("Don")).toBe(SessionView.FULL);
    expect(at(don.json, "session", "masque")).toBe("researcher");
    expect(at(don.json, "session", "don_time")).toEqual(expect.any(String));
    const u = await runCli(["usage", "--input-tokens", "10000", "--output-tokens", "5000", "--tool-calls", "3"], a.env);
    expect(u.code, u.stderr).toBe(0);
    const doff = await runCli(["doff", "--json", "--view", "basic"], a.env);
    expect(doff.code, doff.stderr).toBe(0);
    expect(lastView("Doff")).toBe(SessionView.BASIC);
    const s = at(doff.json, "session") as Record<string, unknown>;
    expect(Object.keys(s).sort()).toEqual(
      ["author_share", "billing_mode", "charged", "close_reason", "debt", "hold", "platform_fee", "platform_fee_bps", "price", "refund", "session_id", "status", "unbilled"].sort(),
    );
    expect(s).toMatchObject({ status: "doffed", close_reason: "doff", billing_mode: "live", platform_fee_bps: 1500 });
    expect([micro(s, "price", "micro"), micro(s, "charged", "micro"), micro(s, "author_share", "micro"), micro(s, "platform_fee", "micro"), micro(s, "refund", "micro")]).toEqual([
      7_500n,
      7_500n,
      6_375n,
      1_125n,
      492_500n,
    ]);
    expect(await balance(a.env)).toEqual({ available: 5_000_000n - 7_500n, pending: 0n });
  });

  it("--view takes basic or full only, and the help says what each carries", async () => {
    const bad = await runInProcess(["don", "researcher", "--view", "slim"], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--view: expected basic or full, got "slim"');
    for (const cmd of ["don", "doff", "cancel"]) {
      const help = await runInProcess([cmd, "--help"], {});
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("--view basic|full");
    }
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    await expectAnalyticsReconcile(d);
  });
});
