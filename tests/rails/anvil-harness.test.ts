/**
 * The anvil test harness itself: a real anvil on a free loopback port per call, the TestUSDC
 * fixture deploys with 6 decimals, snapshot/revert restores blocks and balances, and stop() leaves
 * no process behind.
 */
import { expect, test } from "vitest";
import { erc20Abi } from "viem";
import { startAnvil } from "../support/anvil.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("two anvils get their own ports; the token deploys; snapshot/revert rewinds; stop kills the process", async () => {
  const a = await startAnvil();
  const b = await startAnvil();
  try {
    expect(a.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(a.url).not.toBe(b.url);
    const token = await a.deployToken();
    expect(await a.publicClient.readContract({ address: token, abi: erc20Abi, functionName: "decimals" })).toBe(6);
    const holder = a.deployer.address;
    const snap = await a.snapshot();
    const head = await a.headNumber();
    await a.mint(token, holder, 5n);
    await a.mine(4);
    expect(await a.headNumber()).toBe(head + 5n);
    expect(await a.publicClient.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [holder] })).toBe(5n);
    await a.revert(snap);
    expect(await a.headNumber()).toBe(head);
    expect(await a.publicClient.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [holder] })).toBe(0n);
    expect(await b.headNumber()).toBe(0n); // b is a separate chain
  } finally {
    await a.stop();
    await b.stop();
  }
  expect(alive(a.pid)).toBe(false);
  expect(alive(b.pid)).toBe(false);
  await a.stop(); // idempotent
});
