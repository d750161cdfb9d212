/**
 * Deposits reported by the Base rail adapter, through the real daemon (issue 13 "Deposits"):
 * credited exactly once per (chain id, tx hash, log index), only at finality, only to the agent
 * that proved the source address (a real EIP-191 signature), never from an unbound source or
 * another principal, and contradicting reports are refused with nothing credited.
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { DepositState, OwnershipPurpose } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { expectDenied, expectStatus } from "../accounts/errors.js";
import { newAccount, startSettlementHarness, type SettlementHarness } from "./harness.js";
import type { PrivateKeyAccount } from "viem/accounts";

let h: SettlementHarness;
const source = newAccount();
const CHAIN = "eip155:31337"; // SETTLEMENT_BASE_CHAIN_ID in the harness; finality depth 3
let n = 0;
const txHash = () => `0x${"ab".repeat(28)}${(++n).toString(16).padStart(8, "0")}`; // hex letters: case matters to a naive key

async function bind(agent: string, acct: PrivateKeyAccount) {
  const s = await h.settlement("agent", agent);
  const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.DEPOSIT_SOURCE, rail: Rail.BASE, address: acct.address });
  const signature = await acct.signMessage({ message: challenge!.message });
  return s.bindDepositSource({ rail: Rail.BASE, address: acct.address, proof: { challengeId: challenge!.challengeId, signature } });
}

function report(tx: string, confirmations: number, amount = 5_000_000n, from: string = source.address, logIndex = 0) {
  return { chainId: CHAIN, txRef: tx, eventIndex: logIndex, fromAddress: from, amountMicro: amount, blockNumber: 100n, blockHash: `0x${"ab".repeat(32)}`, confirmations };
}

beforeAll(async () => {
  h = await startSettlementHarness();
  await h.d.fundedAgent("dora", 1n);
  const r = await bind("dora", source);
  expect(r.source).toMatchObject({ address: source.address, agentId: "dora" });
}, 180_000);
afterAll(async () => {
  await h?.stop();
});

describe("deposits", () => {
  it("below finality: CONFIRMING, nothing credited; at depth: CREDITED once, whatever the report's hex case", async () => {
    const rail = await h.settlement("rail", "base");
    const tx = txHash();
    const before = await h.d.available("dora");
    const c = (await rail.reportDeposit(report(tx, 1))).deposit!;
    expect(c).toMatchObject({ state: DepositState.CONFIRMING, confirmations: 1, finalityDepth: 3 });
    expect(await h.d.available("dora")).toBe(before);
    const done = await rail.reportDeposit(report(tx, 3));
    expect(done.deposit).toMatchObject({ state: DepositState.CREDITED, agentId: "dora", depositId: c.depositId });
    expect(done.transfer!.amountMicro).toBe(5_000_000n);
    expect(await h.d.available("dora")).toBe(before + 5_000_000n);
    // Replays (later confirmations, upper-case hash, lower-case source): the original credit.
    const again = await rail.reportDeposit(report(tx.toUpperCase().replace("0X", "0x"), 9, 5_000_000n, source.address.toLowerCase()));
    expect(again.deposit!.state).toBe(DepositState.CREDITED);
    expect(again.transfer!.transferId).toBe(done.transfer!.transferId);
    expect(await h.d.available("dora")).toBe(before + 5_000_000n);
  });

  it("refuses a report contradicting an earlier one, a wrong chain and malformed keys, crediting nothing", async () => {
    const rail = await h.settlement("rail", "base");
    const tx = txHash();
    const before = await h.d.available("dora");
    await rail.reportDeposit(report(tx, 1));
    await expectStatus(rail.reportDeposit(report(tx, 3, 6_000_000n)), Code.FailedPrecondition, "DEPOSIT_FACTS_MISMATCH");
    await expectStatus(rail.reportDeposit(report(tx, 3, 5_000_000n, newAccount().address)), Code.FailedPrecondition, "DEPOSIT_FACTS_MISMATCH");
    await expectStatus(rail.reportDeposit({ ...report(txHash(), 3), chainId: "eip155:8453" }), Code.FailedPrecondition, "WRONG_CHAIN");
    await expectStatus(rail.reportDeposit({ ...report("0x1234", 3) }), Code.InvalidArgument, "INVALID_ARGUMENT");
    expect(await h.d.available("dora")).toBe(before);
    // The honest report of that event is still credited, once.
    expect((await rail.reportDeposit(report(tx, 3))).deposit!.state).toBe(DepositState.CREDITED);
    expect(await h.d.available("dora")).toBe(before + 5_000_000n);
  });

  it("a deposit from an unbound address is HELD, never credited, even once the address is bound later", async () => {
    const rail = await h.settlement("rail", "base");
    const stranger = newAccount();
    const tx = txHash();
    const before = await h.d.available("dora");
    expect((await rail.reportDeposit(report(tx, 3, 1_000_000n, stranger.address))).deposit).toMatchObject({ state: DepositState.HELD, agentId: "" });
    await bind("dora", stranger);
    expect((await rail.reportDeposit(report(tx, 4, 1_000_000n, stranger.address))).deposit!.state).toBe(DepositState.HELD);
    expect(await h.d.available("dora")).toBe(before);
  });

  it("only the Base adapter reports Base deposits; an address bound to one agent cannot be taken by another", async () => {
    const tx = txHash();
    await expectDenied((await h.settlement("agent", "dora")).reportDeposit(report(tx, 3)));
    await expectDenied((await h.settlement("admin", "ops")).reportDeposit(report(tx, 3)));
    await expectStatus((await h.settlement("rail", "solana")).reportDeposit(report(tx, 3)), Code.FailedPrecondition, "RAIL_NOT_ENABLED");
    await h.d.fundedAgent("mallet", 1n);
    await expectStatus(bind("mallet", source), Code.AlreadyExists, "DEPOSIT_SOURCE_TAKEN");
    // Proof is required: another key's signature binds nothing.
    const s = await h.settlement("agent", "mallet");
    const target = newAccount();
    const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.DEPOSIT_SOURCE, rail: Rail.BASE, address: target.address });
    const forged = await newAccount().signMessage({ message: challenge!.message });
    await expectStatus(s.bindDepositSource({ rail: Rail.BASE, address: target.address, proof: { challengeId: challenge!.challengeId, signature: forged } }), Code.PermissionDenied, "OWNERSHIP_PROOF_INVALID");
  });
});
