/**
 * `masques-ledger reconcile --rails` for Solana (issue 14) on LiteSVM (the real SPL Token program
 * in process) behind the test JSON-RPC facade (tests/support/litesvm-rpc.ts; commitment is
 * modelled by the facade's explicit slot advance, not by LiteSVM), against the real daemon with
 * the Solana rail enabled: hot wallet USDC + deposit token account USDC, read through the Solana
 * chain port, against the ledger's Solana rail accounts. A deposit is drift until the adapter's
 * verified report credits it; a transfer out the ledger never saw is drift with exit 1.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  appendTransactionMessageInstructions,
  createKeyPairSignerFromBytes,
  createSolanaRpc,
  createTransactionMessage,
  generateKeyPairSigner,
  getBase58Decoder,
  getBase64EncodedWireTransaction,
  getSignatureFromTransaction,
  getUtf8Encoder,
  lamports,
  pipe,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signBytes,
  signTransactionMessageWithSigners,
  type Address,
  type Instruction,
  type KeyPairSigner,
  type Rpc,
  type Signature,
  type SolanaRpcApi,
} from "@solana/kit";
import { getCreateAccountInstruction } from "@solana-program/system";
import {
  TOKEN_PROGRAM_ADDRESS,
  findAssociatedTokenPda,
  getCreateAssociatedTokenIdempotentInstructionAsync,
  getInitializeMint2Instruction,
  getMintSize,
  getMintToCheckedInstruction,
  getTransferCheckedInstruction,
} from "@solana-program/token";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { DepositState, OwnershipPurpose } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { reconcileRails } from "../../src/cli/commands/reconcile-rails.js";
import { runCli } from "../support/daemon.js";
import { startLiteSvmRpc, type LiteSvmRpc } from "../support/litesvm-rpc.js";
import { startSettlementHarness, type SettlementHarness } from "./harness.js";

const CHAIN = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const FLOAT = 500_000_000n;
const SOL = 1_000_000_000n;
let node: LiteSvmRpc;
let rpc: Rpc<SolanaRpcApi>;
let h: SettlementHarness;
let dir: string;
let authority: KeyPairSigner;
let agent: KeyPairSigner;
let hot: KeyPairSigner;
let usdc: Address;
let depositAta: Address;
let env: Record<string, string>;
let endpoint: string;
let token: string;

function newKeypairBytes(): Uint8Array {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return Uint8Array.from([...privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32), ...publicKey.export({ format: "der", type: "spki" }).subarray(-32)]);
}
const ata = async (owner: Address) => (await findAssociatedTokenPda({ owner, mint: usdc, tokenProgram: TOKEN_PROGRAM_ADDRESS }))[0];

async function send(payer: KeyPairSigner, ixs: Instruction[]): Promise<Signature> {
  const { value } = await rpc.getLatestBlockhash().send();
  const tx = await pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(payer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash(value, m),
    (m) => appendTransactionMessageInstructions(ixs, m),
    (m) => signTransactionMessageWithSigners(m),
  );
  await rpc.sendTransaction(getBase64EncodedWireTransaction(tx), { encoding: "base64" }).send();
  return getSignatureFromTransaction(tx);
}

async function fund(owner: Address, amount: bigint): Promise<Address> {
  const account = await ata(owner);
  await send(authority, [
    await getCreateAssociatedTokenIdempotentInstructionAsync({ payer: authority, owner, mint: usdc }),
    ...(amount > 0n ? [getMintToCheckedInstruction({ mint: usdc, token: account, mintAuthority: authority, amount, decimals: 6 })] : []),
  ]);
  return account;
}

async function transfer(from: KeyPairSigner, to: Address, amount: bigint): Promise<Signature> {
  return send(from, [getTransferCheckedInstruction({ source: await ata(from.address), mint: usdc, destination: to, authority: from, amount, decimals: 6 })]);
}

async function reconcile() {
  const [r] = await reconcileRails({ env, endpoint, token });
  return r!;
}

beforeAll(async () => {
  node = await startLiteSvmRpc({ finalize_depth: 32 });
  rpc = createSolanaRpc(node.url);
  dir = await mkdtemp(path.join(tmpdir(), "reconcile-solana-"));
  const depositOwner = await generateKeyPairSigner();
  [authority, agent] = await Promise.all([generateKeyPairSigner(), generateKeyPairSigner()]);
  node.svm.airdrop(authority.address, lamports(100n * SOL));
  node.svm.airdrop(agent.address, lamports(10n * SOL));
  const mint = await generateKeyPairSigner();
  const space = BigInt(getMintSize());
  await send(authority, [
    getCreateAccountInstruction({ payer: authority, newAccount: mint, lamports: await rpc.getMinimumBalanceForRentExemption(space).send(), space, programAddress: TOKEN_PROGRAM_ADDRESS }),
    getInitializeMint2Instruction({ mint: mint.address, decimals: 6, mintAuthority: authority.address }),
  ]);
  usdc = mint.address;
  const hotBytes = newKeypairBytes();
  hot = await createKeyPairSignerFromBytes(hotBytes);
  node.svm.airdrop(hot.address, lamports(10n * SOL));
  await fund(hot.address, FLOAT);
  await fund(agent.address, 50_000_000n);
  depositAta = await fund(depositOwner.address, 0n);
  await writeFile(path.join(dir, "hot.json"), JSON.stringify([...hotBytes]), { mode: 0o600 });
  node.advance(1);
  env = {
    SOLANA_RPC_URL: node.url,
    SOLANA_USDC_MINT: usdc,
    SOLANA_HOT_WALLET_KEYPAIR_FILE: path.join(dir, "hot.json"),
    SOLANA_DEPOSIT_OWNER: depositOwner.address,
    SOLANA_PAYOUT_COMMITMENT: "confirmed",
    SOLANA_DEPOSIT_COMMITMENT: "confirmed",
    RECONCILE_SOLANA_FLOAT_MICRO: String(FLOAT),
  };
  h = await startSettlementHarness({ SETTLEMENT_SOLANA_CHAIN_ID: CHAIN, SETTLEMENT_SOLANA_CLUSTER: "localnet", SETTLEMENT_SOLANA_FINALITY_DEPTH: "32" });
  endpoint = `http://${h.d.daemon.grpcAddr}`;
  token = await h.d.token("admin", "ops");
}, 240_000);
afterAll(async () => {
  await h?.stop();
  await node?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("reconcile --rails (Solana on LiteSVM)", () => {
  it("balanced, then a deposit is drift until credited, then an unrecorded transfer out is drift (exit 1)", async () => {
    expect(await reconcile()).toMatchObject({ rail: "solana", ok: true, chain_micro: FLOAT, drift_micro: 0n });

    // The agent proves its wallet (ed25519) and deposits 7 USDC into the deposit token account.
    await h.d.fundedAgent("sol-rec", 1n);
    const s = await h.settlement("agent", "sol-rec");
    const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.DEPOSIT_SOURCE, rail: Rail.SOLANA, address: agent.address });
    const signature = getBase58Decoder().decode(await signBytes(agent.keyPair.privateKey, getUtf8Encoder().encode(challenge!.message)));
    await s.bindDepositSource({ rail: Rail.SOLANA, address: agent.address, proof: { challengeId: challenge!.challengeId, signature } });
    const sig = await transfer(agent, depositAta, 7_000_000n);
    node.advance(2);
    expect(await reconcile()).toMatchObject({ ok: false, drift_micro: 7_000_000n, chain: { deposit_usdc_micro: 7_000_000n } });
    node.advance(32);
    const rail = await h.settlement("rail", "solana");
    const credited = await rail.reportDeposit({ chainId: CHAIN, txRef: sig, eventIndex: 0, fromAddress: agent.address, amountMicro: 7_000_000n, blockNumber: node.slot(), blockHash: "", confirmations: 32 });
    expect(credited.deposit!.state).toBe(DepositState.CREDITED);
    expect(await reconcile()).toMatchObject({ ok: true, drift_micro: 0n, chain_micro: FLOAT + 7_000_000n, ledger: { deposits_micro: 7_000_000n } });

    // USDC leaves the hot wallet without a payout in the ledger.
    const stranger = await generateKeyPairSigner();
    await transfer(hot, await fund(stranger.address, 0n), 1_000_000n);
    node.advance(2);
    expect(await reconcile()).toMatchObject({ ok: false, drift_micro: -1_000_000n });
    const cli = await runCli(["reconcile", "--rails", "--endpoint", endpoint, "--token", token], env, 120_000);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain("[DRIFT] solana:");
  }, 240_000);
});
