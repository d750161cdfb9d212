/**
 * The adapter's deposit-scan cursor file (ADR 0082): absent before the first save, survives a new
 * store on the same directory (a restart), replaced whole, and bad cursors are refused naming the
 * rule, leaving the saved one intact.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fileCursorStore } from "../../src/rails/adapter/cursor.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "cursor-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("fileCursorStore", () => {
  it("is null before the first save, then returns the last save, also from a new store (restart)", async () => {
    const data = path.join(dir, "adapter"); // created on first save
    const a = fileCursorStore(data, "base");
    expect(await a.load()).toBeNull();
    await a.save(`12:0x${"ab".repeat(32)}`);
    await a.save(`15:0x${"cd".repeat(32)}`);
    expect(await fileCursorStore(data, "base").load()).toBe(`15:0x${"cd".repeat(32)}`);
    expect(await readdir(data)).toEqual(["base.deposit-cursor"]); // no temp file left behind
    expect(await fileCursorStore(data, "solana").load()).toBeNull(); // one file per rail
  });

  it("refuses an empty, multi-line or oversized cursor and keeps the saved one", async () => {
    const s = fileCursorStore(dir, "base");
    await s.save("7:0xaa");
    await expect(s.save("")).rejects.toThrow(/one line of 1-1024 characters/);
    await expect(s.save("a\nb")).rejects.toThrow(/one line/);
    await expect(s.save("x".repeat(1025))).rejects.toThrow(/1-1024/);
    expect(await s.load()).toBe("7:0xaa");
    expect(() => fileCursorStore(dir, "../etc")).toThrow(/cursor name must be/);
  });
});
