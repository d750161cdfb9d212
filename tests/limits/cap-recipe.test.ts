/**
 * The spending-cap recipe (src/domain/limits.ts, ADR 0110) against the ledger itself: a day's
 * spend is checked against the cap as it is at that instant, caps can be lowered below what was
 * spent, an agent's change is lower-only, and concurrent spends never pass the cap.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateTransferStatus as CT, TransferFlags, type Transfer } from "tigerbeetle-node";
import { openBackend, type Backend } from "../support/ledger-backend.js";
import {
  agentCapAccounts,
  agentCapId,
  capFunding,
  capValueMicro,
  dayAccount,
  dayAccountId,
  dayUsedMicro,
  planDayCheck,
  planMaxCheck,
  planRelease,
  planSetCap,
  platformLimitAccounts,
  NO_CAP_MICRO,
} from "../../src/domain/limits.js";
import { deterministicId } from "../../src/domain/ids.js";

let b: Backend;
beforeAll(async () => {
  b = await openBackend();
  await b.client.createAccounts(platformLimitAccounts());
});
afterAll(async () => b.close());

let n = 0;
async function agent(daily: bigint): Promise<{ wallet: bigint; cap: bigint; day: bigint }> {
  const wallet = deterministicId("test-wallet", String(++n), String(Date.now()));
  await b.client.createAccounts([...agentCapAccounts(wallet), dayAccount("spend", wallet, 1n)]);
  const cap = agentCapId("daily", wallet);
  expect((await b.client.createTransfers([capFunding(cap, daily)])).map((r) => r.status)).toEqual([CT.created]);
  return { wallet, cap, day: dayAccountId("spend", wallet, 1n) };
}

const closeChain = (c: Transfer[]): Transfer[] => {
  c[c.length - 1]!.flags &= ~TransferFlags.linked;
  return c;
};
async function spend(a: { cap: bigint; day: bigint }, amount: bigint): Promise<CT[]> {
  const base = deterministicId("spend", String(++n), String(Math.random()));
  const res = await b.client.createTransfers(
    closeChain(planDayCheck({ base_id: base, family: "spend", day_account_id: a.day, cap_account_id: a.cap, amount_micro: amount, user_data_128: 0n })),
  );
  return res.map((r) => r.status);
}
async function used(a: { day: bigint }): Promise<bigint> {
  const [d] = await b.client.lookupAccounts([a.day]);
  return dayUsedMicro(d);
}

describe("daily cap check in one linked chain", () => {
  it("lets a spend through up to the cap and refuses the micro-USD past it, leaving only the spend recorded", async () => {
    const a = await agent(1_000n);
    expect(await spend(a, 600n)).toEqual([CT.created, CT.created, CT.created, CT.created, CT.created]);
    expect(await spend(a, 400n)).toEqual([CT.created, CT.created, CT.created, CT.created, CT.created]);
    const refused = await spend(a, 1n);
    expect(refused[2]).toBe(CT.exceeds_credits);
    expect(await used(a)).toBe(1_000n);
    const [cap, day] = await b.client.lookupAccounts([a.cap, a.day]);
    expect(capValueMicro(cap)).toBe(1_000n); // the lent cap went back
    expect(day!.credits_pending).toBe(0n);
    expect(day!.debits_pending).toBe(0n);
  });

  it("counts a released reservation as free again", async () => {
    const a = await agent(1_000n);
    expect((await spend(a, 1_000n))[0]).toBe(CT.created);
    const base = deterministicId("release-test", String(++n));
    expect((await b.client.createTransfers([planRelease(base, a.day, 300n, 0n)]))[0]!.status).toBe(CT.created);
    expect(await used(a)).toBe(700n);
    expect((await spend(a, 300n))[0]).toBe(CT.created);
    expect((await spend(a, 1n))[2]).toBe(CT.exceeds_credits);
  });

  it("applies a lowered cap at once, even below what was already spent, and a raised one too", async () => {
    const a = await agent(1_000n);
    expect((await spend(a, 500n))[0]).toBe(CT.created);
    const lower = await b.client.createTransfers(planSetCap(a.cap, 400n, "lower", true));
    expect(lower.every((r) => r.status === CT.created)).toBe(true);
    expect((await spend(a, 1n))[2]).toBe(CT.exceeds_credits);
    const raise = await b.client.createTransfers(planSetCap(a.cap, 800n, "raise", false));
    expect(raise.every((r) => r.status === CT.created)).toBe(true);
    expect((await spend(a, 300n))[0]).toBe(CT.created);
    expect((await spend(a, 1n))[2]).toBe(CT.exceeds_credits);
    expect(await used(a)).toBe(800n);
  });

  it("refuses an agent's lower-only change that would raise the cap, changing nothing", async () => {
    const a = await agent(1_000n);
    const res = await b.client.createTransfers(planSetCap(a.cap, 1_001n, "up", true));
    expect(res[0]!.status).toBe(CT.exceeds_credits);
    const [cap] = await b.client.lookupAccounts([a.cap]);
    expect(capValueMicro(cap)).toBe(1_000n);
  });

  it("never passes the cap by one micro-USD under 100 concurrent spends", async () => {
    const a = await agent(12_345n);
    const amounts = Array.from({ length: 100 }, (_, i) => 100n + BigInt((i * 37) % 200));
    const results = await Promise.all(amounts.map((x) => spend(a, x)));
    const accepted = amounts.filter((_, i) => results[i]![0] === CT.created).reduce((s, x) => s + x, 0n);
    expect(await used(a)).toBe(accepted);
    expect(accepted).toBeLessThanOrEqual(12_345n);
    expect(accepted).toBeGreaterThan(12_345n - 300n); // refused only when the next one did not fit
  });

  it("checks a single amount against a max cap", async () => {
    const a = await agent(NO_CAP_MICRO);
    const session = agentCapId("session", a.wallet);
    await b.client.createTransfers([capFunding(session, 50n)]);
    const ok = await b.client.createTransfers(closeChain(planMaxCheck(deterministicId("m", String(++n)), "spend", session, 50n)));
    expect(ok.map((r) => r.status)).toEqual([CT.created, CT.created]);
    const no = await b.client.createTransfers(closeChain(planMaxCheck(deterministicId("m", String(++n)), "spend", session, 51n)));
    expect(no[0]!.status).toBe(CT.exceeds_credits);
  });
});
