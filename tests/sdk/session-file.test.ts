import { describe, expect, it } from "vitest";
import { mkdtemp, readFile, writeFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveSessionFilePath, SessionFile, SessionFileError, withSessionFile } from "../../clients/sdk/session-file.js";

const tmp = () => mkdtemp(join(tmpdir(), "masques-sf-"));

// Exactly what the plugin's /don writes (seed 001, commands/don.md).
const PLUGIN_FILE = `# Auto-managed by masques plugin
active:
  name: codesmith
  source: shared
  donned_at: 2026-01-26T12:00:00Z
previous:
  name: null
  source: null
  doffed_at: null
extra_plugin_key: keep me # a comment that must survive
`;

describe("session file (.claude/masque.session.yaml)", () => {
  it("resolves flag > MASQUES_SESSION_FILE > CLAUDE_PROJECT_DIR > cwd", () => {
    expect(resolveSessionFilePath("/x/s.yaml", {}, "/cwd")).toBe("/x/s.yaml");
    expect(resolveSessionFilePath("rel.yaml", {}, "/cwd")).toBe("/cwd/rel.yaml");
    expect(resolveSessionFilePath(undefined, { MASQUES_SESSION_FILE: "/e/s.yaml", CLAUDE_PROJECT_DIR: "/p" }, "/cwd")).toBe("/e/s.yaml");
    expect(resolveSessionFilePath(undefined, { CLAUDE_PROJECT_DIR: "/p" }, "/cwd")).toBe("/p/.claude/masque.session.yaml");
    expect(resolveSessionFilePath(undefined, {}, "/cwd")).toBe("/cwd/.claude/masque.session.yaml");
  });

  it("adds a ledger block to the plugin's file and keeps everything else, then round-trips", async () => {
    const dir = await tmp();
    const path = join(dir, ".claude", "masque.session.yaml");
    await withSessionFile(path, async () => {}); // creates the directory
    await writeFile(path, PLUGIN_FILE);
    await withSessionFile(path, async (f) => {
      expect(f.view().active.name).toBe("codesmith");
      f.setActiveLedger({
        masque: "codesmith",
        status: "active",
        session_id: "abc",
        reserved_micro: 5_000_000n,
        usage_seq: 2,
        unsent_usage: [{ seq: 2, input_tokens: 1200n, output_tokens: 300n, tool_calls: 0n }],
      });
      await f.save();
    });
    const text = await readFile(path, "utf8");
    expect(text).toContain("# Auto-managed by masques plugin");
    expect(text).toContain("keep me # a comment that must survive");
    expect(text).toContain('reserved_usd: "5.000000"');
    const v = (await SessionFile.load(path)).view();
    expect(v.active.ledger).toEqual({
      masque: "codesmith",
      status: "active",
      session_id: "abc",
      reserved_micro: 5_000_000n,
      usage_seq: 2,
      unsent_usage: [{ seq: 2, input_tokens: 1200n, output_tokens: 300n, tool_calls: 0n }],
    });
    expect(v.active.source).toBe("shared");
  });

  it("doff moves active to previous with the outcome, clearing active like the plugin's /doff", async () => {
    const dir = await tmp();
    const path = join(dir, "s.yaml");
    await withSessionFile(path, async (f) => {
      f.setActive({ name: "codesmith", donned_at: "2026-01-26T12:00:00Z", ledger: { masque: "codesmith", status: "active", session_id: "s1", usage_seq: 0, unsent_usage: [] } });
      await f.save();
    });
    await withSessionFile(path, async (f) => {
      f.moveActiveToPrevious("2026-01-26T13:00:00Z", { session_id: "s1", status: "doffed", charged_micro: 1_250_000n, refunded_micro: 3_750_000n });
      await f.save();
    });
    const v = (await SessionFile.load(path)).view();
    expect(v.active).toEqual({ name: null, source: null, donned_at: null, ledger: null });
    expect(v.previous).toEqual({
      name: "codesmith",
      source: "shared",
      doffed_at: "2026-01-26T13:00:00Z",
      ledger: { session_id: "s1", status: "doffed", charged_micro: 1_250_000n, refunded_micro: 3_750_000n },
    });
  });

  it("a missing file reads as no active masque; a broken one is refused with what to do", async () => {
    const dir = await tmp();
    const v = (await SessionFile.load(join(dir, "none.yaml"))).view();
    expect(v.active.name).toBeNull();
    expect(v.active.ledger).toBeNull();
    await writeFile(join(dir, "bad.yaml"), "active: [unclosed\n");
    await expect(SessionFile.load(join(dir, "bad.yaml"))).rejects.toThrow(SessionFileError);
    await expect(SessionFile.load(join(dir, "bad.yaml"))).rejects.toThrow(/not valid YAML.*delete it/);
    await writeFile(join(dir, "badledger.yaml"), "active:\n  name: x\n  ledger:\n    status: weird\n");
    const f = await SessionFile.load(join(dir, "badledger.yaml"));
    expect(() => f.view()).toThrow(/active.ledger is malformed/);
  });

  it("concurrent updates under the lock lose nothing and leave no temp or lock files", async () => {
    const dir = await tmp();
    const path = join(dir, "s.yaml");
    await withSessionFile(path, async (f) => {
      f.setActive({ name: "m", donned_at: "t", ledger: { masque: "m", status: "active", session_id: "s", usage_seq: 0, unsent_usage: [] } });
      await f.save();
    });
    await Promise.all(
      Array.from({ length: 20 }, () =>
        withSessionFile(path, async (f) => {
          const l = f.view().active.ledger!;
          await new Promise((r) => setTimeout(r, 1));
          f.setActiveLedger({ ...l, usage_seq: l.usage_seq + 1 });
          await f.save();
        }),
      ),
    );
    expect((await SessionFile.load(path)).view().active.ledger?.usage_seq).toBe(20);
    expect(await readdir(dir)).toEqual(["s.yaml"]);
  });
});
