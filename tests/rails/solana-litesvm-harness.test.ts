/**
 * The test facade itself (tests/support/litesvm-rpc.ts): LiteSVM behind JSON-RPC with commitment
 * SIMULATED from a slot counter that the test advances, blockhashes valid for 150 blocks, and
 * validator-like refusals. The Solana rail tests rely on these rules, so they are pinned here.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  appendTransactionMessageInstructions,
  createSolanaRpc,
  createTransactionMessage,
  generateKeyPairSigner,
  getBase64EncodedWireTransaction,
  getSignatureFromTransaction,
  lamports,
  pipe,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signTransactionMessageWithSigners,
  type KeyPairSigner,
  type Rpc,
  type SolanaRpcApi,
} from "@solana/kit";
import { getTransferSolInstruction } from "@solana-program/system";
import { startLiteSvmRpc, type LiteSvmRpc } from "../support/litesvm-rpc.js";

let node: LiteSvmRpc;
let rpc: Rpc<SolanaRpcApi>;
let payer: KeyPairSigner;

beforeAll(async () => {
  node = await startLiteSvmRpc({ finalize_depth: 4 });
  rpc = createSolanaRpc(node.url);
  payer = await generateKeyPairSigner();
  node.svm.airdrop(payer.address, lamports(1_000_000_000n));
});
afterAll(async () => {
  await node?.close();
});

/** The refusal's whole text (kit puts the transaction error in the cause). */
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    const parts: string[] = [];
    for (let c: unknown = e; c instanceof Error; c = c.cause) parts.push(c.message);
    return parts.join(" | ");
  }
  return "(not refused)";
}

async function signed(amount: bigint) {
  const to = await generateKeyPairSigner();
  const { value } = await rpc.getLatestBlockhash().send();
  const tx = await pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(payer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash(value, m),
    (m) => appendTransactionMessageInstructions([getTransferSolInstruction({ source: payer, destination: to.address, amount })], m),
    (m) => signTransactionMessageWithSigners(m),
  );
  return { wire: getBase64EncodedWireTransaction(tx), sig: getSignatureFromTransaction(tx), to: to.address, lastValid: value.lastValidBlockHeight };
}

describe("LiteSVM JSON-RPC facade", () => {
  test("commitment follows the test's slot counter: processed → confirmed (+1) → finalized (+depth)", async () => {
    const t = await signed(1_000_000n);
    await rpc.sendTransaction(t.wire, { encoding: "base64" }).send();
    const level = async () => (await rpc.getSignatureStatuses([t.sig]).send()).value[0]?.confirmationStatus;
    expect(await level()).toBe("processed");
    expect(await rpc.getTransaction(t.sig, { commitment: "confirmed", encoding: "json", maxSupportedTransactionVersion: 0 }).send()).toBeNull();
    node.advance(1);
    expect(await level()).toBe("confirmed");
    node.advance(2);
    expect(await level()).toBe("confirmed");
    node.advance(1);
    expect(await level()).toBe("finalized");
    expect((await rpc.getBalance(t.to).send()).value).toBe(1_000_000n);
    expect(await rpc.getBlockHeight({ commitment: "finalized" }).send()).toBe(node.slot() - 4n);
  });

  test("a blockhash is valid for 150 blocks; after that the node refuses the transaction", async () => {
    const t = await signed(2_000_000n);
    expect(t.lastValid).toBe(node.slot() + 150n);
    node.advance(150);
    const { value: valid } = await rpc.getLatestBlockhash().send();
    expect(valid.blockhash).not.toBe(undefined);
    node.advance(1);
    expect(await refusal(rpc.sendTransaction(t.wire, { encoding: "base64" }).send())).toMatch(/Blockhash not found/i);
    expect((await rpc.getSignatureStatuses([t.sig]).send()).value[0]).toBeNull();
  });

  test("the same signature twice is refused as already processed; a failing tx is not recorded unless preflight is skipped", async () => {
    const t = await signed(3_000_000n);
    await rpc.sendTransaction(t.wire, { encoding: "base64" }).send();
    expect(await refusal(rpc.sendTransaction(t.wire, { encoding: "base64" }).send())).toMatch(/already been processed/i);
    const before = node.landedCount();
    const tooMuch = await signed(10n ** 12n);
    await expect(rpc.sendTransaction(tooMuch.wire, { encoding: "base64" }).send()).rejects.toThrow();
    expect(node.landedCount()).toBe(before);
    await rpc.sendTransaction(tooMuch.wire, { encoding: "base64", skipPreflight: true }).send();
    expect((await rpc.getSignatureStatuses([tooMuch.sig]).send()).value[0]?.err).not.toBeNull();
  });

  test("close() stops the server: a closed facade refuses connections", async () => {
    const other = await startLiteSvmRpc();
    const r = createSolanaRpc(other.url);
    expect(await r.getSlot().send()).toBeGreaterThanOrEqual(0n);
    await other.close();
    await expect(r.getSlot().send()).rejects.toThrow();
  });
});
