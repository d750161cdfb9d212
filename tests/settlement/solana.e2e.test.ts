/**
 * The Solana rail in SettlementService, service side (issue 14; docs/adr/0091), through the real
 * daemon with SETTLEMENT_SOLANA_CHAIN_ID set: destinations and deposit sources proven by real
 * ed25519 signatures over the daemon's challenge; quotes carry the destination token account's
 * rent as a recorded fee (charged only when the payout created the account); the adapter's
 * signed transactions are real signed Solana transactions whose first signature must be the
 * tx_ref; a replacement is accepted only with proof that the recorded blockhash expired; deposits
 * are keyed by (CAIP-2 chain, signature, instruction index) and credited once at finality.
 * No chain here: the adapter's side is driven by the test (the chain port is tested against
 * LiteSVM in tests/rails/solana-chain.test.ts).
 */
import { Code } from "@connectrpc/connect";
import {
  address,
  appendTransactionMessageInstructions,
  createTransactionMessage,
  generateKeyPair,
  generateKeyPairSigner,
  getAddressFromPublicKey,
  getBase58Decoder,
  getBase64Encoder,
  getBase64EncodedWireTransaction,
  getSignatureFromTransaction,
  getUtf8Encoder,
  pipe,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signBytes,
  signTransactionMessageWithSigners,
  type Blockhash,
  type KeyPairSigner,
} from "@solana/kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { DepositState, OwnershipPurpose, PayoutState } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { railAccountId } from "../../src/domain/accounts.js";
import { idToHex } from "../../src/domain/ids.js";
import { railFeesAccountId } from "../../src/domain/settlement/ids.js";
import { expectInvalid, expectStatus } from "../accounts/errors.js";
import { expectedFee, newAccount, startSettlementHarness, type SettlementHarness } from "./harness.js";

const CHAIN = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1"; // devnet's CAIP-2 id
const RENT_FEE = 400_000n;
const AUTHOR = "author-grace"; // the researcher masque pays author-grace
const b58 = getBase58Decoder();
let h: SettlementHarness;
let hot: KeyPairSigner;

async function wallet() {
  const keys = await generateKeyPair();
  const addr = await getAddressFromPublicKey(keys.publicKey);
  return { address: addr as string, sign: async (text: string) => b58.decode(await signBytes(keys.privateKey, getUtf8Encoder().encode(text))) };
}

/** A real signed Solana transaction (a memo naming the payout) with a given blockhash lifetime. */
async function signedTx(payout_id: string, last_valid_block_height: bigint, seed: number) {
  const blockhash = b58.decode(new Uint8Array(32).fill(seed)) as Blockhash;
  const tx = await pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(hot, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash, lastValidBlockHeight: last_valid_block_height }, m),
    (m) => appendTransactionMessageInstructions([{ programAddress: address("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"), data: getUtf8Encoder().encode(`masques:payout:${payout_id}`) }], m),
    (m) => signTransactionMessageWithSigners(m),
  );
  return { bytes: Uint8Array.from(getBase64Encoder().encode(getBase64EncodedWireTransaction(tx))), signature: getSignatureFromTransaction(tx) as string };
}

async function proveDestination(author: string, w: Awaited<ReturnType<typeof wallet>>) {
  const s = await h.settlement("author", author);
  const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.PAYOUT_DESTINATION, rail: Rail.SOLANA, address: w.address });
  expect(challenge!.message).toContain("Cluster: devnet");
  return s.registerPayoutDestination({ rail: Rail.SOLANA, address: w.address, proof: { challengeId: challenge!.challengeId, signature: await w.sign(challenge!.message) } });
}

async function credits(id: bigint) {
  const admin = await h.d.as("admin", "ops");
  return (await admin.accounts.getAccount({ account: { ref: { case: "accountId", value: idToHex(id) } } })).account!.balance!.creditsPostedMicro;
}

beforeAll(async () => {
  h = await startSettlementHarness({
    SETTLEMENT_SOLANA_CHAIN_ID: CHAIN,
    SETTLEMENT_SOLANA_CLUSTER: "devnet",
    SETTLEMENT_SOLANA_FINALITY_DEPTH: "32",
    PAYOUT_SOLANA_ACCOUNT_RENT_FEE_MICRO: String(RENT_FEE),
  });
  hot = await generateKeyPairSigner();
  await h.earn("sol-payer", 4); // 4 x 500,000 micro-USD charged, 85% to AUTHOR
}, 180_000);
afterAll(async () => {
  await h?.stop();
});

describe("Solana destinations and deposit sources", () => {
  it("an ed25519 signature over the challenge proves the address; another key's does not; EVM addresses are refused", async () => {
    const s = await h.settlement("author", "sol-eve");
    const victim = await wallet();
    const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.PAYOUT_DESTINATION, rail: Rail.SOLANA, address: victim.address });
    const forged = await (await wallet()).sign(challenge!.message);
    await expectStatus(s.registerPayoutDestination({ rail: Rail.SOLANA, address: victim.address, proof: { challengeId: challenge!.challengeId, signature: forged } }), Code.PermissionDenied, "OWNERSHIP_PROOF_INVALID");
    await expectInvalid(s.createDestinationChallenge({ purpose: OwnershipPurpose.PAYOUT_DESTINATION, rail: Rail.SOLANA, address: newAccount().address }), ["address"]);
    const ok = await s.registerPayoutDestination({ rail: Rail.SOLANA, address: victim.address, proof: { challengeId: challenge!.challengeId, signature: await victim.sign(challenge!.message) } });
    expect(ok.destination).toMatchObject({ rail: Rail.SOLANA, address: victim.address });
  });
});

describe("Solana payouts", () => {
  it("first payout to a destination quotes its token account rent; posted only when the payout created the account; replacement only after blockhash expiry", async () => {
    const dest = await wallet();
    await proveDestination(AUTHOR, dest);
    const a = await h.settlement("author", AUTHOR);
    const rail = await h.settlement("rail", "solana");
    const before = await h.earnings(AUTHOR);
    const fees0 = await credits(railFeesAccountId("solana"));
    const out0 = await credits(railAccountId("rail_outbound", "solana"));

    const fees = (await a.listPayoutFees({})).rails;
    expect(fees.map((f) => [f.rail, f.accountRentFeeMicro])).toEqual([[Rail.BASE, 0n], [Rail.SOLANA, RENT_FEE]]);
    const q = (await a.requestPayout({ rail: Rail.SOLANA, amount: { case: "amountMicro", value: 800_000n }, idempotencyKey: "sol-1" })).payout!;
    const fee = expectedFee(800_000n) + RENT_FEE;
    expect(q.quote).toMatchObject({ amountMicro: 800_000n, feeMicro: fee, netMicro: 800_000n - fee, accountRentFeeMicro: RENT_FEE });
    await a.confirmPayout({ payoutId: q.payoutId });
    const claimed = (await rail.claimPayouts({ rail: Rail.SOLANA, maxPayouts: 10 })).payouts.map((c) => c.payout!.payoutId);
    expect(claimed).toContain(q.payoutId);

    const first = await signedTx(q.payoutId, 1_000n, 1);
    await expectInvalid(rail.recordSignedTransaction({ payoutId: q.payoutId, signedTransaction: first.bytes, txRef: (await signedTx(q.payoutId, 1_000n, 2)).signature, replayGuard: 1_000n }), ["tx_ref"]);
    expect((await rail.recordSignedTransaction({ payoutId: q.payoutId, signedTransaction: first.bytes, txRef: first.signature, replayGuard: 1_000n })).payout!.state).toBe(PayoutState.SUBMITTED);
    // A re-sign while the recorded blockhash may still land is refused; after expiry it is accepted.
    const second = await signedTx(q.payoutId, 1_200n, 3);
    await expectStatus(rail.recordSignedTransaction({ payoutId: q.payoutId, signedTransaction: second.bytes, txRef: second.signature, replayGuard: 1_200n }), Code.FailedPrecondition, "SIGNED_TRANSACTION_EXISTS");
    await expectStatus(
      rail.recordSignedTransaction({ payoutId: q.payoutId, signedTransaction: second.bytes, txRef: second.signature, replayGuard: 1_200n, replacesTxRef: first.signature, observedBlockHeight: 1_000n }),
      Code.FailedPrecondition,
      "REPLACEMENT_NOT_PROVEN",
    );
    const replaced = await rail.recordSignedTransaction({ payoutId: q.payoutId, signedTransaction: second.bytes, txRef: second.signature, replayGuard: 1_200n, replacesTxRef: first.signature, observedBlockHeight: 1_001n });
    expect(replaced.payout).toMatchObject({ state: PayoutState.SUBMITTED, txRef: second.signature });
    // The replaced transaction can no longer be completed; below finality nothing is posted.
    await expectInvalid(rail.completePayout({ payoutId: q.payoutId, txRef: first.signature, confirmations: 32 }), ["tx_ref"]);
    await expectInvalid(rail.completePayout({ payoutId: q.payoutId, txRef: second.signature, confirmations: 31, accountCreated: true }), ["confirmations"]);
    const done = await rail.completePayout({ payoutId: q.payoutId, txRef: second.signature, confirmations: 32, accountCreated: true, networkFeeNative: 2_044_280n });
    expect(done.payout!.state).toBe(PayoutState.CONFIRMED);
    expect(await credits(railFeesAccountId("solana"))).toBe(fees0 + fee);
    expect(await credits(railAccountId("rail_outbound", "solana"))).toBe(out0 + 800_000n - fee);
    expect((await h.earnings(AUTHOR)).posted).toBe(before.posted - 800_000n);

    // Paid once: the next quote to that destination carries no rent.
    const q2 = (await a.requestPayout({ rail: Rail.SOLANA, amount: { case: "amountMicro", value: 200_000n }, idempotencyKey: "sol-2" })).payout!;
    expect(q2.quote).toMatchObject({ feeMicro: expectedFee(200_000n), accountRentFeeMicro: 0n });
    await a.cancelPayout({ payoutId: q2.payoutId });
  });

  it("a payout whose destination account already existed returns the quoted rent to the author", async () => {
    // A new destination (a change: it cools for an hour, then pays).
    const dest = await wallet();
    await proveDestination(AUTHOR, dest);
    h.d.advance(3601);
    const a = await h.settlement("author", AUTHOR);
    const rail = await h.settlement("rail", "solana");
    const before = await h.earnings(AUTHOR);
    const fees0 = await credits(railFeesAccountId("solana"));
    const q = (await a.requestPayout({ rail: Rail.SOLANA, amount: { case: "amountMicro", value: 600_000n }, idempotencyKey: "sol-3" })).payout!;
    expect(q.quote!.accountRentFeeMicro).toBe(RENT_FEE);
    await a.confirmPayout({ payoutId: q.payoutId });
    await rail.claimPayouts({ rail: Rail.SOLANA, maxPayouts: 10 });
    const tx = await signedTx(q.payoutId, 5_000n, 9);
    await rail.recordSignedTransaction({ payoutId: q.payoutId, signedTransaction: tx.bytes, txRef: tx.signature, replayGuard: 5_000n });
    await rail.completePayout({ payoutId: q.payoutId, txRef: tx.signature, confirmations: 40, accountCreated: false });
    expect(await credits(railFeesAccountId("solana"))).toBe(fees0 + expectedFee(600_000n));
    expect((await h.earnings(AUTHOR)).posted).toBe(before.posted - 600_000n + RENT_FEE);
  });
});

describe("Solana deposits", () => {
  it("keyed by (chain, signature, instruction index): credited once at finality to the agent that proved the source", async () => {
    await h.d.fundedAgent("sol-agent", 1n);
    const src = await wallet();
    const s = await h.settlement("agent", "sol-agent");
    const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.DEPOSIT_SOURCE, rail: Rail.SOLANA, address: src.address });
    await s.bindDepositSource({ rail: Rail.SOLANA, address: src.address, proof: { challengeId: challenge!.challengeId, signature: await src.sign(challenge!.message) } });
    const rail = await h.settlement("rail", "solana");
    const sig = (await signedTx("deposit", 1n, 7)).signature;
    const report = (confirmations: number, extra: Record<string, unknown> = {}) => ({
      chainId: CHAIN, txRef: sig, eventIndex: 2, fromAddress: src.address, amountMicro: 3_000_000n, blockNumber: 555n, blockHash: b58.decode(new Uint8Array(32).fill(5)), confirmations, ...extra,
    });
    const before = await h.d.available("sol-agent");
    expect((await rail.reportDeposit(report(10))).deposit).toMatchObject({ state: DepositState.CONFIRMING, finalityDepth: 32, chainId: CHAIN, txRef: sig });
    expect(await h.d.available("sol-agent")).toBe(before);
    const done = await rail.reportDeposit(report(32));
    expect(done.deposit).toMatchObject({ state: DepositState.CREDITED, agentId: "sol-agent" });
    expect((await rail.reportDeposit(report(40))).transfer!.transferId).toBe(done.transfer!.transferId);
    // Another instruction of the same transaction is another deposit; the signature is case-sensitive.
    expect((await rail.reportDeposit(report(1, { eventIndex: 3 }))).deposit!.depositId).not.toBe(done.deposit!.depositId);
    await expectStatus(rail.reportDeposit(report(32, { chainId: "eip155:1" })), Code.InvalidArgument, "INVALID_ARGUMENT");
    await expectStatus(rail.reportDeposit(report(32, { chainId: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp" })), Code.FailedPrecondition, "WRONG_CHAIN");
    await expectStatus(rail.reportDeposit(report(32, { amountMicro: 4_000_000n })), Code.FailedPrecondition, "DEPOSIT_FACTS_MISMATCH");
    await expectInvalid(rail.reportDeposit(report(32, { fromAddress: newAccount().address })), ["from_address"]);
    await expectStatus((await h.settlement("rail", "base")).reportDeposit(report(32)), Code.InvalidArgument, "INVALID_ARGUMENT");
    expect(await h.d.available("sol-agent")).toBe(before + 3_000_000n);
  });
});
