/**
 * Issue 14, the Solana rail adapter end to end: the real daemon (one per file, injected clock),
 * a REAL SVM (LiteSVM with the real SPL Token, ATA and Memo programs) behind the JSON-RPC facade
 * of tests/support/litesvm-rpc.ts (one per file), and `masques-ledger rail solana` as a SEPARATE
 * PROCESS reaching the daemon only over gRPC with a rail token.
 *
 * Commitment is SIMULATED by the facade: LiteSVM has no cluster, so a transaction is `processed`
 * in its slot, `confirmed` one slot later and `finalized` FINALIZE slots later, and a blockhash
 * expires 150 blocks after it was issued. Nothing moves on its own: the test advances slots
 * explicitly (`node.advance`), so the adapter's commitment thresholds and blockhash-expiry logic
 * are tested against that simulation, never against wall-clock timing. Waits are "until a
 * condition holds", with generous bounds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
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
  fetchMaybeToken,
  findAssociatedTokenPda,
  getCreateAssociatedTokenIdempotentInstructionAsync,
  getInitializeMint2Instruction,
  getMintSize,
  getMintToCheckedInstruction,
  getRecoverNestedAssociatedTokenInstructionAsync,
  getTransferCheckedInstruction,
} from "@solana-program/token";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { OwnershipPurpose, PayoutState, type Payout } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { railAccountId } from "../../src/domain/accounts.js";
import { idToHex } from "../../src/domain/ids.js";
import { railFeesAccountId } from "../../src/domain/settlement/ids.js";
import { createLogger } from "../../src/log.js";
import type { AnalyticsPort } from "../../src/server/registry.js";
import { fileCursorStore } from "../../src/rails/adapter/cursor.js";
import { settlementClient } from "../../src/rails/adapter/daemon-client.js";
import { createRailAdapter, type RailAdapter } from "../../src/rails/adapter/runner.js";
import { connectSolanaChain } from "../../src/rails/solana/chain.js";
import { loadHotWalletKeypair, loadSolanaRailConfig } from "../../src/rails/solana/config.js";
import { solanaDriver } from "../../src/rails/solana/driver.js";
import { startLiteSvmRpc, type LiteSvmRpc } from "../support/litesvm-rpc.js";
import { expectedFee, startSettlementHarness, type SettlementHarness } from "./harness.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = path.join(ROOT, "bin/masques-ledger.js");
const CHAIN = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const FINALIZE = 4; // simulated rooting distance (slots); the adapter reports a rooted slot as 32 confirmations
const RENT_FEE = 400_000n;
const SOL = 1_000_000_000n;
const AUTHOR = "author-grace"; // the researcher masque pays author-grace
const AGENT = "sol-depositor";
const TERMINAL = new Set([PayoutState.CONFIRMED, PayoutState.FAILED, PayoutState.CANCELLED, PayoutState.EXPIRED]);
const b58 = getBase58Decoder();

let node: LiteSvmRpc;
let rpc: Rpc<SolanaRpcApi>;
let h: SettlementHarness;
let dir: string;
let authority: KeyPairSigner;
let usdc: Address;
let otherMint: Address;
let hot: KeyPairSigner;
let dest: KeyPairSigner; // the author's wallet
let depositOwner: KeyPairSigner;
let depositAta: Address;
let source: KeyPairSigner; // the agent's bound deposit source
let tokenFile: string;
let keyFile: string;

interface Proc {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  lines(): Record<string, unknown>[];
  kill(): Promise<void>;
}
const live = new Set<Proc>();

function newKeypairBytes(): Uint8Array {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return Uint8Array.from([...privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32), ...publicKey.export({ format: "der", type: "spki" }).subarray(-32)]);
}
const ataOf = async (owner: Address, mint: Address = usdc) => (await findAssociatedTokenPda({ owner, mint, tokenProgram: TOKEN_PROGRAM_ADDRESS }))[0];

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
async function createMint(): Promise<Address> {
  const mint = await generateKeyPairSigner();
  const space = BigInt(getMintSize());
  const rent = await rpc.getMinimumBalanceForRentExemption(space).send();
  await send(authority, [
    getCreateAccountInstruction({ payer: authority, newAccount: mint, lamports: rent, space, programAddress: TOKEN_PROGRAM_ADDRESS }),
    getInitializeMint2Instruction({ mint: mint.address, decimals: 6, mintAuthority: authority.address }),
  ]);
  return mint.address;
}
async function fund(owner: Address, amount: bigint, mint: Address = usdc): Promise<Address> {
  const account = await ataOf(owner, mint);
  await send(authority, [
    await getCreateAssociatedTokenIdempotentInstructionAsync({ payer: authority, owner, mint }),
    ...(amount > 0n ? [getMintToCheckedInstruction({ mint, token: account, mintAuthority: authority, amount, decimals: 6 })] : []),
  ]);
  return account;
}
async function tokens(account: Address): Promise<bigint> {
  const a = await fetchMaybeToken(rpc, account, { commitment: "processed" });
  return a.exists ? a.data.amount : 0n;
}
/** Set a wallet's SOL (test setup straight on the SVM). */
function setLamports(who: Address, amount: bigint): void {
  const acc = node.svm.getAccount(who);
  if (!acc.exists) throw new Error(`no account ${who}`);
  node.svm.setAccount({ ...acc, lamports: lamports(amount) });
}

function startAdapter(env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, "rail", "solana"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      TMPDIR: process.env.TMPDIR ?? tmpdir(),
      RAIL_DAEMON_ENDPOINT: `http://${h.d.daemon.grpcAddr}`,
      RAIL_TOKEN_FILE: tokenFile,
      RAIL_DATA_DIR: path.join(dir, "adapter"),
      SOLANA_RPC_URL: node.url,
      SOLANA_CHAIN_ID: CHAIN,
      SOLANA_USDC_MINT: usdc,
      SOLANA_HOT_WALLET_KEYPAIR_FILE: keyFile,
      SOLANA_DEPOSIT_OWNER: depositOwner.address,
      SOLANA_POLL_INTERVAL_MS: "50",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Record<string, unknown>[] = [];
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        lines.push({ raw: text });
      }
    }
  });
  child.stderr!.on("data", (d: Buffer) => lines.push({ stderr: d.toString() }));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const p: Proc = {
    child,
    exited,
    lines: () => lines.slice(),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      live.delete(p);
    },
  };
  live.add(p);
  return p;
}

/** Poll until `pred` holds (bounded); `advance`: move the simulated cluster one slot per round. */
async function until<T>(what: string, probe: () => Promise<T>, pred: (v: T) => boolean, opts: { advance?: boolean; timeout_ms?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeout_ms ?? 120_000);
  for (;;) {
    const v = await probe();
    if (pred(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? String(x) : x))}`);
    if (opts.advance) node.advance(1);
    await new Promise((r) => setTimeout(r, 40)); // polling interval only; the condition decides
  }
}
const payout = async (id: string) => (await (await h.settlement("author", AUTHOR)).getPayout({ payoutId: id })).payout!;
async function queue(key: string, amount_micro: bigint): Promise<Payout> {
  const a = await h.settlement("author", AUTHOR);
  const q = (await a.requestPayout({ rail: Rail.SOLANA, amount: { case: "amountMicro", value: amount_micro }, idempotencyKey: key })).payout!;
  return (await a.confirmPayout({ payoutId: q.payoutId })).payout!;
}
const settled = (id: string) => until(`payout ${id} to settle`, () => payout(id), (p) => TERMINAL.has(p.state), { advance: true });
async function credits(id: bigint): Promise<bigint> {
  const admin = await h.d.as("admin", "ops");
  return (await admin.accounts.getAccount({ account: { ref: { case: "accountId", value: idToHex(id) } } })).account!.balance!.creditsPostedMicro;
}
/** Signatures that touched the author's token account (each payout that landed is one). */
async function landedTo(account: Address): Promise<Signature[]> {
  return (await rpc.getSignaturesForAddress(account, { commitment: "confirmed" }).send()).map((s) => s.signature);
}

/** The daemon streamer's ClickHouse copy (STREAMER_ENABLED, embedded chDB). */
let analytics: AnalyticsPort | undefined;

beforeAll(async () => {
  node = await startLiteSvmRpc({ finalize_depth: FINALIZE });
  rpc = createSolanaRpc(node.url);
  dir = await mkdtemp(path.join(tmpdir(), "solana-adapter-"));
  h = await startSettlementHarness(
    { SETTLEMENT_SOLANA_CHAIN_ID: CHAIN, SETTLEMENT_SOLANA_CLUSTER: "devnet", PAYOUT_SOLANA_ACCOUNT_RENT_FEE_MICRO: String(RENT_FEE), STREAMER_ENABLED: "true" },
    { onAnalytics: (a) => (analytics = a) },
  );
  [authority, dest, depositOwner, source] = await Promise.all([generateKeyPairSigner(), generateKeyPairSigner(), generateKeyPairSigner(), generateKeyPairSigner()]);
  node.svm.airdrop(authority.address, lamports(100n * SOL)); // test setup funds accounts straight on the SVM
  node.svm.airdrop(source.address, lamports(10n * SOL));
  usdc = await createMint();
  otherMint = await createMint();
  const bytes = newKeypairBytes();
  hot = await createKeyPairSignerFromBytes(bytes);
  node.svm.airdrop(hot.address, lamports(10n * SOL));
  await fund(hot.address, 1_500_000n);
  depositAta = await fund(depositOwner.address, 0n);
  await fund(depositOwner.address, 0n, otherMint);
  await fund(source.address, 100_000_000n);
  await fund(source.address, 100_000_000n, otherMint);
  keyFile = path.join(dir, "hot.json");
  await writeFile(keyFile, JSON.stringify([...bytes]), { mode: 0o600 });
  tokenFile = path.join(dir, "rail.jwt");
  await writeFile(tokenFile, await h.d.token("rail", "solana"), { mode: 0o600 });
  node.advance(FINALIZE);

  await h.earn("sol-payer", 10); // 4,250,000 micro-USD to the author
  const a = await h.settlement("author", AUTHOR);
  const pc = (await a.createDestinationChallenge({ purpose: OwnershipPurpose.PAYOUT_DESTINATION, rail: Rail.SOLANA, address: dest.address })).challenge!;
  const sign = async (s: KeyPairSigner, text: string) => b58.decode(await signBytes(s.keyPair.privateKey, getUtf8Encoder().encode(text)));
  await a.registerPayoutDestination({ rail: Rail.SOLANA, address: dest.address, proof: { challengeId: pc.challengeId, signature: await sign(dest, pc.message) } });
  await h.d.fundedAgent(AGENT, 1n);
  const ag = await h.settlement("agent", AGENT);
  const dc = (await ag.createDestinationChallenge({ purpose: OwnershipPurpose.DEPOSIT_SOURCE, rail: Rail.SOLANA, address: source.address })).challenge!;
  await ag.bindDepositSource({ rail: Rail.SOLANA, address: source.address, proof: { challengeId: dc.challengeId, signature: await sign(source, dc.message) } });
}, 240_000);

afterAll(async () => {
  for (const p of [...live]) await p.kill();
  await h?.stop();
  await node?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("payouts through the adapter process", () => {
  it("earn → register → request → paid → confirmed at the payout commitment → posted; the ATA is created and its rent charged", async () => {
    const adapter = startAdapter();
    try {
      const before = await h.earnings(AUTHOR);
      const fees0 = await credits(railFeesAccountId("solana"));
      const out0 = await credits(railAccountId("rail_outbound", "solana"));
      const destAta = await ataOf(dest.address);
      const p = await queue("happy", 1_000_000n);
      const fee = expectedFee(1_000_000n) + RENT_FEE;
      expect(p.quote).toMatchObject({ feeMicro: fee, netMicro: 1_000_000n - fee, accountRentFeeMicro: RENT_FEE });
      // Below the payout commitment nothing is posted: wait for the transfer to land, check, then let it finalize.
      await until("the transfer to land", () => tokens(destAta), (t) => t > 0n);
      expect((await payout(p.payoutId)).state).toBe(PayoutState.SUBMITTED);
      expect(await h.earnings(AUTHOR)).toEqual({ posted: before.posted, available: before.available - 1_000_000n });
      const done = await settled(p.payoutId);
      expect(done.state).toBe(PayoutState.CONFIRMED);
      expect(await tokens(destAta)).toBe(1_000_000n - fee);
      expect(await landedTo(destAta)).toEqual([done.txRef]);
      expect(await h.earnings(AUTHOR)).toEqual({ posted: before.posted - 1_000_000n, available: before.available - 1_000_000n });
      expect(await credits(railFeesAccountId("solana"))).toBe(fees0 + fee);
      expect(await credits(railAccountId("rail_outbound", "solana"))).toBe(out0 + 1_000_000n - fee);
      const rent = BigInt(await rpc.getMinimumBalanceForRentExemption(165n).send());
      expect(done.networkFeeNative).toBe(5_000n + rent); // the fee and the new ATA's rent, in lamports
      // ClickHouse `settlements` (ADR 0084): the ledger's side and the rail's facts (signature, fee in lamports).
      const row = await until(
        `settlements row of ${p.payoutId} to be paid`,
        async () =>
          (await analytics!.sink.query(`SELECT status, amount_micro, rail_tx, network_fee_native FROM masques.settlements FINAL WHERE payout_id = toUInt128('${BigInt(`0x${p.payoutId}`).toString()}')`))[0],
        (r) => r?.status === "paid",
      );
      expect(row).toEqual({ status: "paid", amount_micro: String(1_000_000n - fee), rail_tx: done.txRef, network_fee_native: String(5_000n + rent) });
    } finally {
      await adapter.kill();
    }
  });

  it("a hot wallet short of USDC: failed and voided before signing, money back, the reason names the shortfall", async () => {
    const adapter = startAdapter();
    try {
      const before = await h.earnings(AUTHOR);
      const held = await tokens(await ataOf(hot.address)); // 906,000 after the first payout
      const n0 = node.landedCount();
      const p = await queue("short-usdc", 1_000_000n);
      const f = await settled(p.payoutId);
      expect(f.state).toBe(PayoutState.FAILED);
      expect(f.failureReason).toContain(`holds ${held} micro-USDC, the payout needs ${1_000_000n - expectedFee(1_000_000n)}`);
      expect(f.txRef).toBe("");
      expect(await h.earnings(AUTHOR)).toEqual(before);
      expect(node.landedCount()).toBe(n0);
    } finally {
      await adapter.kill();
    }
  });

  it("a hot wallet short of SOL: failed and voided, money back, the reason names the lamports", async () => {
    await send(authority, [getMintToCheckedInstruction({ mint: usdc, token: await ataOf(hot.address), mintAuthority: authority, amount: 5_000_000n, decimals: 6 })]);
    setLamports(hot.address, 100_000n); // below its own rent-exempt minimum + the fee
    const adapter = startAdapter();
    try {
      const before = await h.earnings(AUTHOR);
      const n0 = node.landedCount();
      const p = await queue("short-sol", 300_000n);
      const f = await settled(p.payoutId);
      expect(f.state).toBe(PayoutState.FAILED);
      expect(f.failureReason).toMatch(/holds 100000 lamports, the payout needs \d+/);
      expect(await h.earnings(AUTHOR)).toEqual(before);
      expect(node.landedCount()).toBe(n0);
    } finally {
      await adapter.kill();
      setLamports(hot.address, 10n * SOL);
    }
  });

  it("expired blockhash: recorded but never sent; after expiry it is signed anew once (replaces_tx_ref) and paid once", async () => {
    const destAta = await ataOf(dest.address);
    const t0 = await tokens(destAta);
    const crashed = startAdapter({ RAIL_FAULT_KILL_AT: "after_record" });
    const p = await queue("expiry", 500_000n);
    expect((await crashed.exited).signal).toBe("SIGKILL");
    live.delete(crashed);
    const recorded = await payout(p.payoutId);
    expect(recorded.state).toBe(PayoutState.SUBMITTED);
    // While the blockhash can still land the recorded bytes are re-sent, never re-signed.
    node.advance(150 + FINALIZE + 2); // the finalized height passes the recorded last valid block height
    const adapter = startAdapter();
    try {
      const done = await settled(p.payoutId);
      expect(done.state).toBe(PayoutState.CONFIRMED);
      expect(done.txRef).not.toBe(recorded.txRef);
      const net = 500_000n - expectedFee(500_000n);
      expect(await tokens(destAta)).toBe(t0 + net);
      expect((await rpc.getSignatureStatuses([recorded.txRef as Signature], { searchTransactionHistory: true }).send()).value[0]).toBeNull();
      expect(adapter.lines().filter((l) => l.event === "payout_resign" && l.payout_id === p.payoutId)).toHaveLength(1);
      expect(await landedTo(destAta)).toContain(done.txRef);
    } finally {
      await adapter.kill();
    }
  });

  it("SIGKILLed between signing and confirming, again and again: exactly one on-chain transfer", async () => {
    const destAta = await ataOf(dest.address);
    const t0 = await tokens(destAta);
    const landed0 = (await landedTo(destAta)).length;
    const p = await queue("crashy", 700_000n);
    // after_sign: signed, never recorded (re-signed next time); after_broadcast: recorded and sent.
    // (after_record, recorded but never sent, is the expired-blockhash test above.)
    for (const point of ["after_sign", "after_broadcast"]) {
      const a = startAdapter({ RAIL_FAULT_KILL_AT: point });
      expect((await a.exited).signal).toBe("SIGKILL");
      live.delete(a);
    }
    // Landed (processed) but not final: killed again while it waits for the commitment.
    const waiting = startAdapter();
    await until("the landed transfer", () => tokens(destAta), (t) => t > t0);
    node.advance(1);
    await waiting.kill();
    const adapter = startAdapter();
    try {
      const done = await settled(p.payoutId);
      expect(done.state).toBe(PayoutState.CONFIRMED);
      expect(await tokens(destAta)).toBe(t0 + 700_000n - expectedFee(700_000n));
      const landed = await landedTo(destAta);
      expect(landed.length).toBe(landed0 + 1);
      expect(landed[0]).toBe(done.txRef);
    } finally {
      await adapter.kill();
    }
  });
});

describe("deposits", () => {
  let gate: RailAdapter;
  let adapter: Proc;
  const available = () => h.d.available(AGENT);
  const reported = (sig: string) => adapter.lines().filter((l) => l.event === "deposit_reported" && l.tx_ref === sig).length;
  const deposit = async (amount: bigint, mint: Address = usdc) =>
    send(source, [getTransferCheckedInstruction({ source: await ataOf(source.address, mint), mint, destination: await ataOf(depositOwner.address, mint), authority: source, amount, decimals: 6 })]);

  beforeAll(async () => {
    const config = loadSolanaRailConfig({ SOLANA_RPC_URL: node.url, SOLANA_CHAIN_ID: CHAIN, SOLANA_USDC_MINT: usdc, SOLANA_HOT_WALLET_KEYPAIR_FILE: keyFile, SOLANA_DEPOSIT_OWNER: depositOwner.address });
    const chain = await connectSolanaChain(config, loadHotWalletKeypair(keyFile));
    const token = await h.d.token("rail", "solana");
    gate = createRailAdapter({
      settlement: settlementClient(`http://${h.d.daemon.grpcAddr}`, () => token),
      driver: solanaDriver(chain, CHAIN),
      cursor: fileCursorStore(path.join(dir, "gate"), "solana"),
      log: createLogger({ level: "silent" }),
      claim_max: 1,
      resign_max: 0,
    });
    adapter = startAdapter({ RAIL_DATA_DIR: path.join(dir, "deposit-adapter") }); // a fresh cursor: it starts at the newest signature
    await until("the adapter's first cursor", async () => adapter.lines().some((l) => l.event === "deposit_cursor"), Boolean);
  }, 180_000);

  it("credited once at the required commitment (finalized), never before", async () => {
    const before = await available();
    const sig = await deposit(2_000_000n);
    node.advance(FINALIZE - 1); // confirmed, not finalized
    expect(await gate.verifyAndReport({ tx_ref: sig, event_index: 0 })).toEqual({ reported: false, kind: "below_commitment", reason: expect.stringContaining("credited once finalized") });
    expect(await available()).toBe(before);
    expect(reported(sig)).toBe(0);
    node.advance(1);
    await until("the credit", available, (a) => a === before + 2_000_000n);
    await until("the adapter's report", async () => reported(sig), (n) => n === 1);
    // Replayed (by the gate, any number of times): accepted as the same deposit, nothing more credited.
    expect(await gate.verifyAndReport({ tx_ref: sig, event_index: 0 })).toEqual({ reported: true });
    expect(await gate.verifyAndReport({ tx_ref: sig, event_index: 0, amount_micro: 2_000_000n, from_address: source.address })).toEqual({ reported: true });
    expect(await available()).toBe(before + 2_000_000n);
  });

  it("forged reports are refused; another mint's transfer and an inner (CPI) transfer are never credited", async () => {
    const before = await available();
    const real = await deposit(700_000n);
    const other = await deposit(1_000_000n, otherMint); // arrives at the owner's other-mint account
    const nested = await fund(depositAta, 0n); // an ATA owned by the deposit ATA
    await send(source, [getTransferCheckedInstruction({ source: await ataOf(source.address), mint: usdc, destination: nested, authority: source, amount: 4_000_000n, decimals: 6 })]);
    node.svm.airdrop(depositOwner.address, lamports(SOL));
    const cpi = await send(depositOwner, [
      await getRecoverNestedAssociatedTokenInstructionAsync({ nestedTokenMintAddress: usdc, ownerTokenMintAddress: usdc, walletAddress: depositOwner }),
    ]);
    node.advance(FINALIZE);
    const refusals = {
      unknown: await gate.verifyAndReport({ tx_ref: b58.decode(new Uint8Array(64).fill(7)), event_index: 0 }),
      wrong_amount: await gate.verifyAndReport({ tx_ref: real, event_index: 0, from_address: source.address, amount_micro: 7_000_000n }),
      wrong_source: await gate.verifyAndReport({ tx_ref: real, event_index: 0, from_address: depositOwner.address }),
      other_mint: await gate.verifyAndReport({ tx_ref: other, event_index: 0 }),
      cpi: await gate.verifyAndReport({ tx_ref: cpi, event_index: 0 }),
      no_such_instruction: await gate.verifyAndReport({ tx_ref: real, event_index: 3 }),
    };
    expect(refusals.unknown).toMatchObject({ reported: false, kind: "unknown_signature" });
    expect(refusals.wrong_amount).toEqual({ reported: false, kind: "claim_mismatch", reason: "claimed amount_micro 7000000 but the chain says 700000" });
    expect(refusals.wrong_source).toMatchObject({ reported: false, kind: "claim_mismatch" });
    expect(refusals.other_mint).toMatchObject({ reported: false, kind: "wrong_destination" });
    expect(refusals.cpi).toMatchObject({ reported: false, kind: "inner_transfer" });
    expect(refusals.no_such_instruction).toMatchObject({ reported: false, kind: "instruction_not_found" });
    await until("the honest credit", available, (a) => a === before + 700_000n);
    // The scan moved past the CPI recovery (its tokens did arrive) without crediting it.
    await until("the cursor past the CPI recovery", async () => adapter.lines().some((l) => l.event === "deposit_cursor" && l.cursor === `sig:${cpi}`), Boolean);
    expect(await tokens(depositAta)).toBeGreaterThanOrEqual(2_000_000n + 700_000n + 4_000_000n);
    expect(await available()).toBe(before + 700_000n);
    expect(reported(other) + reported(cpi)).toBe(0);
  });
});
