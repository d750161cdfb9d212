/**
 * Issue 9 / 12: two binaries with distinct names — `masques-ledger` (the daemon: serve, stream,
 * reconcile, token) and `masques-ledger-client` (what the plugin calls) — both answer --version,
 * and each points to the other for the other's commands instead of keeping duplicate copies.
 */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "./helpers.js";
import { runCli as runDaemonCli } from "../support/daemon.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const version = (p: string) => (JSON.parse(readFileSync(path.join(ROOT, p), "utf8")) as { version: string }).version;

describe("the daemon and client binaries", () => {
  it("answer --version with their package's version", async () => {
    const [client, daemon] = await Promise.all([runCli(["--version"], {}), runDaemonCli(["--version"])]);
    expect([client.code, client.stdout]).toEqual([0, `masques-ledger-client ${version("clients/package.json")}\n`]);
    expect([daemon.code, daemon.stdout]).toEqual([0, `masques-ledger ${version("package.json")}\n`]);
  });

  it("keep their own commands and point to the other binary for the rest", async () => {
    const [clientHelp, daemonHelp, donOnDaemon, serveOnClient] = await Promise.all([
      runCli(["--help"], {}),
      runDaemonCli(["--help"]),
      runDaemonCli(["don", "code-reviewer"]),
      runCli(["serve"], {}),
    ]);
    expect(clientHelp.code).toBe(0);
    for (const c of ["don", "usage", "heartbeat", "doff", "cancel", "balance", "sessions", "earnings", "deposit"]) expect(clientHelp.stdout).toMatch(new RegExp(`^  ${c} `, "m"));
    expect(clientHelp.stdout).not.toMatch(/^ {2}(serve|stream|reconcile|token) /m);
    expect(daemonHelp.code).toBe(0);
    for (const c of ["serve", "stream", "reconcile", "token", "keys"]) expect(daemonHelp.stdout).toMatch(new RegExp(`^  ${c} `, "m"));
    expect(daemonHelp.stdout).not.toMatch(/^ {2}(don|usage|heartbeat|doff) /m);
    expect(donOnDaemon.code).toBe(2);
    expect(donOnDaemon.stderr).toContain("run `masques-ledger-client don`");
    expect(serveOnClient.code).toBe(2);
    expect(serveOnClient.stderr).toContain("run `masques-ledger serve` from the daemon package");
  });
});
