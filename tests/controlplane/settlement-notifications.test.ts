/**
 * The author's notification of a payout destination change is an outbox row written in the SAME
 * transaction as the change (docs/adr/0089): never a change without its notification, never a
 * notification of a change that was not stored. The row carries a Standard Webhooks body.
 */
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { DESTINATION_CHANGE_PENDING, destinationChangeNotification } from "../../src/services/settlement/notifications.js";
import { createTestDb, type TestDb } from "./support.js";

let t: TestDb | undefined;
afterEach(async () => {
  await t?.dispose();
  t = undefined;
});

const NOW = 1_800_000_000_000_000_000n;

describe("destination change notifications", () => {
  it("are stored with the change, readable for the pending address, and roll back with it", async () => {
    t = await createTestDb();
    const cp = await t.open();
    try {
      const s = cp.settlement;
      const active = { address: "0x" + "11".repeat(20), effective_time_ns: NOW, create_time_ns: NOW };
      await s.putDestinations("ann", "base", { active, pending: null });
      const pending = { address: "0x" + "22".repeat(20), effective_time_ns: NOW + 3_600_000_000_000n, create_time_ns: NOW };
      const n = destinationChangeNotification({ event_type: DESTINATION_CHANGE_PENDING, author_id: "ann", rail: "base", address: pending.address, active_address: active.address, effective_time_ns: pending.effective_time_ns, now_ns: NOW });
      await s.putDestinations("ann", "base", { active, pending }, n);
      const got = await s.latestNotification("ann", "base", DESTINATION_CHANGE_PENDING, pending.address);
      expect(got).toMatchObject({ notification_id: n.notification_id, author_id: "ann", rail: "base", create_time_ns: NOW });
      expect(JSON.parse(got!.payload)).toEqual({
        type: "payout_destination.change_pending",
        timestamp: new Date(Number(NOW / 1_000_000n)).toISOString(),
        data: { author_id: "ann", rail: "base", address: pending.address, active_address: active.address, effective_time: new Date(Number(pending.effective_time_ns / 1_000_000n)).toISOString() },
      });
      expect(await s.latestNotification("ann", "base", DESTINATION_CHANGE_PENDING, active.address)).toBeNull();
      expect(await s.latestNotification("bob", "base", DESTINATION_CHANGE_PENDING, pending.address)).toBeNull();

      // The same notification id again fails the transaction: the destination change rolls back.
      const third = { address: "0x" + "33".repeat(20), effective_time_ns: NOW + 1n, create_time_ns: NOW };
      await expect(s.putDestinations("ann", "base", { active, pending: third }, n)).rejects.toThrow();
      expect((await s.getDestinations("ann", "base")).pending?.address).toBe(pending.address);
      // Relayed into the webhook outbox in the same transaction (ADR 0109): none is left unrelayed.
      const rows = await sql<{ n: number }>`select count(*)::int as n from settlement_notification where relay_time_ns is not null`.execute(cp.db);
      expect(rows.rows[0]!.n).toBe(1);
    } finally {
      await cp.close();
    }
  }, 120_000);
});
