/**
 * The Solana rail's chain port against a REAL SVM: LiteSVM running the real SPL Token,
 * Associated Token Account and Memo programs, behind the JSON-RPC facade of
 * tests/support/litesvm-rpc.ts, driven only through @solana/kit's RPC client. No chain mocks.
 *
 * Commitment is SIMULATED by the facade (LiteSVM has no cluster): a transaction is `processed` in
 * the slot it lands in, `confirmed` one slot later and `finalized` FINALIZE slots later; the test
 * moves slots explicitly with `node.advance(n)`, so nothing here depends on wall-clock timing.
 * A blockhash is valid for 150 blocks after it is issued, as on mainnet.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  appendTransactionMessageInstructions,
  createKeyPairSignerFromBytes,
  createSolanaRpc,
  createTransactionMessage,
  generateKeyPairSigner,
  getBase58Decoder,
  getBase64EncodedWireTransaction,
  getSignatureFromTransaction,
  lamports,
  pipe,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
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
  fetchMaybeToken,
  findAssociatedTokenPda,
  getCreateAssociatedTokenIdempotentInstructionAsync,
  getInitializeMint2Instruction,
  getMintSize,
  getMintToCheckedInstruction,
  getRecoverNestedAssociatedTokenInstructionAsync,
  getTokenSize,
  getTransferCheckedInstruction,
  getTransferInstruction,
} from "@solana-program/token";
import { SolanaChainStartupError, connectSolanaChain, type SignedPayout, type SolanaChain } from "../../src/rails/solana/chain.js";
import { loadHotWalletKeypair, loadSolanaRailConfig, type SolanaRailConfig } from "../../src/rails/solana/config.js";
import { startLiteSvmRpc, type LiteSvmRpc } from "../support/litesvm-rpc.js";

const FINALIZE = 32;
const SOL = 1_000_000_000n;

let node: LiteSvmRpc;
let rpc: Rpc<SolanaRpcApi>;
let dir: string;
let authority: KeyPairSigner; // mint authority of both test mints, and test fee payer
let usdc: Address;
let otherMint: Address;
let agent: KeyPairSigner; // sends deposits
let depositOwner: KeyPairSigner;
let depositAta: Address;
let hotBytes: Uint8Array;
let hot: KeyPairSigner;
let port: SolanaChain;

/** A fresh Solana keypair in the CLI's 64-byte form (secret ‖ public). */
function newKeypairBytes(): Uint8Array {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const secret = privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32);
  const pub = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  return Uint8Array.from([...secret, ...pub]);
}

async function ata(owner: Address, mint: Address = usdc): Promise<Address> {
  return (await findAssociatedTokenPda({ owner, mint, tokenProgram: TOKEN_PROGRAM_ADDRESS }))[0];
}

/** Build and sign a transaction with the latest blockhash (test side; the port builds its own). */
async function build(payer: KeyPairSigner, ixs: Instruction[]) {
  const { value } = await rpc.getLatestBlockhash().send();
  return pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(payer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash(value, m),
    (m) => appendTransactionMessageInstructions(ixs, m),
    (m) => signTransactionMessageWithSigners(m),
  );
}

async function send(payer: KeyPairSigner, ixs: Instruction[], opts: { skipPreflight?: boolean } = {}): Promise<Signature> {
  const tx = await build(payer, ixs);
  await rpc.sendTransaction(getBase64EncodedWireTransaction(tx), { encoding: "base64", skipPreflight: opts.skipPreflight ?? false }).send();
  return getSignatureFromTransaction(tx);
}

async function createMint(decimals: number): Promise<Address> {
  const mint = await generateKeyPairSigner();
  const space = BigInt(getMintSize());
  const rent = await rpc.getMinimumBalanceForRentExemption(space).send();
  await send(authority, [
    getCreateAccountInstruction({ payer: authority, newAccount: mint, lamports: rent, space, programAddress: TOKEN_PROGRAM_ADDRESS }),
    getInitializeMint2Instruction({ mint: mint.address, decimals, mintAuthority: authority.address }),
  ]);
  return mint.address;
}

/** Create `owner`'s ATA of `mint` and mint `amount` into it. */
async function fund(owner: Address, amount: bigint, mint: Address = usdc, decimals = 6): Promise<Address> {
  const account = await ata(owner, mint);
  await send(authority, [
    await getCreateAssociatedTokenIdempotentInstructionAsync({ payer: authority, owner, mint }),
    ...(amount > 0n ? [getMintToCheckedInstruction({ mint, token: account, mintAuthority: authority, amount, decimals })] : []),
  ]);
  return account;
}

async function tokenBalance(account: Address): Promise<bigint> {
  const acc = await fetchMaybeToken(rpc, account);
  return acc.exists ? acc.data.amount : 0n;
}

function envFor(over: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    SOLANA_RPC_URL: node.url,
    SOLANA_CHAIN_ID: "solana:4uhcVJyU9pJkvQyS88uRDiswHXSCkY3z",
    SOLANA_USDC_MINT: usdc,
    SOLANA_HOT_WALLET_KEYPAIR_FILE: path.join(dir, "hot.json"),
    SOLANA_DEPOSIT_OWNER: depositOwner.address,
    SOLANA_PAYOUT_COMMITMENT: "finalized",
    SOLANA_DEPOSIT_COMMITMENT: "finalized",
    SOLANA_POLL_INTERVAL_MS: "50",
    ...over,
  };
}

/** A port with its own hot wallet (fresh keypair file), for the pre-flight tests. */
async function portWithHotWallet(sol_lamports: bigint, usdc_micro: bigint): Promise<{ port: SolanaChain; signer: KeyPairSigner }> {
  const bytes = newKeypairBytes();
  const signer = await createKeyPairSignerFromBytes(bytes);
  const file = path.join(dir, `hot-${signer.address}.json`);
  await writeFile(file, JSON.stringify([...bytes]), { mode: 0o600 });
  if (sol_lamports > 0n) node.svm.airdrop(signer.address, lamports(sol_lamports));
  await fund(signer.address, usdc_micro);
  const config = loadSolanaRailConfig(envFor({ SOLANA_HOT_WALLET_KEYPAIR_FILE: file }));
  return { port: await connectSolanaChain(config, loadHotWalletKeypair(file)), signer };
}

beforeAll(async () => {
  node = await startLiteSvmRpc({ finalize_depth: FINALIZE });
  rpc = createSolanaRpc(node.url);
  dir = await mkdtemp(path.join(tmpdir(), "solana-rail-"));
  [authority, agent, depositOwner] = await Promise.all([generateKeyPairSigner(), generateKeyPairSigner(), generateKeyPairSigner()]);
  node.svm.airdrop(authority.address, lamports(100n * SOL)); // test setup funds accounts straight on the SVM
  node.svm.airdrop(agent.address, lamports(10n * SOL));
  node.svm.airdrop(depositOwner.address, lamports(10n * SOL));
  usdc = await createMint(6);
  otherMint = await createMint(6);
  hotBytes = newKeypairBytes();
  hot = await createKeyPairSignerFromBytes(hotBytes);
  node.svm.airdrop(hot.address, lamports(10n * SOL));
  await fund(hot.address, 500_000_000n); // 500 USDC
  await fund(agent.address, 1_000_000_000n);
  await fund(agent.address, 1_000_000_000n, otherMint);
  depositAta = await fund(depositOwner.address, 0n);
  await fund(depositOwner.address, 0n, otherMint);
  await writeFile(path.join(dir, "hot.json"), JSON.stringify([...hotBytes]), { mode: 0o600 });
  const config: SolanaRailConfig = loadSolanaRailConfig(envFor());
  port = await connectSolanaChain(config, loadHotWalletKeypair(config.hot_wallet_keypair_file));
  node.advance(1);
});

afterAll(async () => {
  await node?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("connect", () => {
  test("resolves the deposit owner's USDC ATA and the hot wallet's ATA", () => {
    expect(port.deposit_token_account).toBe(depositAta);
    expect(port.hot_wallet).toBe(hot.address);
  });

  test("refuses a mint that does not have 6 decimals, and a deposit account of another mint", async () => {
    const nineDecimals = await createMint(9);
    await expect(connectSolanaChain(loadSolanaRailConfig(envFor({ SOLANA_USDC_MINT: nineDecimals })), hotBytes)).rejects.toThrow(
      /has 9 decimals; .* must have 6/,
    );
    const otherAta = await ata(depositOwner.address, otherMint);
    const err = await connectSolanaChain(loadSolanaRailConfig(envFor({ SOLANA_DEPOSIT_TOKEN_ACCOUNT: otherAta })), hotBytes).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SolanaChainStartupError);
    expect((err as Error).message).toContain(`holds mint ${otherMint}, not SOLANA_USDC_MINT`);
  });
});

describe("payouts", () => {
  test("signed → recorded → sent twice → one transfer, ATA created once, final only at the payout commitment", async () => {
    const author = (await generateKeyPairSigner()).address;
    const hotBefore = await tokenBalance(port.hot_token_account);
    const landedBefore = node.landedCount();
    const signed = await port.signPayout({ payout_id: "po_1", destination_owner: author, amount_micro: 12_340_000n });
    if (!signed.ok) throw new Error(signed.reason);
    const p = signed.signed;
    expect(p.creates_destination_account).toBe(true);
    expect(p.ata_rent_lamports).toBe(BigInt(await rpc.getMinimumBalanceForRentExemption(BigInt(getTokenSize())).send()));
    expect(p.destination).toBe(await ata(author));
    // "record" it durably before sending: the recorded bytes are what gets sent, now and after a crash
    const recordFile = path.join(dir, `${p.signature}.json`);
    await writeFile(recordFile, JSON.stringify({ signature: p.signature, wire: p.wire_transaction }));
    expect(await port.getSignatureFate(p)).toEqual({ kind: "unknown", signature: p.signature, blockhash_expired: false });

    expect(await port.sendPayout(p)).toEqual({ ok: true, signature: p.signature, outcome: "accepted" });
    expect(await port.sendPayout(p)).toEqual({ ok: true, signature: p.signature, outcome: "already_processed" });
    // the adapter "restarts": a new port reads the record back and sends the recorded bytes again
    const restarted = await connectSolanaChain(loadSolanaRailConfig(envFor()), hotBytes);
    const record = JSON.parse(await readFile(recordFile, "utf8")) as { signature: Signature; wire: SignedPayout["wire_transaction"] };
    expect(await restarted.getSignatureFate({ signature: record.signature, last_valid_block_height: p.last_valid_block_height })).toMatchObject({ kind: "landed" });
    expect(await restarted.sendPayout({ signature: record.signature, wire_transaction: record.wire })).toMatchObject({ ok: true, outcome: "already_processed" });
    expect(node.landedCount()).toBe(landedBefore + 1);
    expect(await tokenBalance(p.destination)).toBe(12_340_000n);
    expect(await tokenBalance(port.hot_token_account)).toBe(hotBefore - 12_340_000n);

    let fate = await port.getSignatureFate(p);
    expect(fate).toMatchObject({ kind: "landed", status: "success", commitment: "processed", final: false });
    node.advance(1);
    expect(await port.getSignatureFate(p)).toMatchObject({ kind: "landed", commitment: "confirmed", final: false });
    node.advance(FINALIZE - 1);
    fate = await port.getSignatureFate(p);
    expect(fate).toMatchObject({ kind: "landed", status: "success", commitment: "finalized", final: true });

    // second payout to the same author: the ATA exists now, so no create and no rent
    const again = await port.signPayout({ payout_id: "po_2", destination_owner: author, amount_micro: 1_000_000n });
    if (!again.ok) throw new Error(again.reason);
    expect(again.signed.creates_destination_account).toBe(false);
    expect(again.signed.ata_rent_lamports).toBe(0n);
    expect((await port.sendPayout(again.signed)).ok).toBe(true);
    expect(await tokenBalance(p.destination)).toBe(13_340_000n);
  });

  test("two payouts signed while the ATA was missing both create it idempotently: both pay, one account", async () => {
    const author = (await generateKeyPairSigner()).address;
    const a = await port.signPayout({ payout_id: "po_a", destination_owner: author, amount_micro: 2_000_000n });
    const b = await port.signPayout({ payout_id: "po_b", destination_owner: author, amount_micro: 2_000_000n });
    if (!a.ok || !b.ok) throw new Error("refused");
    expect(a.signed.creates_destination_account && b.signed.creates_destination_account).toBe(true);
    expect(a.signed.signature).not.toBe(b.signed.signature); // the memo carries the payout id
    expect((await port.sendPayout(a.signed)).ok).toBe(true);
    expect((await port.sendPayout(b.signed)).ok).toBe(true);
    expect(await tokenBalance(await ata(author))).toBe(4_000_000n);
    const accounts = node.svm.getProgramAccounts(TOKEN_PROGRAM_ADDRESS).filter((acc) => acc.address === a.signed.destination);
    expect(accounts).toHaveLength(1);
  });

  test("a destination ATA whose owner was reassigned is refused (the proven wallet no longer controls it)", async () => {
    const author = await generateKeyPairSigner();
    node.svm.airdrop(author.address, lamports(SOL));
    const authorAta = await fund(author.address, 0n);
    const thief = (await generateKeyPairSigner()).address;
    const { getSetAuthorityInstruction, AuthorityType } = await import("@solana-program/token");
    await send(author, [getSetAuthorityInstruction({ owned: authorAta, owner: author, authorityType: AuthorityType.AccountOwner, newAuthority: thief })]);
    const r = await port.signPayout({ payout_id: "po_t", destination_owner: author.address, amount_micro: 1n });
    expect(r).toMatchObject({ ok: false, kind: "destination_not_owned" });
  });

  test("hot wallet short of USDC: pre-flight refuses with have/need; a payout sent anyway moves nothing", async () => {
    const { port: poor } = await portWithHotWallet(SOL, 5_000_000n);
    const author = (await generateKeyPairSigner()).address;
    expect(await poor.preflightPayout({ destination_owner: author, amount_micro: 5_000_000n })).toMatchObject({ ok: true });
    expect(await poor.preflightPayout({ destination_owner: author, amount_micro: 5_000_001n })).toMatchObject({
      ok: false,
      kind: "insufficient_usdc",
      have_micro: 5_000_000n,
      need_micro: 5_000_001n,
    });
    expect(await poor.preflightPayout({ destination_owner: author, amount_micro: 3_000_000n, reserved_micro: 3_000_000n })).toMatchObject({
      ok: false,
      kind: "insufficient_usdc",
    });
    const landed = node.landedCount();
    const s = await poor.signPayout({ payout_id: "po_short", destination_owner: author, amount_micro: 6_000_000n });
    if (!s.ok) throw new Error(s.reason);
    const sent = await poor.sendPayout(s.signed);
    expect(sent).toMatchObject({ ok: false, kind: "insufficient_funds" });
    expect(node.landedCount()).toBe(landed);
    expect(await poor.getSignatureFate(s.signed)).toMatchObject({ kind: "unknown" });
    expect((await poor.balances()).usdc_micro).toBe(5_000_000n);
  });

  test("hot wallet short of SOL for fee + ATA rent + its own rent-exempt minimum: pre-flight refuses", async () => {
    const rent0 = BigInt(await rpc.getMinimumBalanceForRentExemption(0n).send());
    const ataRent = BigInt(await rpc.getMinimumBalanceForRentExemption(BigInt(getTokenSize())).send());
    const { port: poor, signer } = await portWithHotWallet(rent0 + 5_000n + ataRent - 1n, 5_000_000n);
    const newAuthor = (await generateKeyPairSigner()).address;
    const r = await poor.preflightPayout({ destination_owner: newAuthor, amount_micro: 1_000_000n });
    expect(r).toMatchObject({ ok: false, kind: "insufficient_sol", have_lamports: rent0 + 5_000n + ataRent - 1n, need_lamports: rent0 + 5_000n + ataRent });
    // to an author whose ATA exists, no rent is needed: enough SOL
    const existing = await generateKeyPairSigner();
    await fund(existing.address, 0n);
    expect(await poor.preflightPayout({ destination_owner: existing.address, amount_micro: 1_000_000n })).toMatchObject({ ok: true, ata_rent_lamports: 0n });
    expect((await poor.balances()).address).toBe(signer.address);
  });

  test("hot wallet with no SOL at all: sending is refused and nothing lands", async () => {
    const { port: broke } = await portWithHotWallet(0n, 5_000_000n);
    const author = await generateKeyPairSigner();
    await fund(author.address, 0n);
    expect(await broke.preflightPayout({ destination_owner: author.address, amount_micro: 1n })).toMatchObject({ ok: false, kind: "insufficient_sol", have_lamports: 0n });
    const landed = node.landedCount();
    const s = await broke.signPayout({ payout_id: "po_nosol", destination_owner: author.address, amount_micro: 1n });
    if (!s.ok) throw new Error(s.reason);
    const r = await broke.sendPayout(s.signed);
    expect(r).toMatchObject({ ok: false, kind: "insufficient_funds" });
    expect(node.landedCount()).toBe(landed);
  });

  test("expired blockhash: not re-signed while it can land; once expired, re-signed once and paid once", async () => {
    const author = (await generateKeyPairSigner()).address;
    const s = await port.signPayout({ payout_id: "po_exp", destination_owner: author, amount_micro: 7_000_000n });
    if (!s.ok) throw new Error(s.reason);
    const recorded: SignedPayout = s.signed; // recorded, then the adapter "crashed" before sending
    expect(await port.resignPayout(recorded)).toMatchObject({ ok: false, kind: "still_valid" });

    // 160 blocks later the blockhash is past its last valid height at the tip, so the node refuses
    // the recorded bytes, but the FINALIZED height has not passed it: it is not yet safe to re-sign.
    node.advance(160);
    expect(await port.sendPayout(recorded)).toMatchObject({ ok: false, kind: "blockhash_expired" });
    expect(await port.getSignatureFate(recorded)).toEqual({ kind: "unknown", signature: recorded.signature, blockhash_expired: false });
    expect(await port.resignPayout(recorded)).toMatchObject({ ok: false, kind: "still_valid" });

    node.advance(FINALIZE);
    expect(await port.getSignatureFate(recorded)).toEqual({ kind: "unknown", signature: recorded.signature, blockhash_expired: true });
    const re = await port.resignPayout(recorded);
    if (!re.ok) throw new Error(re.reason);
    expect(re.signed.signature).not.toBe(recorded.signature);
    expect(re.signed.blockhash).not.toBe(recorded.blockhash);
    expect(re.signed).toMatchObject({ payout_id: "po_exp", destination_owner: author, amount_micro: 7_000_000n });
    expect(await port.sendPayout(re.signed)).toMatchObject({ ok: true, outcome: "accepted" });
    // the old bytes can never land now, and the new one is never re-signed again
    expect(await port.sendPayout(recorded)).toMatchObject({ ok: false, kind: "blockhash_expired" });
    expect(await port.sendPayout(re.signed)).toMatchObject({ ok: true, outcome: "already_processed" });
    expect(await port.resignPayout(re.signed)).toMatchObject({ ok: false, kind: "landed" });
    expect(await tokenBalance(await ata(author))).toBe(7_000_000n);
  });

  test("a transaction that landed but failed is reported as landed/failed, not unknown (never re-signed)", async () => {
    const author = (await generateKeyPairSigner()).address;
    const { port: poor } = await portWithHotWallet(SOL, 1_000_000n);
    const s = await poor.signPayout({ payout_id: "po_fail", destination_owner: author, amount_micro: 2_000_000n });
    if (!s.ok) throw new Error(s.reason);
    await rpc.sendTransaction(s.signed.wire_transaction, { encoding: "base64", skipPreflight: true }).send();
    expect(await poor.getSignatureFate(s.signed)).toMatchObject({ kind: "landed", status: "failed" });
    expect(await poor.resignPayout(s.signed)).toMatchObject({ ok: false, kind: "landed" });
  });
});

describe("deposits", () => {
  const agentAta = () => ata(agent.address);
  const depositTransfer = async (amount: bigint) =>
    getTransferCheckedInstruction({ source: await agentAta(), mint: usdc, destination: depositAta, authority: agent, amount, decimals: 6 });

  test("verified only at the required commitment (finalized), with the source owner and the amount", async () => {
    const sig = await send(agent, [await depositTransfer(25_000_000n)]);
    expect(await port.verifyDeposit({ signature: sig, instruction_index: 0 })).toMatchObject({
      ok: false,
      refusal: { kind: "below_commitment", commitment: "processed", required: "finalized" },
    });
    node.advance(1);
    expect(await port.verifyDeposit({ signature: sig, instruction_index: 0 })).toMatchObject({
      ok: false,
      refusal: { kind: "below_commitment", commitment: "confirmed" },
    });
    node.advance(FINALIZE - 2);
    expect(await port.verifyDeposit({ signature: sig, instruction_index: 0 })).toMatchObject({ ok: false, refusal: { kind: "below_commitment" } });
    node.advance(1);
    const v = await port.verifyDeposit({ signature: sig, instruction_index: 0, claimed: { source_owner: agent.address, amount_micro: 25_000_000n } });
    expect(v).toEqual({
      ok: true,
      deposit: {
        signature: sig,
        instruction_index: 0,
        mint: usdc,
        destination: depositAta,
        source: await agentAta(),
        source_owner: agent.address,
        authority: agent.address,
        amount_micro: 25_000_000n,
        slot: node.slot() - BigInt(FINALIZE),
        commitment: "finalized",
      },
    });
  });

  test("at SOLANA_DEPOSIT_COMMITMENT=confirmed a deposit verifies one slot after landing", async () => {
    const confirmedPort = await connectSolanaChain(loadSolanaRailConfig(envFor({ SOLANA_DEPOSIT_COMMITMENT: "confirmed" })), hotBytes);
    const sig = await send(agent, [await depositTransfer(1_000_000n)]);
    expect(await confirmedPort.verifyDeposit({ signature: sig, instruction_index: 0 })).toMatchObject({ ok: false, refusal: { kind: "below_commitment" } });
    node.advance(1);
    expect(await confirmedPort.verifyDeposit({ signature: sig, instruction_index: 0 })).toMatchObject({ ok: true, deposit: { commitment: "confirmed" } });
  });

  test("forged and replayed reports are refused for what is wrong with them", async () => {
    // unknown signature
    const fake = getBase58Decoder().decode(new Uint8Array(64).fill(7)) as Signature;
    expect(await port.verifyDeposit({ signature: fake, instruction_index: 0 })).toMatchObject({ ok: false, refusal: { kind: "unknown_signature" } });

    // a real deposit with a memo after it, plus a plain `transfer`
    const memo: Instruction = { programAddress: "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr" as Address, data: new TextEncoder().encode("amount: 999000000") };
    const good = await send(agent, [await depositTransfer(3_000_000n), memo, getTransferInstruction({ source: await agentAta(), destination: depositAta, authority: agent, amount: 2_000_000n })]);
    // failed transaction (more than the agent holds), landed as failed
    const failed = await send(agent, [await depositTransfer(10n ** 15n)], { skipPreflight: true });
    // to another account (the author's, not the deposit account)
    const elsewhere = await fund((await generateKeyPairSigner()).address, 0n);
    const wrongDest = await send(agent, [getTransferCheckedInstruction({ source: await agentAta(), mint: usdc, destination: elsewhere, authority: agent, amount: 1_000_000n, decimals: 6 })]);
    node.advance(FINALIZE);

    expect(await port.verifyDeposit({ signature: good, instruction_index: 0 })).toMatchObject({ ok: true, deposit: { amount_micro: 3_000_000n } });
    expect(await port.verifyDeposit({ signature: good, instruction_index: 2 })).toMatchObject({ ok: true, deposit: { amount_micro: 2_000_000n, source_owner: agent.address } });
    // replayed with another instruction index: the memo is not a transfer, index 3 does not exist
    expect(await port.verifyDeposit({ signature: good, instruction_index: 1 })).toMatchObject({ ok: false, refusal: { kind: "not_a_transfer", instruction_index: 1 } });
    expect(await port.verifyDeposit({ signature: good, instruction_index: 3 })).toMatchObject({ ok: false, refusal: { kind: "instruction_not_found" } });
    // wrong amount / wrong source claimed
    expect(await port.verifyDeposit({ signature: good, instruction_index: 0, claimed: { amount_micro: 999_000_000n } })).toMatchObject({
      ok: false,
      refusal: { kind: "claim_mismatch", field: "amount_micro", claimed: "999000000", actual: "3000000" },
    });
    expect(await port.verifyDeposit({ signature: good, instruction_index: 0, claimed: { source_owner: depositOwner.address } })).toMatchObject({
      ok: false,
      refusal: { kind: "claim_mismatch", field: "source_owner" },
    });
    expect(await port.verifyDeposit({ signature: failed, instruction_index: 0 })).toMatchObject({ ok: false, refusal: { kind: "failed" } });
    expect(await port.verifyDeposit({ signature: wrongDest, instruction_index: 0 })).toMatchObject({
      ok: false,
      refusal: { kind: "wrong_destination", destination: elsewhere },
    });
    // the same transaction replayed on chain is refused by the cluster: one transfer, one signature
    const tx = await build(agent, [await depositTransfer(1_000_000n)]);
    const wire = getBase64EncodedWireTransaction(tx);
    await rpc.sendTransaction(wire, { encoding: "base64" }).send();
    await expect(rpc.sendTransaction(wire, { encoding: "base64" }).send()).rejects.toThrow();
  });

  test("the amount is the deposit account's balance change: other movements in the same transaction are refused", async () => {
    // a transfer of 1 USDC plus a mintTo of 50 into the deposit account in one transaction
    const sig = await send(agent, [
      await depositTransfer(1_000_000n),
      getMintToCheckedInstruction({ mint: usdc, token: depositAta, mintAuthority: authority, amount: 50_000_000n, decimals: 6 }),
    ]);
    node.advance(FINALIZE);
    expect(await port.verifyDeposit({ signature: sig, instruction_index: 0 })).toMatchObject({
      ok: false,
      refusal: { kind: "balance_mismatch", instruction_micro: 1_000_000n, balance_change_micro: 51_000_000n },
    });
  });

  test("another mint cannot reach the deposit account: refused by the token program, or lands elsewhere (wrong_destination)", async () => {
    const agentOther = await ata(agent.address, otherMint);
    const before = await tokenBalance(depositAta);
    const landed = node.landedCount();
    const into = getTransferCheckedInstruction({ source: agentOther, mint: otherMint, destination: depositAta, authority: agent, amount: 5_000_000n, decimals: 6 });
    await expect(send(agent, [into])).rejects.toThrow();
    expect(node.landedCount()).toBe(landed);
    const forced = await send(agent, [into], { skipPreflight: true });
    const ownersOther = await ata(depositOwner.address, otherMint);
    const toOwner = await send(agent, [getTransferCheckedInstruction({ source: agentOther, mint: otherMint, destination: ownersOther, authority: agent, amount: 5_000_000n, decimals: 6 })]);
    node.advance(FINALIZE);
    expect(await port.verifyDeposit({ signature: forced, instruction_index: 0 })).toMatchObject({ ok: false, refusal: { kind: "failed" } });
    expect(await port.verifyDeposit({ signature: toOwner, instruction_index: 0 })).toMatchObject({ ok: false, refusal: { kind: "wrong_destination", destination: ownersOther } });
    expect(await tokenBalance(depositAta)).toBe(before);
  });

  test("scan: deposits since the cursor, verified, once final; a rescan from the new cursor finds nothing again", async () => {
    const { cursor: start } = await port.scanDeposits(null); // everything before this test
    const a = await send(agent, [await depositTransfer(11_000_000n)]);
    await send(agent, [await depositTransfer(10n ** 15n)], { skipPreflight: true }); // failed: skipped
    const b = await send(agent, [await depositTransfer(12_000_000n), await depositTransfer(13_000_000n)]);
    node.advance(1);
    expect(await port.scanDeposits(start)).toEqual({ cursor: start, deposits: [], refused: [] }); // confirmed only
    node.advance(FINALIZE);
    const scan = await port.scanDeposits(start);
    expect(scan.deposits.map((d) => [d.signature, d.instruction_index, d.amount_micro, d.source_owner])).toEqual([
      [a, 0, 11_000_000n, agent.address],
      [b, 0, 12_000_000n, agent.address],
      [b, 1, 13_000_000n, agent.address],
    ]);
    expect(scan.refused).toEqual([]);
    expect(scan.cursor).not.toBe(start);
    expect(await port.scanDeposits(scan.cursor)).toEqual({ cursor: scan.cursor, deposits: [], refused: [] });
    const c = await send(agent, [await depositTransfer(14_000_000n)]);
    node.advance(FINALIZE);
    const next = await port.scanDeposits(scan.cursor);
    expect(next.deposits.map((d) => [d.signature, d.amount_micro])).toEqual([[c, 14_000_000n]]);
    expect(next.cursor).toBe(c);
  });

  test("inner (CPI) transfers into the deposit account are refused: the ATA program's RecoverNested", async () => {
    // Someone sent USDC to an ATA owned by the deposit ATA (a "nested" ATA); the deposit owner
    // recovers it, and the ATA program moves it into the deposit account by CPI.
    const nested = await fund(depositAta, 0n);
    await send(agent, [getTransferCheckedInstruction({ source: await agentAta(), mint: usdc, destination: nested, authority: agent, amount: 4_000_000n, decimals: 6 })]);
    const before = await tokenBalance(depositAta);
    const recover = await getRecoverNestedAssociatedTokenInstructionAsync({ nestedTokenMintAddress: usdc, ownerTokenMintAddress: usdc, walletAddress: depositOwner });
    const sig = await send(depositOwner, [recover]);
    node.advance(FINALIZE);
    expect(await tokenBalance(depositAta)).toBe(before + 4_000_000n); // the tokens did arrive
    expect(await port.verifyDeposit({ signature: sig, instruction_index: 0 })).toMatchObject({ ok: false, refusal: { kind: "inner_transfer" } });
  });
});
