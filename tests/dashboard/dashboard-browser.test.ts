/**
 * The dashboard at /ui/ in a real headless Chromium (Debian's package, driven by playwright-core)
 * against a real daemon with real sessions (one browser and one daemon for the file):
 *   - the author page shows the earnings the ledger holds, to the micro-USD;
 *   - an author sees only its own figures (and the API refuses the other author's, also when
 *     asked from the page with the author's token);
 *   - the agent page follows a session from open (accrued price) to doffed (history, wallet), and
 *     shows the spending caps with what remains today, as the ledger enforces them;
 *   - the operator page (pasted admin token) shows the streamer, revenue and reconciliation, a
 *     revenue rule waiting for approval, and the payout queued on its rail;
 *   - the author page lists the pending rule change for that author only (and the API refuses
 *     another author's rules);
 *   - the one-click dev login is refused to non-loopback Host / Origin (DNS rebinding), and never
 *     mints admin tokens;
 *   - nothing is requested from anywhere but the daemon; every form field has a label; the pages
 *     fit a phone-sized screen. Screenshots of each page go to tests/dashboard/artifacts/.
 */
import { mkdirSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { AdminService, RevenueRuleScopeKind } from "../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { OwnershipPurpose, PayoutState, SettlementService } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { exportJWK, generateKeyPair } from "jose";
import { formatUsd } from "../../clients/sdk/money.js";
import { mintToken } from "../../src/server/auth.js";
import { newSessionId, startHarness, type Clients, type Harness } from "../sessions/harness.js";
import { ARTIFACTS, REBIND_HOST, ensureDashboardBuilt, launchChromium, type TestBrowser } from "./browser.js";

const WAIT_MS = 60_000;

interface Raw {
  status: number;
  body: string;
}

/** A raw HTTP/1.1 request to the daemon with chosen Host / Origin headers. */
function rawRequest(addr: string, method: string, urlPath: string, headers: Record<string, string>, body?: string): Promise<Raw> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: urlPath, headers, setHost: false }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

describe("dashboard in Chromium", () => {
  let h: Harness;
  let b: TestBrowser;
  let origin: string;
  let agent: Clients;
  let openSession: string;
  let pendingRule = "";
  const requested: string[] = [];

  async function newPage(): Promise<Page> {
    const page = await b.context.newPage();
    page.on("request", (r) => requested.push(r.url()));
    return page;
  }

  async function text(page: Page, testId: string): Promise<string> {
    return (await page.getByTestId(testId).first().textContent({ timeout: WAIT_MS })) ?? "";
  }

  /** Wait until the element's text is `want` (pages refresh every 2 s; the copy lags the ledger). */
  async function waitText(page: Page, testId: string, want: string): Promise<void> {
    await expect.poll(() => text(page, testId), { timeout: WAIT_MS, interval: 250 }).toBe(want);
  }

  /** Wait until the page has finished one more refresh of all its panels. */
  async function nextRefresh(page: Page): Promise<void> {
    const loadedAt = async () => (await page.locator("body").getAttribute("data-loaded-at")) ?? "";
    const before = await loadedAt();
    await expect.poll(loadedAt, { timeout: WAIT_MS, interval: 100 }).not.toBe(before);
  }

  async function devSignIn(page: Page, kind: "author" | "agent", id: string): Promise<void> {
    await page.goto(`${origin}/ui/`);
    await page.getByLabel("As").selectOption(kind);
    await page.getByLabel("Id").fill(id);
    await page.getByRole("button", { name: "Dev sign-in" }).click();
    await page.getByTestId("signed-in-as").filter({ hasText: `${kind} ${id}` }).waitFor({ timeout: WAIT_MS });
  }

  async function pasteSignIn(page: Page, token: string): Promise<void> {
    await page.goto(`${origin}/ui/`);
    await page.getByLabel("Bearer token").fill(token);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
  }

  async function screenshots(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    // phone-sized: nothing wider than the screen once the charts have followed the resize
    // (tables scroll inside their own region)
    await expect
      .poll(() => page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth"), { timeout: WAIT_MS, message: `${name} is wider than a phone screen` })
      .toBeLessThanOrEqual(0);
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}-phone.png`), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  }

  /** Every form control has an accessible label. */
  async function expectLabelled(page: Page): Promise<void> {
    const unlabelled = await page.evaluate<string[]>(
      `[...document.querySelectorAll("input, select, textarea")]
        .filter((c) => (c.labels?.length ?? 0) === 0 && !c.getAttribute("aria-label") && !c.closest("label"))
        .map((c) => c.outerHTML)`,
    );
    expect(unlabelled).toEqual([]);
  }

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    ensureDashboardBuilt();
    h = await startHarness({
      env: {
        STREAM_POLL_MS: "50",
        RECONCILE_INTERVAL_S: "0",
        // small payouts allowed, so the author's earnings from a few sessions can be paid out
        SETTLEMENT_BASE_CHAIN_ID: "31337",
        PAYOUT_FIXED_FEE_MICRO: "1000",
        PAYOUT_FEE_BPS: "0",
        PAYOUT_MIN_NET_MICRO: "1000",
      },
    });
    origin = `http://${h.daemon.httpAddr}`;
    b = await launchChromium();
    agent = await h.fundedAgent("dash-agent", 25_000_000n);
    // caps set by an admin: every Don below counts against the daily one
    const admin = await h.as("admin", "ops");
    await admin.accounts.setSpendingLimits({ agentId: "dash-agent", dailyCapMicro: 20_000_000n, sessionCapMicro: 7_000_000n });
    // settled sessions on ada's and grace's masques, and one left open
    for (const [i, masque] of ["code-reviewer", "researcher", "pair-programmer"].entries()) {
      const sessionId = newSessionId();
      await agent.sessions.don({ sessionId, masque });
      await agent.sessions.recordUsage({ events: [{ sessionId, seq: 1n, inputTokens: 10_007n * BigInt(i + 1), outputTokens: 3_301n, toolCalls: 7n }] });
      await agent.sessions.doff({ sessionId });
    }
    openSession = newSessionId();
    await agent.sessions.don({ sessionId: openSession, masque: "code-reviewer" });
    await agent.sessions.recordUsage({ events: [{ sessionId: openSession, seq: 1n, inputTokens: 4_321n, outputTokens: 1_234n, toolCalls: 2n }] });
  });
  afterAll(async () => {
    await b?.close();
    await h?.stop();
  });

  it("author page: the ledger's earnings to the micro-USD, per masque, with prices and split", async () => {
    const page = await newPage();
    await devSignIn(page, "author", "author-ada");
    const ledger = await h.earnings("author-ada");
    expect(ledger).toBeGreaterThan(0n);
    expect(ledger % 10_000n).not.toBe(0n); // a figure that a rounded display would get wrong
    await waitText(page, "earnings-balance", formatUsd(ledger));
    await waitText(page, "earnings-total", formatUsd(ledger));
    expect(await page.getByTestId("earnings-total").getAttribute("data-micro")).toBe(String(ledger));
    const earnings = (await text(page, "earnings-table")) ?? "";
    expect(earnings).toContain("code-reviewer");
    expect(earnings).toContain("pair-programmer");
    expect(earnings).not.toContain("researcher");
    expect(await text(page, "catalog-table")).toContain("code-reviewer");
    expect(await text(page, "catalog-table")).not.toContain("researcher");
    expect(await text(page, "current-split")).toMatch(/platform fee \d+ bps/);
    await expect.poll(() => page.locator("#author-earnings canvas").count(), { timeout: WAIT_MS }).toBe(1);
    // the weekly view is one keyboard action away and keeps the total
    await page.getByLabel("Week").first().check();
    await waitText(page, "earnings-total", formatUsd(ledger));
    await expectLabelled(page);
    await screenshots(page, "author");
    await page.close();
  });

  it("author page: request a payout, confirm its quote, see it in the payouts table", async () => {
    // the destination is proven with the author's wallet signature (not a dashboard action)
    const token = await h.daemon.token("author", "author-ada");
    const settlement = createClient(
      SettlementService,
      createGrpcTransport({ baseUrl: `http://${h.daemon.grpcAddr}`, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))] }),
    );
    const wallet = privateKeyToAccount(generatePrivateKey());
    const { challenge } = await settlement.createDestinationChallenge({ purpose: OwnershipPurpose.PAYOUT_DESTINATION, rail: Rail.BASE, address: wallet.address.toLowerCase() });
    const signature = await wallet.signMessage({ message: challenge!.message });
    await settlement.registerPayoutDestination({ rail: Rail.BASE, address: wallet.address, proof: { challengeId: challenge!.challengeId, signature } });

    const page = await newPage();
    await pasteSignIn(page, token);
    await page.getByLabel("Rail").selectOption({ label: "Base (USDC)" });
    await page.getByLabel(/Amount in USD/).fill("0.02");
    // the page refreshes its panels every 2 s: what the user typed, and the quote, survive it
    await nextRefresh(page);
    expect(await page.getByLabel(/Amount in USD/).inputValue()).toBe("0.02");
    await page.getByRole("button", { name: "Get a quote" }).click();
    const form = page.getByRole("form", { name: "Request a payout" });
    await form.getByText("Quote: $0.02 leaves your earnings, fee $0.001, $0.019 arrives").waitFor({ timeout: WAIT_MS });
    await nextRefresh(page);
    await form.getByRole("button", { name: "Confirm payout" }).click();
    await form.getByText("Payout requested.").waitFor({ timeout: WAIT_MS });
    const listed = (await settlement.listPayouts({})).payouts;
    expect(listed.map((p) => [p.state, p.quote?.amountMicro])).toEqual([[PayoutState.REQUESTED, 20_000n]]);
    await expect.poll(() => text(page, "payouts-table"), { timeout: WAIT_MS }).toContain("REQUESTED");
    expect(await text(page, "payouts-table")).toContain("$0.019");
    await screenshots(page, "author-payout");
    await page.close();
  });

  it("an author sees only its own figures; the API refuses the other author's", async () => {
    const page = await newPage();
    const token = await h.daemon.token("author", "author-grace");
    // keyboard only: paste into the labelled field, Tab to the button, Enter
    await page.goto(`${origin}/ui/`);
    await page.getByLabel("Bearer token").focus();
    await page.keyboard.insertText(token);
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await page.getByTestId("signed-in-as").filter({ hasText: "author author-grace" }).waitFor({ timeout: WAIT_MS });
    const ledger = await h.earnings("author-grace");
    await waitText(page, "earnings-total", formatUsd(ledger));
    const earnings = await text(page, "earnings-table");
    expect(earnings).toContain("researcher");
    expect(earnings).not.toContain("code-reviewer");
    expect(await text(page, "author-sessions-table")).not.toContain("code-reviewer");
    // the same token, from the page, asking for ada's earnings: refused by the API
    const asked = await page.evaluate(async (t) => {
      const r = await fetch("/masques.ledger.v1.AnalyticsService/GetAuthorEarnings", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${t}` },
        body: JSON.stringify({ authorId: "author-ada" }),
      });
      return { status: r.status, body: (await r.json()) as { code?: string; message?: string } };
    }, token);
    expect(asked.status).toBe(403);
    expect(asked.body.code).toBe("permission_denied");
    expect(asked.body.message).toContain('may not read the earnings of author "author-ada"');
    await page.close();
  });

  it("agent page: an open session's accrued price, then the doff moves it to history and the wallet", async () => {
    const page = await newPage();
    await devSignIn(page, "agent", "dash-agent");
    // the caps and what remains today, as the ledger has them (the Dons above used some)
    const limits = await agent.accounts.getSpendingLimits({});
    expect(limits.daily?.limitMicro).toBe(20_000_000n);
    expect(limits.daily!.usedMicro).toBeGreaterThan(0n);
    expect(limits.daily!.remainingMicro).toBe(20_000_000n - limits.daily!.usedMicro);
    await waitText(page, "cap-daily-limit", formatUsd(20_000_000n));
    await waitText(page, "cap-daily-used", formatUsd(limits.daily!.usedMicro));
    await waitText(page, "cap-daily-remaining", formatUsd(limits.daily!.remainingMicro));
    await waitText(page, "cap-session-limit", formatUsd(7_000_000n));
    await waitText(page, "cap-session-remaining", formatUsd(limits.perSession!.remainingMicro));
    const open = page.getByTestId("open-sessions-table");
    await expect.poll(() => open.locator(`[data-session="${openSession}"]`).count(), { timeout: WAIT_MS }).toBe(1);
    const before = await h.available("dash-agent");
    await waitText(page, "wallet-available", formatUsd(before));
    expect(await text(page, "wallet-held")).not.toBe("$0.00");
    await expect.poll(() => page.getByTestId("history-table").locator("[data-session]").count(), { timeout: WAIT_MS }).toBe(3);
    await screenshots(page, "agent");

    const doffed = (await agent.sessions.doff({ sessionId: openSession })).session!;
    const after = await h.available("dash-agent");
    expect(after).toBe(before + doffed.refundMicro);
    await expect.poll(() => open.locator(`[data-session="${openSession}"]`).count(), { timeout: WAIT_MS }).toBe(0);
    await waitText(page, "wallet-available", formatUsd(after));
    await waitText(page, "wallet-held", "$0.00");
    const history = page.getByTestId("history-table");
    await expect.poll(() => history.locator(`[data-session="${openSession}"]`).count(), { timeout: WAIT_MS }).toBe(1);
    const row = history.locator("tr", { has: page.locator(`[data-session="${openSession}"]`) });
    expect(await row.textContent()).toContain(formatUsd(doffed.postedMicro));
    await waitText(page, "spend-total", formatUsd(25_000_000n - after));
    await expectLabelled(page);
    await screenshots(page, "agent-after-doff");
    await page.close();
  });

  it("operator page with a pasted admin token: streamer, revenue, reconciliation, queues", async () => {
    // a rule proposed by one admin waits for a second one's approval
    const govToken = await h.daemon.token("admin", "gov-alice", ["ledger:read", "admin", "admin:rules:write"]);
    const governance = createClient(
      AdminService,
      createGrpcTransport({ baseUrl: `http://${h.daemon.grpcAddr}`, interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${govToken}`), next(req))] }),
    );
    const { rule } = await governance.createRevenueRule({ scopeKind: RevenueRuleScopeKind.AUTHOR, scopeValue: "author-ada", authorBps: 9_000, platformFeeBps: 1_000, description: "ada's loyalty split" });
    await governance.submitRevenueRule({ ruleId: rule!.ruleId });
    pendingRule = rule!.ruleId;
    const page = await newPage();
    await pasteSignIn(page, await h.daemon.token("admin", "ops"));
    await page.getByTestId("signed-in-as").filter({ hasText: "admin ops" }).waitFor({ timeout: WAIT_MS });
    // an open session appears among open sessions and, by its hold, among the holds closest to expiry
    const live = newSessionId();
    await agent.sessions.don({ sessionId: live, masque: "researcher" });
    await expect.poll(() => text(page, "operator-open-table"), { timeout: WAIT_MS }).toContain(live.slice(0, 12));
    await expect.poll(() => text(page, "expiring-holds-table"), { timeout: WAIT_MS }).toContain(live.slice(0, 12));
    await screenshots(page, "operator-open-session");
    await agent.sessions.cancel({ sessionId: live });
    await expect.poll(() => text(page, "expiring-holds-table"), { timeout: WAIT_MS }).not.toContain(live.slice(0, 12));
    await waitText(page, "streamer-caught-up", "yes");
    const spend = await h.as("agent", "dash-agent");
    const fees = (await spend.sessions.listSessions({})).sessions.reduce((a, s) => a + s.platformFeeMicro, 0n);
    expect(fees).toBeGreaterThan(0n);
    await waitText(page, "revenue-total", formatUsd(fees));
    expect(await page.getByTestId("operator-reconciliation").textContent()).toMatch(/No reconciliation has finished|No drift|Drift/);
    // the governance queue shows the rule waiting for approval
    const queued = page.getByTestId("governance-table").locator("tr", { has: page.locator(`[data-rule="${rule!.ruleId}"]`) });
    await expect.poll(() => queued.count(), { timeout: WAIT_MS }).toBe(1);
    const ruleRow = (await queued.textContent()) ?? "";
    expect(ruleRow).toContain("pending approval");
    expect(ruleRow).toContain("AUTHOR author-ada");
    expect(ruleRow).toContain("9000 / 1000");
    expect(ruleRow).toContain("gov-alice");
    // the payout ada confirmed above waits on the Base rail (no adapter runs here)
    const base = page.getByTestId("rail-queues-table").locator("tr", { hasText: "BASE" });
    await expect.poll(() => base.count(), { timeout: WAIT_MS }).toBe(1);
    expect((await base.locator("td").allTextContents()).slice(0, 5)).toEqual(["BASE", "1", "0", "0", "$0.02"]);
    await waitText(page, "webhooks-pending", "0");
    await screenshots(page, "operator");
    await page.close();
  });

  it("author page: a pending change of my split is listed for me, not for another author", async () => {
    expect(pendingRule).not.toBe(""); // proposed in the operator test above
    const page = await newPage();
    await devSignIn(page, "author", "author-ada");
    const mine = page.getByTestId("author-rules-table").locator("tr", { has: page.locator(`[data-rule="${pendingRule}"]`) });
    await expect.poll(() => mine.count(), { timeout: WAIT_MS }).toBe(1);
    expect((await mine.locator("td").allTextContents()).slice(1, 4)).toEqual(["you", "pending approval", "90.00% / 10.00%"]);
    await screenshots(page, "author-rules");
    await page.close();

    const token = await h.daemon.token("author", "author-grace");
    const other = await newPage();
    await pasteSignIn(other, token);
    await other.getByTestId("author-rules-table").waitFor({ timeout: WAIT_MS });
    expect(await other.locator(`[data-rule="${pendingRule}"]`).count()).toBe(0);
    const asked = await other.evaluate(async (t) => {
      const r = await fetch("/masques.ledger.v1.AdminService/ListRevenueRules", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${t}` },
        body: JSON.stringify({ scopeKind: "REVENUE_RULE_SCOPE_KIND_AUTHOR", scopeValue: "author-ada" }),
      });
      return { status: r.status, body: (await r.json()) as { code?: string; message?: string } };
    }, token);
    expect(asked.status).toBe(403);
    expect(asked.body.message).toContain('author "author-grace" may list only');
    await other.close();
  });

  it("dev login: loopback Host and Origin only, never for admins, refused to a rebinding page", async () => {
    const addr = h.daemon.httpAddr;
    const port = addr.slice(addr.lastIndexOf(":") + 1);
    const body = JSON.stringify({ kind: "author", id: "author-ada" });
    const post = (host: string, originHeader?: string, payload = body) =>
      rawRequest(addr, "POST", "/ui/api/dev-login", { host, "content-type": "application/json", ...(originHeader ? { origin: originHeader } : {}) }, payload);

    const ok = await post(`127.0.0.1:${port}`, `http://localhost:${port}`);
    expect(ok.status).toBe(200);
    expect((JSON.parse(ok.body) as { token: string }).token.split(".")).toHaveLength(3);
    const evilHost = await post(`attacker.example:${port}`, `http://attacker.example:${port}`);
    expect(evilHost.status).toBe(403);
    expect(evilHost.body).toContain("is not a loopback name");
    const evilOrigin = await post(`127.0.0.1:${port}`, "http://attacker.example");
    expect(evilOrigin.status).toBe(403);
    expect(evilOrigin.body).toContain("is not a loopback origin");
    expect((await post(`127.0.0.1:${port}`)).status).toBe(403); // no Origin at all
    const admin = await post(`127.0.0.1:${port}`, `http://127.0.0.1:${port}`, JSON.stringify({ kind: "admin", id: "root" }));
    expect(admin.status).toBe(400);
    expect(admin.body).toContain("admin and rail tokens are never minted");
    const offered = await rawRequest(addr, "GET", "/ui/api/sign-in", { host: `attacker.example:${port}` });
    expect(JSON.parse(offered.body)).toEqual({ dev_login: false });

    // In the browser: a page served under a name that resolves to 127.0.0.1 (DNS rebinding)
    // is not offered the dev login, and its own request for a token is refused.
    const page = await newPage();
    await page.goto(`http://${REBIND_HOST}:${port}/ui/`);
    await page.getByLabel("Bearer token").waitFor({ timeout: WAIT_MS });
    expect(await page.getByTestId("dev-login").count()).toBe(0);
    const rebind = await page.evaluate(async () => {
      const r = await fetch("/ui/api/dev-login", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ kind: "author", id: "author-ada" }) });
      return { status: r.status, body: await r.text() };
    });
    expect(rebind.status).toBe(403);
    expect(rebind.body).toContain("rebind.test");
    await page.close();
  });

  it("a token the daemon refuses sends the user back to sign-in", async () => {
    // well-formed and unexpired, but signed by a key this daemon does not know
    const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
    const forged = await mintToken(
      { ...(await exportJWK(privateKey)), alg: "EdDSA" },
      { kind: "author", id: "author-ada", scopes: ["ledger:read"], ttlS: 600, issuer: "masques-ledger", audience: "masques-ledger" },
    );
    const page = await newPage();
    await pasteSignIn(page, forged);
    await page.getByLabel("Bearer token").waitFor({ timeout: WAIT_MS });
    await expect.poll(() => page.evaluate<string>("location.hash"), { timeout: WAIT_MS }).toBe("#/sign-in");
    expect(await page.getByTestId("signed-in-as").count()).toBe(0);
    await page.close();
  });

  it("loads nothing from anywhere but the daemon", () => {
    expect(requested.length).toBeGreaterThan(10);
    const foreign = requested.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith(`http://${REBIND_HOST}:`) && !u.startsWith("data:"));
    expect(foreign).toEqual([]);
  });
});
