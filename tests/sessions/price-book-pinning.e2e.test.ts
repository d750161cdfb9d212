/**
 * ADR 0031: a session is settled with the price book fixed at its Don, even after the masque's
 * YAML changed and the daemon restarted with the new prices; sessions donned after the change pay
 * the new prices. Expected amounts are worked by hand below (not with src/domain).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionStatus } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";
import { newSessionId, startHarness, type Harness } from "./harness.js";

const masquesDir = mkdtempSync(path.join(tmpdir(), "masques-pricing-"));
const researcherYaml = path.join(masquesDir, "researcher.yaml");
let h: Harness;

beforeAll(async () => {
  cpSync(path.resolve("masques"), masquesDir, { recursive: true });
  h = await startHarness({ env: { MASQUES_DIR: masquesDir, PLATFORM_FEE_BPS: "1500", BILLING_MODE: "live" } });
}, 120_000);
afterAll(async () => {
  await h?.stop();
  rmSync(masquesDir, { recursive: true, force: true });
});

describe("price book fixed at Don (ADR 0031)", () => {
  it("a session donned before a price change settles at the old prices after a restart; a new one at the new", async () => {
    const c = await h.fundedAgent("pinned", 5_000_000n);
    const usage = { seq: 1n, inputTokens: 10_000n, outputTokens: 5_000n, toolCalls: 4n };
    const before = newSessionId();
    const old = (await c.sessions.don({ sessionId: before, masque: "researcher" })).session!;
    await c.sessions.recordUsage({ events: [{ sessionId: before, ...usage }] });

    // The author doubles the output-token and tool-call prices.
    const yaml = readFileSync(researcherYaml, "utf8");
    const repriced = yaml
      .replace('per_1k_output_tokens: "0.0008"', 'per_1k_output_tokens: "0.0016"')
      .replace('per_tool_call: "0.0005"', 'per_tool_call: "0.001"');
    expect(repriced).not.toBe(yaml);
    writeFileSync(researcherYaml, repriced);
    await h.daemon.restart();
    const c2 = await h.as("agent", "pinned");

    const after = newSessionId();
    const fresh = (await c2.sessions.don({ sessionId: after, masque: "researcher" })).session!;
    expect(fresh.priceVersion).not.toBe(old.priceVersion);
    await c2.sessions.recordUsage({ events: [{ sessionId: after, ...usage }] });

    const s1 = (await c2.sessions.doff({ sessionId: before })).session!;
    const s2 = (await c2.sessions.doff({ sessionId: after })).session!;
    expect([s1.status, s2.status]).toEqual([SessionStatus.DOFFED, SessionStatus.DOFFED]);
    expect(s1.priceVersion).toBe(old.priceVersion);
    // Old book: 10k x 0.0002/1k + 5k x 0.0008/1k + 4 x 0.0005 = 2,000 + 4,000 + 2,000 = 8,000 µ;
    // 15% platform fee = 1,200, author 6,800, refund 500,000 - 8,000 = 492,000.
    expect([s1.priceMicro, s1.platformFeeMicro, s1.authorShareMicro, s1.refundMicro]).toEqual([8_000n, 1_200n, 6_800n, 492_000n]);
    // New book: 2,000 + 5k x 0.0016/1k + 4 x 0.001 = 2,000 + 8,000 + 4,000 = 14,000 µ;
    // platform 2,100, author 11,900, refund 486,000.
    expect([s2.priceMicro, s2.platformFeeMicro, s2.authorShareMicro, s2.refundMicro]).toEqual([14_000n, 2_100n, 11_900n, 486_000n]);
    expect(await h.available("pinned")).toBe(5_000_000n - 8_000n - 14_000n);
    // Read back after the change, the old session still shows its own book.
    expect((await c2.sessions.getSession({ sessionId: before })).session).toEqual(s1);
  }, 120_000);

  it("the daemon's ClickHouse copy reconciles with its ledger", async () => {
    await expectAnalyticsReconcile(h.daemon);
  }, 120_000);
});
