/**
 * Issue 11, "configuration that silently breaks a guarantee" (ADR 0033, 0037): with a daemon up,
 * no session is lost to its hold's ledger timeout. SESSION_MAX_S=10 with
 * SESSION_REAPER_INTERVAL_MS=3000 let idle sessions expire; such combinations are refused at
 * start-up naming the rule, and every accepted one reaps before the timeout whatever the phase of
 * the reaper's passes (simulated with an injected clock: no sleeps).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CloseReason, SessionStatus } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { parseSessionId } from "../../src/domain/sessions.js";
import { reapOnce } from "../../src/services/sessions/reaper.js";
import type { SessionServiceInstance } from "../../src/services/sessions/service.js";
import { newSessionId } from "./harness.js";
import { donReq, startInProcess, type InProcess } from "./inprocess.js";

describe("reaper settings that cannot keep the guarantee are refused at start-up", () => {
  it("SESSION_MAX_S=10 with SESSION_REAPER_INTERVAL_MS=3000: ConfigError naming the variable and the rule", () => {
    let err: unknown;
    try {
      loadConfig({ SESSION_MAX_S: "10", SESSION_REAPER_INTERVAL_MS: "3000" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const issues = (err as ConfigError).issues;
    expect(issues).toEqual([{ variable: "SESSION_REAPER_INTERVAL_MS", message: expect.stringContaining("must be at most half of SESSION_MAX_S (10 s)") }]);
    expect(issues[0]!.message).toContain("SESSION_REAPER_INTERVAL_MS <= 1666");
    expect(() => loadConfig({ SESSION_MAX_S: "10", SESSION_REAPER_INTERVAL_MS: "1666" })).not.toThrow();
    expect(() => loadConfig({})).not.toThrow(); // the defaults keep it
  });
});

describe("an accepted tight setting reaps every session before its hold's timeout", () => {
  const INTERVAL_MS = 1_500; // 3 x 1.5 s <= 10 s / 2: accepted; the old margin (a tenth: 1 s) was shorter than one interval
  let now_ns = 0n;
  let env: InProcess;
  let S: SessionServiceInstance;
  beforeAll(async () => {
    env = await startInProcess({ SESSION_MAX_S: "10", SESSION_IDLE_S: "900", SESSION_REAPER_INTERVAL_MS: String(INTERVAL_MS) }, () => now_ns);
    S = await env.instance();
  });
  afterAll(async () => env?.close());

  it("for every phase of the passes: REAPED at MAX_LENGTH, never EXPIRED", async () => {
    const p = await env.fundedAgent("phases");
    for (let phase_ms = 0; phase_ms < INTERVAL_MS; phase_ms += 250) {
      now_ns = BigInt(Date.now()) * 1_000_000n;
      const sid = newSessionId();
      const don = await S.handlers.don(p, donReq(sid));
      const deadline_ns = don.session!.deadlineTime!.seconds * 1_000_000_000n + BigInt(don.session!.deadlineTime!.nanos);
      const don_ns = don.session!.donTime!.seconds * 1_000_000_000n + BigInt(don.session!.donTime!.nanos);
      let pass_ns = don_ns + BigInt(phase_ms) * 1_000_000n;
      let settled_at: bigint | null = null;
      for (; pass_ns < deadline_ns + BigInt(INTERVAL_MS) * 1_000_000n; pass_ns += BigInt(INTERVAL_MS) * 1_000_000n) {
        now_ns = pass_ns;
        await reapOnce(S.state);
        if (!S.state.open.has(parseSessionId(sid))) {
          settled_at = pass_ns;
          break;
        }
      }
      const s = await S.handlers.get(p, sid);
      expect({ phase_ms, status: SessionStatus[s.status] }).toEqual({ phase_ms, status: "REAPED" });
      expect(s.closeReason).toBe(CloseReason.MAX_LENGTH);
      expect(settled_at).not.toBeNull();
      expect(settled_at!).toBeLessThan(deadline_ns);
    }
  });
});
