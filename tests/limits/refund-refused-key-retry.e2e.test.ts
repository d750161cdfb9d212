/**
 * A refund the ledger refused (it asked for more than was left to refund) burns its transfer id
 * (TigerBeetle's id_already_failed). Retrying the same request with the same key must answer a
 * clear FAILED_PRECONDITION naming the key and what to do, not INTERNAL "ledger rejected refund:
 * id_already_failed", and nothing moves; a new key still refunds what is left.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { expectStatus } from "../accounts/errors.js";
import { newSessionId, startHarness, type Clients, type Harness } from "../sessions/harness.js";

const USD = 1_000_000n;
let h: Harness;
let admin: Clients;
beforeAll(async () => {
  h = await startHarness({ env: { STREAMER_ENABLED: "false" } });
  admin = await h.as("admin", "ops");
}, 120_000);
afterAll(async () => h?.stop());

it("retrying a refund refused for exceeding the charge answers IDEMPOTENCY_KEY_FAILED; balances are unchanged", async () => {
  const agent = "refund-retry-agent";
  const c = await h.fundedAgent(agent, 10n * USD);
  const sid = newSessionId();
  await c.sessions.don({ sessionId: sid, masque: "researcher" });
  await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, outputTokens: 625_000n }] });
  const charged = (await c.sessions.doff({ sessionId: sid })).session!.chargedMicro;
  expect(charged).toBe(500_000n);

  await admin.accounts.refundSession({ sessionId: sid, amountMicro: 400_000n, reason: "partly wrong", idempotencyKey: "first" });
  const wallet = await h.available(agent);
  const earned = await h.earnings("author-grace");

  const over = { sessionId: sid, amountMicro: 200_000n, reason: "too much", idempotencyKey: "over" };
  await expectStatus(admin.accounts.refundSession(over), Code.FailedPrecondition, "REFUND_EXCEEDS_CHARGE");
  const retry = await expectStatus(admin.accounts.refundSession(over), Code.FailedPrecondition, "IDEMPOTENCY_KEY_FAILED");
  expect(retry.rawMessage).toContain('"over"');
  expect(retry.rawMessage).toContain("use a new key");
  expect(await h.available(agent)).toBe(wallet);
  expect(await h.earnings("author-grace")).toBe(earned);

  const rest = await admin.accounts.refundSession({ sessionId: sid, reason: "the rest", idempotencyKey: "rest" });
  expect(rest.amountMicro).toBe(100_000n);
  expect(await h.available(agent)).toBe(wallet + 100_000n);
});
