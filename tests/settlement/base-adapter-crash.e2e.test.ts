/**
 * Issue 13, never pay twice: the Base adapter process is SIGKILLed again and again — after
 * signing (before the daemon recorded the transaction), after recording (before broadcasting) and
 * after broadcasting (before confirming) — while the chain mines only when the test says so and
 * sometimes loses a pending transaction. After the crashes a clean adapter finishes the work, and
 * the chain holds exactly ONE USDC Transfer per payout (its recorded hash), the author's balance
 * and the destination's are exact.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PayoutState } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import type { FaultPoint } from "../../src/rails/adapter/runner.js";
import { startAdapterHarness, type AdapterHarness } from "./adapter-harness.js";
import { expectedFee, newAccount } from "./harness.js";

const AUTHOR = "author-grace";
const dest = newAccount();
let x: AdapterHarness;

beforeAll(async () => {
  x = await startAdapterHarness();
  await x.h.earn("payer", 4); // 1,700,000 micro-USD
  await x.h.prove(AUTHOR, dest);
  await x.chain.mint(x.usdc, x.hot.address, 10_000_000n);
  await x.chain.setAutomine(false); // blocks only when the test mines them
}, 180_000);
afterAll(async () => {
  await x?.stop();
});

describe("adapter crashes", () => {
  it("SIGKILLed 10 times between signing, recording, broadcasting and confirming: exactly one on-chain transfer per payout", async () => {
    const points: FaultPoint[] = ["after_sign", "after_record", "after_broadcast"];
    const amount = 100_000n;
    const net = amount - expectedFee(amount);
    const before = await x.h.earnings(AUTHOR);
    const head0 = await x.chain.headNumber();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const point = points[i % points.length]!;
      ids.push((await x.queue(AUTHOR, `crash-${i}`, amount)).payoutId);
      const p = await x.startAdapter({ RAIL_FAULT_KILL_AT: point });
      const exit = await Promise.race([
        p.exited,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`iteration ${i}: the adapter never reached ${point}\n${p.stderr()}`)), 90_000)),
      ]);
      expect(exit, `iteration ${i} (${point})`).toEqual({ code: null, signal: "SIGKILL" });
      if (i % 4 === 3) {
        // The node loses what is pending: the next adapter must re-send the SAME recorded bytes.
        for (const id of ids) {
          const tx = (await x.payout(AUTHOR, id)).txRef;
          if (tx !== "") await x.chain.dropTransaction(tx as `0x${string}`);
        }
      } else if (i % 2 === 0) {
        await x.chain.mine(1);
      }
    }
    const clean = await x.startAdapter();
    const final = await x.settled(AUTHOR, ids);
    expect(final.map((p) => p.state)).toEqual(ids.map(() => PayoutState.CONFIRMED));
    const logs = await x.payoutLogs(head0);
    expect(logs.length).toBe(ids.length);
    expect(logs.map((l) => l.tx_hash).sort()).toEqual(final.map((p) => p.txRef).sort());
    expect(logs.every((l) => l.to === dest.address && l.value === net)).toBe(true);
    expect(await x.usdcOf(dest.address)).toBe(net * BigInt(ids.length));
    expect(await x.h.earnings(AUTHOR)).toEqual({ posted: before.posted - amount * 10n, available: before.available - amount * 10n });
    await clean.stop();
  }, 170_000);
});
