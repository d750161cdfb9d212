/**
 * Deposits after the report (issue 13; docs/adr/0088), through the real daemon: an agent lists
 * its deposit sources and deposits with confirmation progress (paged), an admin lists anyone's
 * and the HELD queue, releases a HELD deposit to an agent under the SAME deposit id (exactly once
 * whatever the adapter reports later, with the admin's identity recorded), and reads every
 * refused report. Reorgs: a deposit seen below finality and then reported gone is never credited,
 * a stale report naming the orphaned block is refused even at depth, and the re-included deposit
 * is credited once at finality.
 */
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService } from "../../clients/gen/masques/ledger/v1/admin_service_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { DepositState, OwnershipPurpose } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import type { PrivateKeyAccount } from "viem/accounts";
import { expectDenied, expectInvalid, expectStatus } from "../accounts/errors.js";
import { newAccount, startSettlementHarness, type SettlementHarness } from "./harness.js";

let h: SettlementHarness;
const CHAIN = "eip155:31337"; // finality depth 3 in the harness
let n = 0;
const txHash = () => `0x${"cd".repeat(28)}${(++n).toString(16).padStart(8, "0")}`;
const BLOCK_A = `0x${"a1".repeat(32)}`;
const BLOCK_B = `0x${"b2".repeat(32)}`;

async function bind(agent: string, acct: PrivateKeyAccount) {
  const s = await h.settlement("agent", agent);
  const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.DEPOSIT_SOURCE, rail: Rail.BASE, address: acct.address });
  const signature = await acct.signMessage({ message: challenge!.message });
  return s.bindDepositSource({ rail: Rail.BASE, address: acct.address, proof: { challengeId: challenge!.challengeId, signature } });
}

function report(tx: string, from: string, confirmations: number, opts: { amount?: bigint; block?: string; removed?: boolean } = {}) {
  return {
    chainId: CHAIN,
    txRef: tx,
    eventIndex: 0,
    fromAddress: from,
    amountMicro: opts.amount ?? 2_000_000n,
    blockNumber: 100n,
    blockHash: opts.block ?? BLOCK_A,
    confirmations,
    removed: opts.removed ?? false,
  };
}

beforeAll(async () => {
  h = await startSettlementHarness();
  await h.d.fundedAgent("erin", 1n);
  await h.d.fundedAgent("fay", 1n);
}, 180_000);
afterAll(async () => {
  await h?.stop();
});

describe("listing deposit sources and deposits", () => {
  it("an agent pages its own sources and deposits (with confirmations and finality depth); others are refused; an admin reads any", async () => {
    const a = newAccount();
    const b = newAccount();
    await bind("erin", a);
    h.d.advance(1);
    await bind("erin", b);
    const erin = await h.settlement("agent", "erin");
    const p1 = await erin.listDepositSources({ pageSize: 1 });
    expect(p1.sources.map((s) => s.address)).toEqual([b.address]);
    expect(p1.nextPageToken).not.toBe("");
    const p2 = await erin.listDepositSources({ pageSize: 1, pageToken: p1.nextPageToken });
    expect(p2.sources.map((s) => s.address)).toEqual([a.address]);
    expect(p2.nextPageToken).toBe("");
    await expectInvalid(erin.listDepositSources({ pageSize: 1, pageToken: p1.nextPageToken, rail: Rail.BASE }), ["page_token"]);

    const rail = await h.settlement("rail", "base");
    const t1 = txHash();
    const t2 = txHash();
    await rail.reportDeposit(report(t1, a.address, 3));
    h.d.advance(1);
    await rail.reportDeposit(report(t2, b.address, 1));
    const d1 = await erin.listDeposits({ pageSize: 1 });
    expect(d1.deposits[0]).toMatchObject({ txRef: t2, state: DepositState.CONFIRMING, confirmations: 1, finalityDepth: 3, agentId: "erin", amountMicro: 2_000_000n });
    const d2 = await erin.listDeposits({ pageSize: 1, pageToken: d1.nextPageToken });
    expect(d2.deposits[0]).toMatchObject({ txRef: t1, state: DepositState.CREDITED, confirmations: 3 });
    expect(d2.nextPageToken).toBe("");

    const fay = await h.settlement("agent", "fay");
    await expectDenied(fay.listDeposits({ agentId: "erin" }));
    await expectDenied(fay.listDepositSources({ agentId: "erin" }));
    expect((await fay.listDeposits({})).deposits).toEqual([]);
    await expectDenied((await h.settlement("author", "erin")).listDeposits({}));
    const admin = await h.settlement("admin", "ops");
    expect((await admin.listDeposits({ agentId: "erin" })).deposits.map((d) => d.txRef)).toEqual([t2, t1]);
    expect((await admin.listDepositSources({ agentId: "erin" })).sources).toHaveLength(2);
    await expectInvalid(admin.listDepositSources({}), ["agent_id"]);
  });
});

describe("admin release of HELD deposits", () => {
  it("credits the agent once under the same deposit id, records who and why; later reports and retries credit nothing more", async () => {
    const rail = await h.settlement("rail", "base");
    const admin = await h.settlement("admin", "ops");
    const stranger = newAccount();
    const tx = txHash();
    const held = (await rail.reportDeposit(report(tx, stranger.address, 3, { amount: 7_000_000n }))).deposit!;
    expect(held.state).toBe(DepositState.HELD);
    expect((await admin.listDeposits({})).deposits.map((d) => d.depositId)).toContain(held.depositId);

    await expectDenied((await h.settlement("agent", "fay")).releaseHeldDeposit({ depositId: held.depositId, agentId: "fay", reason: "mine" }));
    await expectDenied(rail.releaseHeldDeposit({ depositId: held.depositId, agentId: "fay", reason: "mine" }));
    await expectInvalid(admin.releaseHeldDeposit({ depositId: held.depositId, agentId: "fay", reason: " " }), ["reason"]);
    await expectStatus(admin.releaseHeldDeposit({ depositId: held.depositId, agentId: "nobody-has-a-wallet", reason: "typo" }), Code.NotFound, "ACCOUNT_NOT_FOUND");

    const before = await h.d.available("fay");
    const r = await admin.releaseHeldDeposit({ depositId: held.depositId, agentId: "fay", reason: "support ticket 42: fay sent it from an exchange" });
    expect(r.deposit).toMatchObject({ state: DepositState.CREDITED, agentId: "fay", releasedBy: "ops", releaseReason: "support ticket 42: fay sent it from an exchange" });
    expect(r.deposit!.releaseTime).toBeDefined();
    expect(r.transfer!.transferId).toBe(held.depositId);
    expect(r.transfer!.amountMicro).toBe(7_000_000n);
    expect(await h.d.available("fay")).toBe(before + 7_000_000n);

    // Retried release: same credit. To another agent: refused. The adapter reports it again
    // (even once the source is bound to someone else): the original credit, nothing more.
    expect((await admin.releaseHeldDeposit({ depositId: held.depositId, agentId: "fay", reason: "retry" })).transfer!.transferId).toBe(held.depositId);
    await expectStatus(admin.releaseHeldDeposit({ depositId: held.depositId, agentId: "erin", reason: "oops" }), Code.FailedPrecondition, "DEPOSIT_NOT_HELD");
    // The release is in the audit log once (the retry added nothing): actor from the token,
    // before/after, the reason (issue 16, ADR 0109).
    const opsToken = await h.d.token("admin", "ops");
    const auditReader = createClient(AdminService, createGrpcTransport({
      baseUrl: `http://${h.d.daemon.grpcAddr}`,
      interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${opsToken}`), next(req))],
    }));
    const releases = (await auditReader.listAuditEntries({ actorId: "ops", pageSize: 499 })).entries.filter((e) => e.subject === `deposit:${held.depositId}`);
    expect(releases.map((e) => [e.action, e.actorKind, e.actorId, e.reason])).toEqual([["deposit.release_held", "admin", "ops", "support ticket 42: fay sent it from an exchange"]]);
    expect(releases[0]!.requestId).not.toBe("");
    expect(JSON.parse(releases[0]!.beforeJson)).toMatchObject({ state: "held", amount_micro: "7000000" });
    expect(JSON.parse(releases[0]!.afterJson)).toMatchObject({ state: "credited", agent_id: "fay", amount_micro: "7000000" });
    await bind("erin", stranger);
    const erinBefore = await h.d.available("erin");
    const again = await rail.reportDeposit(report(tx, stranger.address, 9, { amount: 7_000_000n }));
    expect(again.deposit).toMatchObject({ state: DepositState.CREDITED, agentId: "fay", releasedBy: "ops" });
    expect(again.transfer!.transferId).toBe(held.depositId);
    expect(await h.d.available("fay")).toBe(before + 7_000_000n);
    expect(await h.d.available("erin")).toBe(erinBefore);
    expect((await (await h.settlement("agent", "fay")).listDeposits({})).deposits.map((d) => d.depositId)).toContain(held.depositId);

    // A deposit that is not held cannot be released; an unknown one is NOT_FOUND.
    const credited = (await admin.listDeposits({ agentId: "erin" })).deposits.find((d) => d.state === DepositState.CREDITED)!;
    await expectStatus(admin.releaseHeldDeposit({ depositId: credited.depositId, agentId: "fay", reason: "steal" }), Code.FailedPrecondition, "DEPOSIT_NOT_HELD");
    await expectStatus(admin.releaseHeldDeposit({ depositId: "0".repeat(31) + "1", agentId: "fay", reason: "x" }), Code.NotFound, "DEPOSIT_NOT_FOUND");
  });

  it("refused reports are recorded and readable by an admin only", async () => {
    const rail = await h.settlement("rail", "base");
    const src = newAccount();
    await bind("fay", src);
    const tx = txHash();
    await rail.reportDeposit(report(tx, src.address, 1));
    await expectStatus(rail.reportDeposit(report(tx, src.address, 3, { amount: 9_000_000n })), Code.FailedPrecondition, "DEPOSIT_FACTS_MISMATCH");
    await expectStatus(rail.reportDeposit({ ...report(txHash(), src.address, 3), chainId: "eip155:1" }), Code.FailedPrecondition, "WRONG_CHAIN");
    const admin = await h.settlement("admin", "ops");
    const page = await admin.listDepositRefusals({ rail: Rail.BASE, pageSize: 2 });
    expect(page.refusals.map((r) => r.reason)).toEqual(["WRONG_CHAIN", "DEPOSIT_FACTS_MISMATCH"]);
    expect(page.refusals[1]).toMatchObject({ txRef: tx, detail: "amount_micro: recorded 2000000, reported 9000000" });
    expect(JSON.parse(page.refusals[1]!.reportJson)).toMatchObject({ amount_micro: "9000000" });
    await expectDenied((await h.settlement("agent", "fay")).listDepositRefusals({}));
    await expectDenied(rail.listDepositRefusals({}));
  });
});

describe("reorgs", () => {
  it("seen below finality then gone: never credited, a stale report of the orphaned block is refused even at depth; re-included: credited once", async () => {
    const rail = await h.settlement("rail", "base");
    const src = newAccount();
    await bind("erin", src);
    const tx = txHash();
    const before = await h.d.available("erin");
    const seen = (await rail.reportDeposit(report(tx, src.address, 2, { block: BLOCK_A }))).deposit!;
    expect(seen.state).toBe(DepositState.CONFIRMING);
    const gone = (await rail.reportDeposit(report(tx, src.address, 0, { block: BLOCK_A, removed: true }))).deposit!;
    expect(gone).toMatchObject({ state: DepositState.REORGED, depositId: seen.depositId });
    // The adapter's retry of the removal is idempotent.
    expect((await rail.reportDeposit(report(tx, src.address, 0, { block: BLOCK_A, removed: true }))).deposit!.state).toBe(DepositState.REORGED);
    // A lagging adapter process still counting on the orphaned block (upper-case hex too).
    await expectStatus(rail.reportDeposit(report(tx, src.address, 5, { block: BLOCK_A.toUpperCase().replace("0X", "0x") })), Code.FailedPrecondition, "DEPOSIT_BLOCK_ORPHANED");
    expect(await h.d.available("erin")).toBe(before);
    expect((await (await h.settlement("agent", "erin")).listDeposits({})).deposits.find((d) => d.depositId === seen.depositId)!.state).toBe(DepositState.REORGED);

    // Re-included in another block: confirming from there, credited once at finality.
    expect((await rail.reportDeposit(report(tx, src.address, 1, { block: BLOCK_B }))).deposit!.state).toBe(DepositState.CONFIRMING);
    expect(await h.d.available("erin")).toBe(before);
    const done = await rail.reportDeposit(report(tx, src.address, 3, { block: BLOCK_B }));
    expect(done.deposit).toMatchObject({ state: DepositState.CREDITED, blockHash: BLOCK_B });
    await rail.reportDeposit(report(tx, src.address, 8, { block: BLOCK_B }));
    expect(await h.d.available("erin")).toBe(before + 2_000_000n);
    // A removal after credit is an alarm, refused; nothing moves.
    await expectStatus(rail.reportDeposit(report(tx, src.address, 0, { block: BLOCK_B, removed: true })), Code.FailedPrecondition, "DEPOSIT_ALREADY_CREDITED");
    expect(await h.d.available("erin")).toBe(before + 2_000_000n);
  });

  it("re-reported in another block: confirmations count from the new block, a lagging report of the old block is refused even at depth", async () => {
    const rail = await h.settlement("rail", "base");
    const src = newAccount();
    await bind("erin", src);
    const before = await h.d.available("erin");
    const tx = txHash();
    await rail.reportDeposit(report(tx, src.address, 2, { block: BLOCK_A }));
    expect((await rail.reportDeposit(report(tx, src.address, 1, { block: BLOCK_B }))).deposit).toMatchObject({ state: DepositState.CONFIRMING, confirmations: 1, blockHash: BLOCK_B });
    await expectStatus(rail.reportDeposit(report(tx, src.address, 5, { block: BLOCK_A })), Code.FailedPrecondition, "DEPOSIT_BLOCK_ORPHANED");
    expect(await h.d.available("erin")).toBe(before);
    expect((await rail.reportDeposit(report(tx, src.address, 3, { block: BLOCK_B }))).deposit!.state).toBe(DepositState.CREDITED);
    expect(await h.d.available("erin")).toBe(before + 2_000_000n);
  });

  it("a removal report at depth credits nothing; a stale removal of an older block leaves the re-included deposit confirming", async () => {
    const rail = await h.settlement("rail", "base");
    const src = newAccount();
    await bind("fay", src);
    const before = await h.d.available("fay");
    const tx = txHash();
    expect((await rail.reportDeposit(report(tx, src.address, 4, { removed: true }))).deposit!.state).toBe(DepositState.REORGED);
    expect(await h.d.available("fay")).toBe(before);
    const tx2 = txHash();
    await rail.reportDeposit(report(tx2, src.address, 1, { block: BLOCK_B }));
    expect((await rail.reportDeposit(report(tx2, src.address, 0, { block: BLOCK_A, removed: true }))).deposit!.state).toBe(DepositState.CONFIRMING);
    expect((await rail.reportDeposit(report(tx2, src.address, 3, { block: BLOCK_B }))).deposit!.state).toBe(DepositState.CREDITED);
    expect(await h.d.available("fay")).toBe(before + 2_000_000n);
  });
});
