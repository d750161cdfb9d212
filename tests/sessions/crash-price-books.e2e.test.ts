/**
 * Issue 10, "a killed daemon leaves the database consistent with the ledger after restart": a
 * daemon starts with two price books nobody stored before (a new masque, and a repriced one),
 * dons sessions with them and is SIGKILLed right after the Dons answered. It restarts with its
 * catalog back as before (the new masque removed, the old prices restored), so the new versions
 * can come only from the control-plane database: every hold on the ledger references a version
 * the database has, and each session is read, listed, doffed and paid with its own price book.
 * (The order that guarantees it, database first and then the ledger, is in ADR 0071.)
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStatus, type Session } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";
import { newSessionId, startHarness, type Harness } from "./harness.js";

const masquesDir = mkdtempSync(path.join(tmpdir(), "masques-crash-"));
const researcherYaml = path.join(masquesDir, "researcher.yaml");
const translatorYaml = path.join(masquesDir, "translator.yaml");
let h: Harness;

const TRANSLATOR = `name: translator
index: 41
version: "1.0.0"
ring: player
author: author-nadia
attributes:
  domain: language
  tagline: "Translates with care"
intent:
  allowed:
    - "translate *"
context: |
  You translate technical documents.
lens: |
  Keep the meaning; keep the terms.
pricing:
  flat_per_session: "0.013"
  per_1k_input_tokens: "0.0011"
  per_1k_output_tokens: "0.0023"
  per_tool_call: "0.0003"
  cap_per_session: "3"
  reserve: "1"
`;

beforeAll(async () => {
  cpSync(path.resolve("masques"), masquesDir, { recursive: true });
  h = await startHarness({ env: { MASQUES_DIR: masquesDir, PLATFORM_FEE_BPS: "1500", BILLING_MODE: "live" } });
}, 180_000);
afterAll(async () => {
  await h?.stop();
  rmSync(masquesDir, { recursive: true, force: true });
});

describe("SIGKILL right after Dons with new price books (issue 10)", () => {
  it("after restart every session's price book is readable from the database, and each settles with its own", async () => {
    const original = readFileSync(researcherYaml, "utf8");
    const repriced = original.replace('per_1k_output_tokens: "0.0008"', 'per_1k_output_tokens: "0.0031"');
    expect(repriced).not.toBe(original);
    writeFileSync(researcherYaml, repriced);
    writeFileSync(translatorYaml, TRANSLATOR);
    await h.daemon.restart(); // loads the two new price books

    const c = await h.fundedAgent("crash-pb", 20_000_000n);
    const plan = [...Array.from({ length: 4 }, () => "translator"), ...Array.from({ length: 4 }, () => "researcher")].map((masque) => ({ masque, sid: newSessionId() }));
    const donned = await Promise.all(plan.map((x) => c.sessions.don({ sessionId: x.sid, masque: x.masque }).then((r) => r.session!)));
    await h.daemon.kill(); // right after the Dons answered

    // The catalog as it was: translator gone, researcher's old prices.
    unlinkSync(translatorYaml);
    writeFileSync(researcherYaml, original);
    await h.daemon.start();
    const c2 = await h.as("agent", "crash-pb");

    const usage = { seq: 1n, inputTokens: 10_000n, outputTokens: 5_000n, toolCalls: 4n };
    for (const [i, x] of plan.entries()) {
      const s = (await c2.sessions.getSession({ sessionId: x.sid })).session!;
      expect(s).toMatchObject({ status: SessionStatus.OPEN, masqueName: x.masque, priceVersion: donned[i]!.priceVersion });
      expect(s.author).toBe(x.masque === "translator" ? "author-nadia" : "author-grace");
      await c2.sessions.recordUsage({ events: [{ sessionId: x.sid, ...usage }] });
    }
    // Not in the restarted catalog, yet its author lists their sessions (from the database).
    const nadia = await h.as("author", "author-nadia");
    const listed = (await nadia.sessions.listSessions({ owner: { case: "author", value: "author-nadia" } })).sessions;
    expect(listed.map((s) => s.sessionId).sort()).toEqual(plan.filter((x) => x.masque === "translator").map((x) => x.sid).sort());

    const settled: Session[] = [];
    for (const x of plan) settled.push((await c2.sessions.doff({ sessionId: x.sid })).session!);
    for (const [i, s] of settled.entries()) {
      expect(s.status).toBe(SessionStatus.DOFFED);
      expect(s.priceVersion).toBe(donned[i]!.priceVersion);
      // Hand-worked prices (no per-minute price in either book):
      // translator: 13,000 flat + 10k x 0.0011/1k + 5k x 0.0023/1k + 4 x 0.0003
      //   = 13,000 + 11,000 + 11,500 + 1,200 = 36,700 µ; 15% fee 5,505, author 31,195.
      // researcher repriced: 10k x 0.0002/1k + 5k x 0.0031/1k + 4 x 0.0005
      //   = 2,000 + 15,500 + 2,000 = 19,500 µ; 15% fee 2,925, author 16,575.
      const want = plan[i]!.masque === "translator" ? [36_700n, 5_505n, 31_195n] : [19_500n, 2_925n, 16_575n];
      expect([s.priceMicro, s.platformFeeMicro, s.authorShareMicro]).toEqual(want);
      expect(s.authorShareMicro + s.platformFeeMicro + s.refundMicro).toBe(s.holdMicro);
    }
    expect(await h.available("crash-pb")).toBe(20_000_000n - 4n * 36_700n - 4n * 19_500n);
    expect(await h.earnings("author-nadia")).toBe(4n * 31_195n);
  }, 240_000);

  it("the daemon's ClickHouse copy reconciles with its ledger", async () => {
    await expectAnalyticsReconcile(h.daemon);
  }, 120_000);
});
