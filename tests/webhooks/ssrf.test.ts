/**
 * Issue 16: author webhook endpoints may not reach loopback, private, link-local or reserved
 * addresses, after DNS resolution too; the delivery-time lookup refuses such an answer before a
 * connection is made. Also the retry schedule and the live catalog's effective-time rule.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { attemptDelivery, backoffMs } from "../../src/webhooks/dispatcher.js";
import { assertPublicUrl, isPublicAddress, PrivateAddressError } from "../../src/webhooks/ssrf.js";
import { effectiveTimeNs } from "../../src/services/catalog/live.js";
import { webhookEventId } from "../../src/webhooks/events.js";

describe("SSRF guard", () => {
  it("classifies addresses: loopback, private, link-local, CGNAT, multicast, IPv4-mapped IPv6 are not public", () => {
    for (const a of ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1"]) {
      expect(isPublicAddress(a), a).toBe(false);
    }
    for (const a of ["8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]) expect(isPublicAddress(a), a).toBe(true);
  });

  it("checks names after resolution: localhost is refused at registration", async () => {
    await expect(assertPublicUrl(new URL("http://localhost:8080/x"))).rejects.toBeInstanceOf(PrivateAddressError);
    await expect(assertPublicUrl(new URL("http://[::ffff:127.0.0.1]/x"))).rejects.toBeInstanceOf(PrivateAddressError);
  });

  it("at delivery, an author endpoint whose name resolves to loopback is never contacted", async () => {
    let hits = 0;
    const server = http.createServer((_req, res) => {
      hits++;
      res.end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const d = { secret: `whsec_${Buffer.alloc(32, 7).toString("base64")}`, event_id: "msg_x", payload: "{}", allow_private_network: false };
      const now = () => BigInt(Date.now()) * 1_000_000n;
      const byName = await attemptDelivery({ ...d, url: `http://localhost:${port}/`, owner_kind: "author" }, { timeout_ms: 5000, allow_private_network: false, now });
      expect(byName.ok).toBe(false);
      expect(byName.error).toMatch(/loopback, private, link-local or reserved/);
      const literal = await attemptDelivery({ ...d, url: `http://127.0.0.1:${port}/`, owner_kind: "author" }, { timeout_ms: 5000, allow_private_network: false, now });
      expect(literal.ok).toBe(false);
      expect(hits).toBe(0);
      // The same URL for an admin endpoint, or with the allowance, is delivered.
      const admin = await attemptDelivery({ ...d, url: `http://localhost:${port}/`, owner_kind: "admin" }, { timeout_ms: 5000, allow_private_network: false, now });
      expect(admin.ok).toBe(true);
      const allowed = await attemptDelivery({ ...d, url: `http://127.0.0.1:${port}/`, owner_kind: "author", allow_private_network: true }, { timeout_ms: 5000, allow_private_network: false, now });
      expect(allowed.ok).toBe(true);
      expect(hits).toBe(2);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe("retry schedule and ids", () => {
  it("backoff doubles from the base and is capped", () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, 5000, 36_000_000))).toEqual([5000, 10_000, 20_000, 40_000, 80_000]);
    expect(backoffMs(30, 5000, 36_000_000)).toBe(36_000_000);
    expect(() => backoffMs(0, 5000, 1)).toThrow();
  });

  it("an event id is a function of type and key (re-enqueueing a fact is one event)", () => {
    expect(webhookEventId("session.settled", "ab")).toBe(webhookEventId("session.settled", "ab"));
    expect(webhookEventId("session.settled", "ab")).not.toBe(webhookEventId("session.expired", "ab"));
    expect(webhookEventId("session.settled", "ab")).toMatch(/^msg_[a-z2-7]{26}$/);
  });
});

describe("live catalog effective times", () => {
  const notice = 100n;
  it("first version at once; a price change after the notice; times never go backwards", () => {
    expect(effectiveTimeNs(null, 1, 10n, notice)).toBe(10n);
    expect(effectiveTimeNs({ price_version: 1, effective_time_ns: 10n }, 2, 20n, notice)).toBe(120n);
    // A later edit that keeps the pending price does not bring it forward.
    expect(effectiveTimeNs({ price_version: 2, effective_time_ns: 120n }, 2, 30n, notice)).toBe(120n);
    // No price change: at once.
    expect(effectiveTimeNs({ price_version: 2, effective_time_ns: 120n }, 2, 500n, notice)).toBe(500n);
  });
});
