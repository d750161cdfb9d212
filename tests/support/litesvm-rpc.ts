/**
 * Test support: a REAL Solana VM behind a small JSON-RPC server, so the Solana rail's chain port
 * (src/rails/solana/chain.ts) runs against `@solana/kit`'s `createSolanaRpc` unchanged.
 *
 * LiteSVM (npm `litesvm`, the native SVM with the real SPL Token, Associated Token Account and
 * Memo programs) executes every transaction in process. What LiteSVM does NOT model is a cluster:
 * there are no forks, no votes and no commitment levels. This facade SIMULATES them from a slot
 * counter that the TEST advances explicitly (`advance(n)`); nothing moves on its own:
 *   - a transaction lands in the current slot; its status is `processed` at depth 0,
 *     `confirmed` at depth >= 1 and `finalized` at depth >= `finalize_depth` (default 32,
 *     mainnet's rooting distance);
 *   - block height = slot; `getBlockHeight` at `confirmed` is slot - 1 and at `finalized` is
 *     slot - finalize_depth (what is rooted);
 *   - every slot gets a fresh blockhash; a blockhash issued at height h is valid until block
 *     height h + 150 (`lastValidBlockHeight`, as on mainnet). The facade checks lifetimes itself
 *     (LiteSVM's own check is turned off, it only knows the latest hash) and refuses an expired
 *     or unknown blockhash with `BlockhashNotFound`, like a validator's preflight;
 *   - a signature already processed is refused with `AlreadyProcessed`, like a validator;
 *   - a transaction that fails is NOT recorded (a preflight failure) unless sent with
 *     `skipPreflight: true`, in which case it lands as failed, like on a real cluster.
 * So the adapter's commitment thresholds and blockhash-expiry logic are tested against this
 * simulation, not against a validator's consensus. The facade lives in tests only, never in src/.
 *
 * Methods: getSlot, getBlockHeight, getLatestBlockhash, isBlockhashValid, getBalance,
 * getAccountInfo (base64), getTokenAccountBalance, getMinimumBalanceForRentExemption,
 * sendTransaction (base64), getSignatureStatuses, getSignaturesForAddress, getTransaction (json). Pre/post token
 * balances and inner instructions in getTransaction are computed here from LiteSVM's accounts
 * and its inner-instruction record.
 *
 *   const node = await startLiteSvmRpc();   // 127.0.0.1:<free port>
 *   const rpc = createSolanaRpc(node.url);
 *   node.advance(32);                        // the test moves time
 *   await node.close();                      // afterAll (also closes on process exit)
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { FailedTransactionMetadata, LiteSVM, type TransactionMetadata } from "litesvm";
import {
  address,
  getBase58Decoder,
  getBase64Decoder,
  getBase64Encoder,
  getCompiledTransactionMessageDecoder,
  getTransactionDecoder,
  type Address,
  type Transaction,
} from "@solana/kit";
import { TOKEN_PROGRAM_ADDRESS, getMintDecoder, getTokenDecoder } from "@solana-program/token";

/** Blocks a blockhash stays valid after it is issued (mainnet: 150). */
export const BLOCKHASH_VALID_BLOCKS = 150n;
const TOKEN_ACCOUNT_SIZE = 165;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface RpcError {
  code: number;
  message: string;
  data?: Json;
}
const rpcError = (code: number, message: string, data?: Json): RpcError => ({ code, message, ...(data === undefined ? {} : { data }) });
/** Solana's TransactionError / InstructionError unit variants, in LiteSVM's enum order. */
const TX_ERRORS = ["AccountInUse", "AccountLoadedTwice", "AccountNotFound", "ProgramAccountNotFound", "InsufficientFundsForFee", "InvalidAccountForFee", "AlreadyProcessed", "BlockhashNotFound", "CallChainTooDeep", "MissingSignatureForFee", "InvalidAccountIndex", "SignatureFailure", "InvalidProgramForExecution", "SanitizeFailure", "ClusterMaintenance", "AccountBorrowOutstanding", "WouldExceedMaxBlockCostLimit", "UnsupportedVersion", "InvalidWritableAccount", "WouldExceedMaxAccountCostLimit", "WouldExceedAccountDataBlockLimit", "TooManyAccountLocks", "AddressLookupTableNotFound", "InvalidAddressLookupTableOwner", "InvalidAddressLookupTableData", "InvalidAddressLookupTableIndex", "InvalidRentPayingAccount", "WouldExceedMaxVoteCostLimit", "WouldExceedAccountDataTotalLimit", "MaxLoadedAccountsDataSizeExceeded", "ResanitizationNeeded", "InvalidLoadedAccountsDataSizeLimit", "UnbalancedTransaction", "ProgramCacheHitMaxLimit", "CommitCancelled"];
const IX_ERRORS = ["GenericError", "InvalidArgument", "InvalidInstructionData", "InvalidAccountData", "AccountDataTooSmall", "InsufficientFunds", "IncorrectProgramId", "MissingRequiredSignature", "AccountAlreadyInitialized", "UninitializedAccount", "UnbalancedInstruction", "ModifiedProgramId", "ExternalAccountLamportSpend", "ExternalAccountDataModified", "ReadonlyLamportChange", "ReadonlyDataModified", "DuplicateAccountIndex", "ExecutableModified", "RentEpochModified", "NotEnoughAccountKeys", "AccountDataSizeChanged", "AccountNotExecutable", "AccountBorrowFailed", "AccountBorrowOutstanding", "DuplicateAccountOutOfSync", "InvalidError", "ExecutableDataModified", "ExecutableLamportChange", "ExecutableAccountNotRentExempt", "UnsupportedProgramId", "CallDepth", "MissingAccount", "ReentrancyNotAllowed", "MaxSeedLengthExceeded", "InvalidSeeds", "InvalidRealloc", "ComputationalBudgetExceeded", "PrivilegeEscalation", "ProgramEnvironmentSetupFailure", "ProgramFailedToComplete", "ProgramFailedToCompile", "Immutable", "IncorrectAuthority", "AccountNotRentExempt", "InvalidAccountOwner", "ArithmeticOverflow", "UnsupportedSysvar", "IllegalOwner", "MaxAccountsDataAllocationsExceeded", "MaxAccountsExceeded", "MaxInstructionTraceLengthExceeded", "BuiltinProgramsMustConsumeComputeUnits", "BorshIoError"];

/** LiteSVM's error object → the JSON a validator returns (`"AccountNotFound"`, `{InstructionError:[1,{Custom:1}]}`). */
function errorJson(e: unknown): Json {
  if (typeof e === "number") return TX_ERRORS[e] ?? `TransactionError${e}`;
  if (typeof e === "object" && e !== null) {
    if ("index" in e && "err" in e && typeof e.err === "function") {
      const inner: unknown = (e.err as () => unknown).call(e);
      const ix: Json =
        typeof inner === "number" ? (IX_ERRORS[inner] ?? `InstructionError${inner}`) : typeof inner === "object" && inner !== null && "code" in inner ? { Custom: Number(inner.code) } : String(inner);
      return { InstructionError: [Number(e.index), ix] };
    }
    if ("accountIndex" in e) return { InsufficientFundsForRent: { account_index: Number(e.accountIndex) } };
    if ("index" in e) return { DuplicateInstruction: Number(e.index) };
  }
  return String(e);
}
const isRpcError = (e: unknown): e is RpcError => typeof e === "object" && e !== null && "code" in e && "message" in e;

interface TokenBalance {
  accountIndex: number;
  mint: string;
  owner: string;
  programId: string;
  uiTokenAmount: { amount: string; decimals: number; uiAmount: number; uiAmountString: string };
}

interface Landed {
  slot: bigint;
  err: Json;
  wire: Transaction;
  fee: number;
  pre_lamports: number[];
  post_lamports: number[];
  pre_tokens: TokenBalance[];
  post_tokens: TokenBalance[];
  meta: TransactionMetadata;
}

export interface LiteSvmRpc {
  /** The VM itself, for test SETUP only (airdrops, minting); the adapter goes through `url`. */
  readonly svm: LiteSVM;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly finalize_depth: bigint;
  /** Current slot (= block height). */
  slot(): bigint;
  /** Move the simulated cluster `n` slots forward (commitment and blockhash expiry follow). */
  advance(n?: number): void;
  /** Number of transactions that landed (success or failed). */
  landedCount(): number;
  close(): Promise<void>;
}

export async function startLiteSvmRpc(opts: { finalize_depth?: number } = {}): Promise<LiteSvmRpc> {
  const finalize_depth = BigInt(opts.finalize_depth ?? 32);
  const svm = new LiteSVM().withBlockhashCheck(false);
  let slot = 1n;
  svm.warpToSlot(slot);
  const issued = new Map<string, bigint>(); // blockhash -> block height it was issued at
  issued.set(svm.latestBlockhash(), slot);
  const landed = new Map<string, Landed>(); // in landing order
  const b58 = getBase58Decoder();
  const b64out = getBase64Decoder();
  const ctx = () => ({ slot: Number(slot) });
  const heightAt = (commitment: unknown): bigint => {
    const back = commitment === "finalized" ? finalize_depth : commitment === "processed" ? 0n : 1n;
    return slot > back ? slot - back : 0n;
  };
  const depthOf = (t: Landed) => slot - t.slot;
  const levelOf = (t: Landed): "processed" | "confirmed" | "finalized" =>
    depthOf(t) >= finalize_depth ? "finalized" : depthOf(t) >= 1n ? "confirmed" : "processed";
  const rank = { processed: 0, confirmed: 1, finalized: 2 } as const;
  const commitmentOf = (cfg: unknown): keyof typeof rank => {
    const c = (cfg as { commitment?: string } | undefined)?.commitment;
    return c === "processed" || c === "confirmed" ? c : "finalized"; // the RPC default is finalized
  };

  const tokenBalances = (keys: readonly Address[]): TokenBalance[] => {
    const out: TokenBalance[] = [];
    keys.forEach((k, accountIndex) => {
      const acc = svm.getAccount(k);
      if (!acc.exists || acc.programAddress !== TOKEN_PROGRAM_ADDRESS || acc.data.length !== TOKEN_ACCOUNT_SIZE) return;
      const t = getTokenDecoder().decode(acc.data);
      const mint = svm.getAccount(t.mint);
      const decimals = mint.exists ? getMintDecoder().decode(mint.data).decimals : 0;
      const ui = Number(t.amount) / 10 ** decimals;
      out.push({ accountIndex, mint: t.mint, owner: t.owner, programId: TOKEN_PROGRAM_ADDRESS, uiTokenAmount: { amount: t.amount.toString(), decimals, uiAmount: ui, uiAmountString: String(ui) } });
    });
    return out;
  };
  const statusOf = (t: Landed): Json => (t.err === null ? { Ok: null } : { Err: t.err });
  const lamportsOf = (keys: readonly Address[]) => keys.map((k) => Number(svm.getBalance(k) ?? 0n));

  const methods: Record<string, (params: Json[]) => Json> = {
    getSlot: ([cfg]) => Number(heightAt((cfg as { commitment?: string } | undefined)?.commitment ?? "finalized")),
    getBlockHeight: ([cfg]) => Number(heightAt((cfg as { commitment?: string } | undefined)?.commitment ?? "finalized")),
    getLatestBlockhash: () => {
      const blockhash = svm.latestBlockhash();
      const at = issued.get(blockhash) ?? slot;
      return { context: ctx(), value: { blockhash, lastValidBlockHeight: Number(at + BLOCKHASH_VALID_BLOCKS) } };
    },
    isBlockhashValid: ([hash]) => {
      const at = issued.get(String(hash));
      return { context: ctx(), value: at !== undefined && slot <= at + BLOCKHASH_VALID_BLOCKS };
    },
    getBalance: ([addr]) => ({ context: ctx(), value: Number(svm.getBalance(address(String(addr))) ?? 0n) }),
    getAccountInfo: ([addr]) => {
      const acc = svm.getAccount(address(String(addr)));
      if (!acc.exists) return { context: ctx(), value: null };
      return {
        context: ctx(),
        value: { data: [b64out.decode(acc.data), "base64"], executable: acc.executable, lamports: Number(acc.lamports), owner: acc.programAddress, rentEpoch: 0, space: acc.data.length },
      };
    },
    getTokenAccountBalance: ([addr]) => {
      const acc = svm.getAccount(address(String(addr)));
      if (!acc.exists || acc.programAddress !== TOKEN_PROGRAM_ADDRESS) throw rpcError(-32602, "Invalid param: could not find account");
      const [b] = tokenBalances([acc.address]);
      if (!b) throw rpcError(-32602, "Invalid param: not a Token account");
      return { context: ctx(), value: b.uiTokenAmount };
    },
    getMinimumBalanceForRentExemption: ([len]) => Number(svm.minimumBalanceForRentExemption(BigInt(Number(len)))),
    sendTransaction: ([wire, cfg]) => {
      const tx = getTransactionDecoder().decode(getBase64Encoder().encode(String(wire)));
      const first = Object.values(tx.signatures)[0];
      if (!first) throw rpcError(-32602, "transaction has no signature");
      const sig = b58.decode(first);
      if (landed.has(sig)) throw rpcError(-32002, "Transaction simulation failed: This transaction has already been processed", { err: "AlreadyProcessed", logs: [] });
      const msg = getCompiledTransactionMessageDecoder().decode(tx.messageBytes);
      const lifetime = msg.lifetimeToken;
      const at = issued.get(lifetime);
      if (at === undefined || slot > at + BLOCKHASH_VALID_BLOCKS) {
        throw rpcError(-32002, "Transaction simulation failed: Blockhash not found", { err: "BlockhashNotFound", logs: [] });
      }
      const keys = msg.staticAccounts;
      const pre_lamports = lamportsOf(keys);
      const pre_tokens = tokenBalances(keys);
      const res = svm.sendTransaction(tx);
      const skipPreflight = (cfg as { skipPreflight?: boolean } | undefined)?.skipPreflight === true;
      const failed = res instanceof FailedTransactionMetadata;
      if (failed && !skipPreflight) {
        throw rpcError(-32002, `Transaction simulation failed: ${JSON.stringify(errorJson(res.err()))}`, { err: errorJson(res.err()), logs: res.meta().logs() });
      }
      const meta = failed ? res.meta() : res;
      const post_lamports = lamportsOf(keys);
      landed.set(sig, {
        slot,
        err: failed ? errorJson(res.err()) : null,
        wire: tx,
        fee: Math.max(0, (pre_lamports[0] ?? 0) - (post_lamports[0] ?? 0)),
        pre_lamports,
        post_lamports,
        pre_tokens,
        post_tokens: tokenBalances(keys),
        meta,
      });
      return sig;
    },
    getSignatureStatuses: ([sigs]) => ({
      context: ctx(),
      value: (sigs as string[]).map((s) => {
        const t = landed.get(s);
        if (!t) return null;
        const level = levelOf(t);
        return { slot: Number(t.slot), confirmations: level === "finalized" ? null : Number(depthOf(t)), err: t.err, confirmationStatus: level, status: statusOf(t) };
      }),
    }),
    getSignaturesForAddress: ([addr, cfg]) => {
      const c = (cfg ?? {}) as { limit?: number; before?: string; until?: string };
      const want = commitmentOf(cfg);
      if (want === "processed") throw rpcError(-32602, "Invalid params: processed commitment is not supported");
      const limit = Math.min(c.limit ?? 1000, 1000);
      const newestFirst = [...landed.entries()].reverse().filter(([, t]) => getCompiledTransactionMessageDecoder().decode(t.wire.messageBytes).staticAccounts.includes(address(String(addr))));
      const out: Json[] = [];
      let started = c.before === undefined;
      for (const [sig, t] of newestFirst) {
        if (!started) {
          if (sig === c.before) started = true;
          continue;
        }
        if (sig === c.until) break;
        if (rank[levelOf(t)] < rank[want]) continue;
        out.push({ signature: sig, slot: Number(t.slot), err: t.err, memo: null, blockTime: null, confirmationStatus: levelOf(t) });
        if (out.length >= limit) break;
      }
      return out;
    },
    getTransaction: ([sig, cfg]) => {
      const t = landed.get(String(sig));
      const want = commitmentOf(cfg);
      if (want === "processed") throw rpcError(-32602, "Invalid params: processed commitment is not supported");
      if (!t || rank[levelOf(t)] < rank[want]) return null;
      const msg = getCompiledTransactionMessageDecoder().decode(t.wire.messageBytes);
      if (!("instructions" in msg)) throw rpcError(-32603, "only legacy and v0 transactions are supported");
      const inner = t.meta.innerInstructions().map((list, index) => ({
        index,
        instructions: list.map((ii) => {
          const c = ii.instruction();
          return { programIdIndex: c.programIdIndex(), accounts: [...c.accounts()], data: b58.decode(c.data()), stackHeight: ii.stackHeight() };
        }),
      }));
      return {
        slot: Number(t.slot),
        blockTime: null,
        version: msg.version === "legacy" ? "legacy" : 0,
        transaction: {
          signatures: Object.values(t.wire.signatures).map((s) => (s ? b58.decode(s) : "")),
          message: {
            accountKeys: [...msg.staticAccounts],
            header: {
              numRequiredSignatures: msg.header.numSignerAccounts,
              numReadonlySignedAccounts: msg.header.numReadonlySignerAccounts,
              numReadonlyUnsignedAccounts: msg.header.numReadonlyNonSignerAccounts,
            },
            recentBlockhash: msg.lifetimeToken,
            instructions: msg.instructions.map((ix) => ({
              programIdIndex: ix.programAddressIndex,
              accounts: [...(ix.accountIndices ?? [])],
              data: b58.decode(ix.data ?? new Uint8Array()),
              stackHeight: null,
            })),
          },
        },
        meta: {
          err: t.err,
          status: statusOf(t),
          fee: t.fee,
          preBalances: t.pre_lamports,
          postBalances: t.post_lamports,
          preTokenBalances: t.pre_tokens as unknown as Json,
          postTokenBalances: t.post_tokens as unknown as Json,
          innerInstructions: inner,
          logMessages: t.meta.logs(),
          loadedAddresses: { writable: [], readonly: [] },
          computeUnitsConsumed: Number(t.meta.computeUnitsConsumed()),
          rewards: [],
        },
      };
    },
  };

  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString("utf8")));
    req.on("end", () => {
      let id: Json = null;
      let out: Json;
      try {
        const parsed = JSON.parse(body) as { id?: Json; method?: string; params?: Json[] };
        id = parsed.id ?? null;
        const m = parsed.method !== undefined ? methods[parsed.method] : undefined;
        if (!m) throw rpcError(-32601, `Method not found: ${String(parsed.method)}`);
        out = { jsonrpc: "2.0", id, result: m(parsed.params ?? []) };
      } catch (e) {
        out = { jsonrpc: "2.0", id, error: (isRpcError(e) ? e : rpcError(-32603, e instanceof Error ? e.message : String(e))) as unknown as Json };
      }
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(out));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const onExit = () => server.close();
  process.once("exit", onExit);

  return {
    svm,
    url: `http://127.0.0.1:${port}`,
    finalize_depth,
    slot: () => slot,
    advance(n = 1) {
      if (!Number.isInteger(n) || n < 1) throw new RangeError(`advance: n must be a positive integer, got ${n}`);
      slot += BigInt(n);
      svm.warpToSlot(slot);
      svm.expireBlockhash(); // a fresh blockhash for the new slot
      issued.set(svm.latestBlockhash(), slot);
    },
    landedCount: () => landed.size,
    close: () =>
      new Promise<void>((resolve) => {
        process.removeListener("exit", onExit);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
