/**
 * One process per data directory.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DataDirInUseError, lockDataDir } from "../../../src/ledger/embedded/lock.js";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "lock-test-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("data directory lock", () => {
  it("refuses a second holder with the owner's pid, and allows it after release", () => {
    const first = lockDataDir(dir);
    expect(() => lockDataDir(dir)).toThrow(DataDirInUseError);
    expect(() => lockDataDir(dir)).toThrow(`data directory ${dir} is in use by pid ${process.pid}`);
    first.release();
    const second = lockDataDir(dir);
    second.release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("refuses while another live process holds it", () => {
    const script = `
      const { lockDataDir } = await import(${JSON.stringify(path.resolve("src/ledger/embedded/lock.ts"))});
      try { lockDataDir(${JSON.stringify(dir)}); console.log("locked"); } catch (e) { console.log(e.message); }
    `;
    const held = lockDataDir(dir);
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" });
    expect(r.stdout.trim()).toBe(`data directory ${dir} is in use by pid ${process.pid}`);
    held.release();
  });

  it("takes over a lock left by a process that died", () => {
    const dead = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
    const deadPid = Number(dead.stdout.trim());
    fs.writeFileSync(path.join(dir, "LOCK"), `pid ${deadPid} start 12345\n`);
    const lock = lockDataDir(dir);
    expect(fs.readFileSync(path.join(dir, "LOCK"), "latin1")).toContain(`pid ${process.pid} `);
    lock.release();
  });

  it("takes over a lock whose pid now belongs to a different process (pid reuse)", () => {
    // Our own pid with a start time that is not ours: the recorded owner is gone.
    fs.writeFileSync(path.join(dir, "LOCK"), `pid ${process.pid} start 1\n`);
    const lock = lockDataDir(dir);
    // Now ours: our pid with our real start time, and a second opener is refused.
    const content = fs.readFileSync(path.join(dir, "LOCK"), "latin1");
    expect(content).toMatch(new RegExp(`^pid ${process.pid} start \\d+\n$`));
    expect(content).not.toBe(`pid ${process.pid} start 1\n`);
    expect(() => lockDataDir(dir)).toThrow(DataDirInUseError);
    lock.release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
