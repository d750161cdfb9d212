/**
 * `npm run bench:settlement -- --rail solana [--payouts N] [--deposits M]` (dispatched from
 * bench/settlement.ts): the Solana rail end to end, as tests/settlement/solana-adapter.e2e.test.ts
 * runs it — the daemon in process (injected clock), a REAL SVM (LiteSVM, real SPL Token program)
 * behind the test JSON-RPC facade, and `masques-ledger rail solana` as a separate process.
 *
 * The facade SIMULATES commitment (LiteSVM has no cluster): the bench advances one slot per poll
 * round (~40 ms, a fast cluster), a transaction is finalized FINALIZE slots after it lands.
 * - payouts/s: N payouts (AMOUNT each, one author, one destination) confirmed at once; from the
 *   first confirmation to the last one CONFIRMED at `finalized`. (The ATA rent fee is set to 0 here:
 *   every one of the concurrent first payouts to a fresh destination would otherwise quote it.)
 * - deposit detection lag: M deposits one after another; from the slot advance that makes one
 *   finalized to the agent's wallet showing the credit (read every ~5 ms); p50 / p99. The
 *   adapter polls every 50 ms.
 */
import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
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
import { Rail } from "../clients/gen/masques/ledger/v1/common_pb.js";
import { OwnershipPurpose, PayoutState } from "../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { startSettlementHarness } from "../tests/settlement/harness.js";
import { startLiteSvmRpc } from "../tests/support/litesvm-rpc.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CHAIN = "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1";
const FINALIZE = 4;
const AMOUNT = 500_000n;
const AUTHOR = "author-grace";
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function benchSolana(N: number, M: number): Promise<void> {
  const node = await startLiteSvmRpc({ finalize_depth: FINALIZE });
  const rpc = createSolanaRpc(node.url);
  const dir = await mkdtemp(path.join(tmpdir(), "bench-solana-"));
  const h = await startSettlementHarness({ SETTLEMENT_SOLANA_CHAIN_ID: CHAIN, SETTLEMENT_SOLANA_CLUSTER: "devnet", PAYOUT_SOLANA_ACCOUNT_RENT_FEE_MICRO: "0" });
  const b58 = getBase58Decoder();
  const send = async (payer: KeyPairSigner, ixs: Instruction[]) => {
    const { value } = await rpc.getLatestBlockhash().send();
    const tx = await pipe(
      createTransactionMessage({ version: 0 }),
      (m) => setTransactionMessageFeePayerSigner(payer, m),
      (m) => setTransactionMessageLifetimeUsingBlockhash(value, m),
      (m) => appendTransactionMessageInstructions(ixs, m),
      (m) => signTransactionMessageWithSigners(m),
    );
    await rpc.sendTransaction(getBase64EncodedWireTransaction(tx), { encoding: "base64" }).send();
  };
  const ataOf = async (owner: Address, mint: Address) => (await findAssociatedTokenPda({ owner, mint, tokenProgram: TOKEN_PROGRAM_ADDRESS }))[0];
  const sign = async (s: KeyPairSigner, text: string) => b58.decode(await signBytes(s.keyPair.privateKey, getUtf8Encoder().encode(text)));
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const [authority, dest, depositOwner, source, mintKey] = await Promise.all(Array.from({ length: 5 }, () => generateKeyPairSigner()));
    node.svm.airdrop(authority.address, lamports(100_000_000_000n));
    node.svm.airdrop(source.address, lamports(10_000_000_000n));
    const usdc = mintKey.address;
    const space = BigInt(getMintSize());
    await send(authority, [
      getCreateAccountInstruction({ payer: authority, newAccount: mintKey, lamports: await rpc.getMinimumBalanceForRentExemption(space).send(), space, programAddress: TOKEN_PROGRAM_ADDRESS }),
      getInitializeMint2Instruction({ mint: usdc, decimals: 6, mintAuthority: authority.address }),
    ]);
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const bytes = Uint8Array.from([...privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32), ...publicKey.export({ format: "der", type: "spki" }).subarray(-32)]);
    const hot = await createKeyPairSignerFromBytes(bytes);
    node.svm.airdrop(hot.address, lamports(10_000_000_000n));
    const fund = async (owner: Address, amount: bigint) =>
      send(authority, [
        await getCreateAssociatedTokenIdempotentInstructionAsync({ payer: authority, owner, mint: usdc }),
        ...(amount > 0n ? [getMintToCheckedInstruction({ mint: usdc, token: await ataOf(owner, usdc), mintAuthority: authority, amount, decimals: 6 })] : []),
      ]);
    await fund(hot.address, BigInt(N) * AMOUNT);
    await fund(depositOwner.address, 0n);
    await fund(source.address, BigInt(M) * 1_000_000n);
    const keyFile = path.join(dir, "hot.json");
    await writeFile(keyFile, JSON.stringify([...bytes]), { mode: 0o600 });
    const tokenFile = path.join(dir, "rail.jwt");
    await writeFile(tokenFile, await h.d.token("rail", "solana"), { mode: 0o600 });
    node.advance(FINALIZE);

    await h.earn("payer", Math.ceil(Number((BigInt(N) * AMOUNT * 100n) / 85n / 500_000n)) + 1);
    const a = await h.settlement("author", AUTHOR);
    const pc = (await a.createDestinationChallenge({ purpose: OwnershipPurpose.PAYOUT_DESTINATION, rail: Rail.SOLANA, address: dest.address })).challenge!;
    await a.registerPayoutDestination({ rail: Rail.SOLANA, address: dest.address, proof: { challengeId: pc.challengeId, signature: await sign(dest, pc.message) } });
    await h.d.fundedAgent("bench-agent", 1n);
    const ag = await h.settlement("agent", "bench-agent");
    const dc = (await ag.createDestinationChallenge({ purpose: OwnershipPurpose.DEPOSIT_SOURCE, rail: Rail.SOLANA, address: source.address })).challenge!;
    await ag.bindDepositSource({ rail: Rail.SOLANA, address: source.address, proof: { challengeId: dc.challengeId, signature: await sign(source, dc.message) } });

    child = spawn(process.execPath, [path.join(ROOT, "bin/masques-ledger.js"), "rail", "solana"], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        TMPDIR: process.env.TMPDIR ?? tmpdir(),
        MASQUES_LOG_LEVEL: "warn",
        RAIL_DAEMON_ENDPOINT: `http://${h.d.daemon.grpcAddr}`,
        RAIL_TOKEN_FILE: tokenFile,
        RAIL_DATA_DIR: path.join(dir, "adapter"),
        RAIL_CLAIM_MAX: String(Math.min(N, 100)),
        SOLANA_RPC_URL: node.url,
        SOLANA_CHAIN_ID: CHAIN,
        SOLANA_USDC_MINT: usdc,
        SOLANA_HOT_WALLET_KEYPAIR_FILE: keyFile,
        SOLANA_DEPOSIT_OWNER: depositOwner.address,
        SOLANA_POLL_INTERVAL_MS: "50",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });

    // payouts/s
    const quotes = await Promise.all(Array.from({ length: N }, (_, i) => a.requestPayout({ rail: Rail.SOLANA, amount: { case: "amountMicro", value: AMOUNT }, idempotencyKey: `bench-${i}` })));
    const ids = quotes.map((q) => q.payout!.payoutId);
    const t0 = performance.now();
    await Promise.all(ids.map((payoutId) => a.confirmPayout({ payoutId })));
    const slot0 = node.slot();
    for (;;) {
      const ps = await Promise.all(ids.map(async (payoutId) => (await a.getPayout({ payoutId })).payout!));
      if (ps.every((p) => p.state === PayoutState.CONFIRMED)) break;
      const failed = ps.find((p) => p.state === PayoutState.FAILED);
      if (failed) throw new Error(`bench payout ${failed.payoutId} failed: ${failed.failureReason}`);
      if (performance.now() - t0 > 600_000) throw new Error("payouts did not settle within 10 minutes");
      node.advance(1);
      await sleep(40);
    }
    const secs = (performance.now() - t0) / 1000;
    const slots = Number(node.slot() - slot0);

    // deposit detection lag
    const lags: number[] = [];
    for (let i = 0; i < M; i++) {
      const before = await h.d.available("bench-agent");
      await send(source, [getTransferCheckedInstruction({ source: await ataOf(source.address, usdc), mint: usdc, destination: await ataOf(depositOwner.address, usdc), authority: source, amount: 1_000_000n, decimals: 6 })]);
      node.advance(FINALIZE); // now finalized
      const t = performance.now();
      while ((await h.d.available("bench-agent")) === before) {
        if (performance.now() - t > 120_000) throw new Error(`deposit ${i} not credited within 120 s`);
        await sleep(5);
      }
      lags.push(performance.now() - t);
    }
    console.log(
      JSON.stringify(
        {
          rail: "solana",
          finalize_slots: FINALIZE,
          adapter_poll_ms: 50,
          load_avg_1m: Number(loadavg()[0]!.toFixed(2)),
          payouts: N,
          seconds: Number(secs.toFixed(2)),
          payouts_per_s: Number((N / secs).toFixed(2)),
          slots_advanced: slots,
          deposits: M,
          lag_ms_p50: Math.round(pct(lags, 50)),
          lag_ms_p99: Math.round(pct(lags, 99)),
          lag_ms_max: Math.round(Math.max(...lags)),
        },
        null,
        2,
      ),
    );
  } finally {
    child?.kill("SIGKILL");
    await h.stop();
    await node.close();
    await rm(dir, { recursive: true, force: true });
  }
}
