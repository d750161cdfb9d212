/**
 * The Base rail's chain port (ADR 0080): everything the Base adapter asks of the chain, over
 * viem's JSON-RPC client, with no storage of its own. Three parts:
 *
 * - Deposits: `verifyDeposit` re-reads one Transfer log from the chain and returns verified facts
 *   or a typed refusal (seed 004 §4.3: nothing is credited on a listener's word alone);
 *   `scanDeposits` finds candidate deposits over a block range with a cursor VALUE that the
 *   caller persists (block number + hash, so a reorg below the cursor is noticed and rewound).
 * - Payouts: `signPayout` (explicit nonce and fees, returns the raw tx and its hash so the caller
 *   records them BEFORE broadcasting), `broadcast` (idempotent), `getTransactionFate`.
 * - Hot wallet: balances and a pre-flight check before signing.
 *
 * Amounts: USDC base units are micro-USD (6 decimals, asserted at connect time) in `_micro`
 * bigints; ETH in `_wei` bigints; block numbers and confirmations are bigints (the including
 * block is confirmation 1). Expected failures are returned as typed values with a `reason`
 * sentence; transport failures (node unreachable, timeouts) are thrown, and the caller retries.
 */
import {
  BaseError,
  BlockNotFoundError,
  HttpRequestError,
  TimeoutError,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
  createPublicClient,
  decodeEventLog,
  defineChain,
  encodeEventTopics,
  encodeFunctionData,
  erc20Abi,
  getAddress,
  http,
  isAddressEqual,
  keccak256,
  parseAbiItem,
  parseTransaction,
  zeroAddress,
  type Address,
  type Chain,
  type Hash,
  type Hex,
  type Log,
  type PublicClient,
  type Transport,
} from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import type { BaseRailConfig } from "./config.js";

/** USDC's decimals: one base unit = 1 micro-USD (ARCHITECTURE.md, money model). */
export const USDC_DECIMALS = 6;

/**
 * Gas limit used for a payout when the caller has no better figure: an ERC-20 transfer to a
 * fresh holder costs about 35–65k gas (OpenZeppelin ERC-20 ~52k, Base USDC proxy ~62k); the
 * unused part is not charged, but the pre-flight reserves all of it.
 */
export const PAYOUT_GAS_LIMIT = 100_000n;

/** keccak256("Transfer(address,address,uint256)"): topic 0 of an ERC-20 Transfer log. */
export const TRANSFER_TOPIC: Hex = encodeEventTopics({ abi: erc20Abi, eventName: "Transfer" })[0];

const TRANSFER_EVENT = parseAbiItem("event Transfer(address indexed from, address indexed to, uint256 value)");

/** Where a deposit scan has got to: the last block whose deposits were all reported final. */
export interface ScanCursor {
  readonly block_number: bigint;
  readonly block_hash: Hash;
}

/** One ERC-20 Transfer of the configured token to the deposit address, as read from the chain. */
export interface DepositFacts {
  readonly chain_id: number;
  readonly tx_hash: Hash;
  readonly log_index: number;
  /** Token contract (EIP-55): always the configured USDC in a verified deposit. */
  readonly token: Address;
  /** Sender (EIP-55); the daemon credits only a sender bound to an agent. */
  readonly from: Address;
  /** Recipient (EIP-55): always the configured deposit address. */
  readonly to: Address;
  readonly amount_micro: bigint;
  readonly block_number: bigint;
  readonly block_hash: Hash;
  /** head - block_number + 1 when read. */
  readonly confirmations: bigint;
}

/** What a reporter claims about a deposit; every field given must match the chain. */
export interface DepositClaim {
  readonly from?: Address;
  readonly amount_micro?: bigint;
  readonly block_number?: bigint;
  readonly block_hash?: Hash;
}

export type DepositRefusal =
  | { kind: "unknown_tx"; reason: string }
  | { kind: "reverted"; block_number: bigint; reason: string }
  | { kind: "not_canonical"; block_number: bigint; reason: string }
  | { kind: "log_not_found"; log_index: number; reason: string }
  | { kind: "not_a_transfer"; log_index: number; reason: string }
  | { kind: "wrong_token"; token: Address; reason: string }
  | { kind: "wrong_recipient"; to: Address; reason: string }
  | { kind: "claim_mismatch"; field: keyof DepositClaim; claimed: string; actual: string; reason: string }
  | { kind: "below_finality"; confirmations: bigint; finality_depth: number; reason: string };

export type DepositVerification = { ok: true; deposit: DepositFacts } | { ok: false; refusal: DepositRefusal };

export interface ScanResult {
  /** The cursor to persist (unchanged when nothing new is final, or rewound after a reorg). */
  readonly cursor: ScanCursor;
  /** Deposits in blocks (old cursor, new cursor], all at finality depth, in chain order. */
  readonly final: readonly DepositFacts[];
  /** Deposits above the new cursor, not yet at depth: progress to show, never to credit. */
  readonly tentative: readonly DepositFacts[];
  /** Set when the cursor's block is no longer canonical (a reorg deeper than the finality depth). */
  readonly reorg: null | { block_number: bigint; expected_hash: Hash; actual_hash: Hash | null };
  /** False when the final range was cut at the log-range bound: scan again right away. */
  readonly caught_up: boolean;
}

/** An unsigned ERC-20 `transfer` payout with everything that fixes its hash chosen by the caller. */
export interface PayoutTxRequest {
  readonly to: Address;
  readonly amount_micro: bigint;
  /** The hot wallet's nonce for this payout, allocated and recorded by the caller. */
  readonly nonce: number;
  readonly gas_limit: bigint;
  readonly max_fee_per_gas: bigint;
  readonly max_priority_fee_per_gas: bigint;
}

/** A signed payout: record `raw` and `hash` durably BEFORE broadcasting `raw`. */
export interface SignedPayout extends PayoutTxRequest {
  readonly chain_id: number;
  readonly from: Address;
  readonly token: Address;
  readonly raw: Hex;
  readonly hash: Hash;
}

export type BroadcastResult =
  | { ok: true; hash: Hash; outcome: "accepted" | "already_known" | "already_landed" }
  | {
      ok: false;
      hash: Hash;
      /**
       * nonce_consumed: the node says the nonce is used and this hash is not on chain (check
       * getTransactionFate for `replaced` before treating it as final); nonce_in_use: another
       * pending tx holds the nonce; insufficient_funds: not enough ETH for gas; rejected: other.
       * None of these proves the tx can never land: only a `replaced` fate does.
       */
      kind: "nonce_consumed" | "nonce_in_use" | "insufficient_funds" | "rejected";
      reason: string;
    };

export type TransactionFate =
  | { kind: "pending"; hash: Hash }
  | {
      kind: "landed";
      hash: Hash;
      status: "success" | "reverted";
      block_number: bigint;
      block_hash: Hash;
      confirmations: bigint;
      /** confirmations >= finality depth. */
      final: boolean;
      /** gas_used × effective gas price (the L2 execution fee; an OP-stack L1 data fee is extra). */
      fee_wei: bigint;
    }
  /** The nonce was consumed at finality depth by another transaction: this one can never land. */
  | { kind: "replaced"; hash: Hash; nonce: number; reason: string }
  /** Not known to the node (never arrived, or dropped): re-broadcast the same raw tx. */
  | { kind: "unknown"; hash: Hash };

export interface HotWalletBalances {
  readonly address: Address;
  readonly usdc_micro: bigint;
  readonly eth_wei: bigint;
}

export interface PreflightRequest {
  readonly amount_micro: bigint;
  readonly gas_limit: bigint;
  readonly max_fee_per_gas: bigint;
  /** USDC already promised to signed payouts that have not landed yet. */
  readonly reserved_micro?: bigint;
  /** ETH already promised to gas of signed payouts that have not landed yet (and any L1-fee margin). */
  readonly reserved_wei?: bigint;
}

export type PreflightResult =
  | { ok: true; balances: HotWalletBalances }
  | { ok: false; kind: "insufficient_usdc"; have_micro: bigint; need_micro: bigint; reason: string }
  | { ok: false; kind: "insufficient_gas"; have_wei: bigint; need_wei: bigint; reason: string };

/** Raised by connectBaseChain when the node or the token does not match the configuration. */
export class BaseChainStartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BaseChainStartupError";
  }
}

/** Dependencies of every chain function (explicit, so each is testable alone). */
export interface BaseChainDeps {
  readonly client: PublicClient<Transport, Chain>;
  readonly config: BaseRailConfig;
  readonly account: PrivateKeyAccount;
}

// ---- deposits ---------------------------------------------------------------------------

function confirmationsOf(head: bigint, block_number: bigint): bigint {
  return head >= block_number ? head - block_number + 1n : 0n;
}

/** The canonical hash at `block_number`, or null when the chain is shorter than that. */
async function canonicalHash(deps: BaseChainDeps, block_number: bigint): Promise<Hash | null> {
  try {
    const block = await deps.client.getBlock({ blockNumber: block_number });
    return block.hash;
  } catch (e) {
    if (e instanceof BlockNotFoundError) return null;
    throw e;
  }
}

/** Decode an ERC-20 Transfer(from, to, value) log strictly; null if it is anything else. */
function decodeTransfer(log: Pick<Log, "topics" | "data">): { from: Address; to: Address; value: bigint } | null {
  if (log.topics.length !== 3 || log.topics[0] !== TRANSFER_TOPIC) return null; // ERC-721 Transfer has 4 topics
  try {
    const d = decodeEventLog({ abi: erc20Abi, eventName: "Transfer", topics: log.topics as [Hex, Hex, Hex], data: log.data, strict: true });
    return { from: getAddress(d.args.from), to: getAddress(d.args.to), value: d.args.value };
  } catch {
    return null;
  }
}

/**
 * Verify one reported deposit on chain: the receipt exists and is on the canonical chain, its
 * status is success, log `log_index` is an ERC-20 Transfer emitted by the configured token to the
 * configured deposit address, every claimed field matches, and the block has `finality_depth`
 * confirmations. Checks run in that order, so a forged report is refused for what is wrong with
 * it whatever its depth. A tx known but not mined is `below_finality` with 0 confirmations.
 * Whether `from` is bound to an agent is the daemon's check (it holds the bindings).
 */
export async function verifyDeposit(
  deps: BaseChainDeps,
  req: { tx_hash: Hash; log_index: number; claimed?: DepositClaim },
): Promise<DepositVerification> {
  const { config, client } = deps;
  const refuse = (refusal: DepositRefusal): DepositVerification => ({ ok: false, refusal });
  let receipt;
  try {
    receipt = await client.getTransactionReceipt({ hash: req.tx_hash });
  } catch (e) {
    if (!(e instanceof TransactionReceiptNotFoundError)) throw e;
    try {
      await client.getTransaction({ hash: req.tx_hash });
      return refuse({ kind: "below_finality", confirmations: 0n, finality_depth: config.finality_depth, reason: `transaction ${req.tx_hash} is pending (not in a block yet)` });
    } catch (e2) {
      if (!(e2 instanceof TransactionNotFoundError)) throw e2;
      return refuse({ kind: "unknown_tx", reason: `transaction ${req.tx_hash} is not on chain ${config.chain_id}` });
    }
  }
  const head = await client.getBlockNumber();
  const canonical = await canonicalHash(deps, receipt.blockNumber);
  if (canonical !== receipt.blockHash) {
    return refuse({ kind: "not_canonical", block_number: receipt.blockNumber, reason: `block ${receipt.blockNumber} of transaction ${req.tx_hash} is no longer on the canonical chain` });
  }
  if (receipt.status !== "success") {
    return refuse({ kind: "reverted", block_number: receipt.blockNumber, reason: `transaction ${req.tx_hash} reverted: it moved no tokens` });
  }
  const log = receipt.logs.find((l) => l.logIndex === req.log_index);
  if (log && log.transactionHash?.toLowerCase() !== req.tx_hash.toLowerCase()) {
    throw new Error(`verifyDeposit: node returned log ${req.log_index} of ${log.transactionHash} in the receipt of ${req.tx_hash}`);
  }
  if (!log) {
    return refuse({ kind: "log_not_found", log_index: req.log_index, reason: `transaction ${req.tx_hash} has no log with index ${req.log_index}` });
  }
  const token = getAddress(log.address);
  if (!isAddressEqual(token, config.token_address)) {
    return refuse({ kind: "wrong_token", token, reason: `log ${req.log_index} was emitted by ${token}, not by the configured USDC ${config.token_address}` });
  }
  const transfer = decodeTransfer(log);
  if (!transfer) {
    return refuse({ kind: "not_a_transfer", log_index: req.log_index, reason: `log ${req.log_index} of ${req.tx_hash} is not an ERC-20 Transfer` });
  }
  if (!isAddressEqual(transfer.to, config.deposit_address)) {
    return refuse({ kind: "wrong_recipient", to: transfer.to, reason: `the Transfer goes to ${transfer.to}, not to the deposit address ${config.deposit_address}` });
  }
  const deposit: DepositFacts = {
    chain_id: config.chain_id,
    tx_hash: req.tx_hash,
    log_index: req.log_index,
    token,
    from: transfer.from,
    to: transfer.to,
    amount_micro: transfer.value,
    block_number: receipt.blockNumber,
    block_hash: receipt.blockHash,
    confirmations: confirmationsOf(head, receipt.blockNumber),
  };
  const mismatch = claimMismatch(deposit, req.claimed ?? {});
  if (mismatch) return refuse(mismatch);
  if (deposit.confirmations < BigInt(config.finality_depth)) {
    return refuse({
      kind: "below_finality",
      confirmations: deposit.confirmations,
      finality_depth: config.finality_depth,
      reason: `${deposit.confirmations} of ${config.finality_depth} confirmations`,
    });
  }
  return { ok: true, deposit };
}

function claimMismatch(actual: DepositFacts, claimed: DepositClaim): DepositRefusal | null {
  const checks: { field: keyof DepositClaim; claimed: string | undefined; actual: string; equal: boolean }[] = [
    { field: "from", claimed: claimed.from, actual: actual.from, equal: claimed.from === undefined || isAddressEqual(claimed.from, actual.from) },
    { field: "amount_micro", claimed: claimed.amount_micro?.toString(), actual: actual.amount_micro.toString(), equal: claimed.amount_micro === undefined || claimed.amount_micro === actual.amount_micro },
    { field: "block_number", claimed: claimed.block_number?.toString(), actual: actual.block_number.toString(), equal: claimed.block_number === undefined || claimed.block_number === actual.block_number },
    { field: "block_hash", claimed: claimed.block_hash, actual: actual.block_hash, equal: claimed.block_hash === undefined || claimed.block_hash.toLowerCase() === actual.block_hash.toLowerCase() },
  ];
  const bad = checks.find((c) => !c.equal);
  if (!bad || bad.claimed === undefined) return null;
  return { kind: "claim_mismatch", field: bad.field, claimed: bad.claimed, actual: bad.actual, reason: `claimed ${bad.field} ${bad.claimed} but the chain says ${bad.actual}` };
}

/** A cursor just before `from_block` (the first block to scan); from_block 0 starts at genesis. */
export async function initialCursor(deps: BaseChainDeps, from_block: bigint): Promise<ScanCursor> {
  if (from_block < 0n) throw new RangeError(`from_block must be >= 0, got ${from_block}`);
  const n = from_block === 0n ? 0n : from_block - 1n;
  const hash = await canonicalHash(deps, n);
  if (!hash) throw new RangeError(`block ${n} does not exist yet (head is lower)`);
  return { block_number: n, block_hash: hash };
}

/** Persistable text form of a cursor: "<block number>:<block hash>". */
export function formatCursor(c: ScanCursor): string {
  return `${c.block_number}:${c.block_hash}`;
}

/** Parse formatCursor's output. Throws RangeError naming the rule. */
export function parseCursor(text: string): ScanCursor {
  const m = /^(\d+):(0x[0-9a-fA-F]{64})$/.exec(text);
  if (!m) throw new RangeError(`cursor: expected "<block number>:<0x + 64 hex block hash>", got "${text}"`);
  return { block_number: BigInt(m[1] as string), block_hash: (m[2] as string).toLowerCase() as Hash };
}

async function transferLogs(deps: BaseChainDeps, from_block: bigint, to_block: bigint, head: bigint): Promise<DepositFacts[]> {
  if (to_block < from_block) return [];
  const logs = await deps.client.getLogs({
    address: deps.config.token_address,
    event: TRANSFER_EVENT,
    args: { to: deps.config.deposit_address },
    fromBlock: from_block,
    toBlock: to_block,
    strict: true,
  });
  const out: DepositFacts[] = [];
  for (const l of logs) {
    if (l.removed || l.blockNumber === null || l.blockHash === null || l.transactionHash === null || l.logIndex === null) continue;
    const t = decodeTransfer(l);
    if (!t || !isAddressEqual(t.to, deps.config.deposit_address)) continue;
    out.push({
      chain_id: deps.config.chain_id,
      tx_hash: l.transactionHash,
      log_index: l.logIndex,
      token: getAddress(l.address),
      from: t.from,
      to: t.to,
      amount_micro: t.value,
      block_number: l.blockNumber,
      block_hash: l.blockHash,
      confirmations: confirmationsOf(head, l.blockNumber),
    });
  }
  return out;
}

/**
 * Scan for deposits after `cursor`. Blocks with `finality_depth` confirmations are scanned at
 * most `log_range_max_blocks` at a time and returned as `final`; the new cursor is the last of
 * them (with its hash). The blocks above it are re-read on every scan and returned as
 * `tentative`, so a deposit that a reorg removes simply stops appearing. If the cursor's block
 * hash is no longer canonical (a reorg deeper than the finality depth) the result reports it and
 * rewinds the cursor by `finality_depth` blocks: deposits there are reported again, and the
 * caller's (chain id, tx hash, log index) key keeps them credited once. Candidates are not yet
 * verified: pass each through verifyDeposit before reporting it to the daemon.
 */
export async function scanDeposits(deps: BaseChainDeps, cursor: ScanCursor): Promise<ScanResult> {
  const depth = BigInt(deps.config.finality_depth);
  const head = await deps.client.getBlockNumber();
  const actual = await canonicalHash(deps, cursor.block_number);
  if (actual === null || actual.toLowerCase() !== cursor.block_hash.toLowerCase()) {
    const back = cursor.block_number > depth ? cursor.block_number - depth : 0n;
    const backHash = await canonicalHash(deps, back);
    if (!backHash) throw new Error(`scan: block ${back} vanished while rewinding`);
    return {
      cursor: { block_number: back, block_hash: backHash },
      final: [],
      tentative: [],
      reorg: { block_number: cursor.block_number, expected_hash: cursor.block_hash, actual_hash: actual },
      caught_up: false,
    };
  }
  const finalTip = head + 1n >= depth ? head + 1n - depth : -1n; // highest block with `depth` confirmations
  let cursorNext: ScanCursor = cursor;
  let final: DepositFacts[] = [];
  let caught_up = true;
  if (finalTip > cursor.block_number) {
    const to = cursor.block_number + BigInt(deps.config.log_range_max_blocks) < finalTip ? cursor.block_number + BigInt(deps.config.log_range_max_blocks) : finalTip;
    caught_up = to === finalTip;
    const toHashBefore = await canonicalHash(deps, to);
    final = await transferLogs(deps, cursor.block_number + 1n, to, head);
    const toHashAfter = await canonicalHash(deps, to);
    if (!toHashBefore || toHashBefore !== toHashAfter || final.some((d) => d.block_number === to && d.block_hash !== toHashAfter)) {
      // The range changed under us: report nothing, keep the cursor, try again next poll.
      return { cursor, final: [], tentative: [], reorg: null, caught_up: false };
    }
    for (const d of final) {
      if (d.block_number <= cursor.block_number || d.block_number > to) {
        throw new Error(`scanDeposits: node returned a log of block ${d.block_number} for range ${cursor.block_number + 1n}..${to}`);
      }
    }
    cursorNext = { block_number: to, block_hash: toHashAfter as Hash };
  }
  const tentative = caught_up ? await transferLogs(deps, cursorNext.block_number + 1n, head, head) : [];
  return { cursor: cursorNext, final, tentative, reorg: null, caught_up };
}

// ---- payouts ----------------------------------------------------------------------------

/**
 * Build and sign an ERC-20 `transfer(to, amount_micro)` of the configured token from the hot
 * wallet, as an EIP-1559 transaction with exactly the given nonce, gas limit and fees. No network
 * call: the result's hash is final, so the caller can record `raw` and `hash` before anything is
 * sent. Throws RangeError on an amount <= 0, the zero address, or priority fee > max fee.
 */
export async function signPayout(deps: BaseChainDeps, req: PayoutTxRequest): Promise<SignedPayout> {
  if (req.amount_micro <= 0n) throw new RangeError(`amount_micro must be > 0, got ${req.amount_micro}`);
  if (isAddressEqual(req.to, zeroAddress)) throw new RangeError("to: the zero address burns tokens");
  if (!Number.isSafeInteger(req.nonce) || req.nonce < 0) throw new RangeError(`nonce must be a non-negative integer, got ${req.nonce}`);
  if (req.gas_limit <= 0n) throw new RangeError(`gas_limit must be > 0, got ${req.gas_limit}`);
  if (req.max_priority_fee_per_gas > req.max_fee_per_gas) {
    throw new RangeError(`max_priority_fee_per_gas (${req.max_priority_fee_per_gas}) must be <= max_fee_per_gas (${req.max_fee_per_gas})`);
  }
  const to = getAddress(req.to);
  const raw = await deps.account.signTransaction({
    type: "eip1559",
    chainId: deps.config.chain_id,
    nonce: req.nonce,
    to: deps.config.token_address,
    value: 0n,
    data: encodeFunctionData({ abi: erc20Abi, functionName: "transfer", args: [to, req.amount_micro] }),
    gas: req.gas_limit,
    maxFeePerGas: req.max_fee_per_gas,
    maxPriorityFeePerGas: req.max_priority_fee_per_gas,
  });
  // Invariant: the bytes we hand out for recording say exactly what was asked, nothing else.
  const back = parseTransaction(raw);
  if (
    back.chainId !== deps.config.chain_id ||
    back.nonce !== req.nonce ||
    back.to === undefined || back.to === null ||
    !isAddressEqual(back.to, deps.config.token_address) ||
    (back.value ?? 0n) !== 0n ||
    back.data !== encodeFunctionData({ abi: erc20Abi, functionName: "transfer", args: [to, req.amount_micro] })
  ) {
    throw new Error(`signPayout: the signed transaction does not match the request (nonce ${req.nonce}, to ${to})`);
  }
  return {
    ...req,
    to,
    chain_id: deps.config.chain_id,
    from: deps.account.address,
    token: deps.config.token_address,
    raw,
    hash: keccak256(raw),
  };
}

function errorText(e: unknown): string {
  if (e instanceof BaseError) return `${e.details ?? ""} ${e.shortMessage} ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

function isTransportFailure(e: unknown): boolean {
  return e instanceof BaseError && e.walk((x) => x instanceof HttpRequestError || x instanceof TimeoutError) !== null;
}

/**
 * Send a signed transaction. Idempotent: sending the same raw tx again while it is pending
 * ("already known" / "already imported") or after it landed ("nonce too low" and this hash is on
 * chain) is success. A node refusal comes back typed (see BroadcastResult); transport failures
 * are thrown so the caller retries the same raw tx.
 */
export async function broadcast(deps: BaseChainDeps, raw: Hex): Promise<BroadcastResult> {
  const hash = keccak256(raw);
  try {
    const got = await deps.client.sendRawTransaction({ serializedTransaction: raw });
    if (got.toLowerCase() !== hash.toLowerCase()) throw new Error(`node returned hash ${got} for a transaction whose hash is ${hash}`);
    return { ok: true, hash, outcome: "accepted" };
  } catch (e) {
    if (isTransportFailure(e)) throw e;
    const text = errorText(e);
    if (/already known|already imported|known transaction|already exists/i.test(text)) {
      return { ok: true, hash, outcome: "already_known" };
    }
    if (/nonce too low|nonce has already been used|nonce is too low|invalid nonce/i.test(text)) {
      const fate = await getTransactionFate(deps, hash);
      if (fate.kind === "landed") return { ok: true, hash, outcome: "already_landed" };
      if (fate.kind === "pending") return { ok: true, hash, outcome: "already_known" };
      return { ok: false, hash, kind: "nonce_consumed", reason: `the hot wallet's nonce was used by another transaction and ${hash} is not on chain` };
    }
    if (/replacement transaction underpriced|already in the mempool|nonce.*in use/i.test(text)) {
      return { ok: false, hash, kind: "nonce_in_use", reason: `another pending transaction holds this nonce: ${firstLine(text)}` };
    }
    if (/insufficient funds/i.test(text)) {
      return { ok: false, hash, kind: "insufficient_funds", reason: `the hot wallet cannot pay for gas: ${firstLine(text)}` };
    }
    if (e instanceof BaseError) return { ok: false, hash, kind: "rejected", reason: firstLine(text) };
    throw e;
  }
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0] ?? "";
}

/**
 * What happened to transaction `hash`: landed (on the canonical chain, with its status,
 * confirmations and fee), pending (in the node's pool), replaced (given `nonce_of`, the sender's
 * nonce at finality depth is past `nonce` and this hash is not on chain: it can never land), or
 * unknown (re-broadcast the recorded raw tx; never sign a new one for the same payout).
 */
export async function getTransactionFate(
  deps: BaseChainDeps,
  hash: Hash,
  nonce_of?: { from: Address; nonce: number },
): Promise<TransactionFate> {
  const { client, config } = deps;
  try {
    const r = await client.getTransactionReceipt({ hash });
    const head = await client.getBlockNumber();
    const canonical = await canonicalHash(deps, r.blockNumber);
    if (canonical === r.blockHash) {
      const confirmations = confirmationsOf(head, r.blockNumber);
      return {
        kind: "landed",
        hash,
        status: r.status,
        block_number: r.blockNumber,
        block_hash: r.blockHash,
        confirmations,
        final: confirmations >= BigInt(config.finality_depth),
        fee_wei: r.gasUsed * r.effectiveGasPrice,
      };
    }
  } catch (e) {
    if (!(e instanceof TransactionReceiptNotFoundError)) throw e;
  }
  try {
    const tx = await client.getTransaction({ hash });
    if (tx.blockNumber === null) return { kind: "pending", hash };
    // Mined but its receipt was not canonical a moment ago: a reorg is in progress; ask again.
    return { kind: "pending", hash };
  } catch (e) {
    if (!(e instanceof TransactionNotFoundError)) throw e;
  }
  if (nonce_of) {
    const head = await client.getBlockNumber();
    const depth = BigInt(config.finality_depth);
    if (head + 1n >= depth) {
      const finalNonce = await client.getTransactionCount({ address: nonce_of.from, blockNumber: head + 1n - depth });
      if (finalNonce > nonce_of.nonce) {
        // Close the race with our own tx landing between the lookups above and this one.
        const again = await getTransactionFate(deps, hash);
        if (again.kind !== "unknown") return again;
        return { kind: "replaced", hash, nonce: nonce_of.nonce, reason: `nonce ${nonce_of.nonce} of ${nonce_of.from} was used by another transaction at finality depth` };
      }
    }
  }
  return { kind: "unknown", hash };
}

// ---- hot wallet -------------------------------------------------------------------------

/** USDC (micro) and ETH (wei) balances of the hot wallet at the latest block. */
export async function hotWalletBalances(deps: BaseChainDeps): Promise<HotWalletBalances> {
  const address = deps.account.address;
  const [usdc_micro, eth_wei] = await Promise.all([
    deps.client.readContract({ address: deps.config.token_address, abi: erc20Abi, functionName: "balanceOf", args: [address] }),
    deps.client.getBalance({ address }),
  ]);
  return { address, usdc_micro, eth_wei };
}

/**
 * Before signing a payout: does the hot wallet hold amount + reserved USDC and
 * gas_limit × max_fee_per_gas + reserved ETH? Refuses with the shortfall named; checks USDC first.
 */
export async function preflightPayout(deps: BaseChainDeps, req: PreflightRequest): Promise<PreflightResult> {
  if (req.amount_micro <= 0n) throw new RangeError(`amount_micro must be > 0, got ${req.amount_micro}`);
  const balances = await hotWalletBalances(deps);
  const need_micro = req.amount_micro + (req.reserved_micro ?? 0n);
  if (balances.usdc_micro < need_micro) {
    return {
      ok: false,
      kind: "insufficient_usdc",
      have_micro: balances.usdc_micro,
      need_micro,
      reason: `hot wallet ${balances.address} holds ${balances.usdc_micro} micro-USDC, the payout needs ${need_micro}`,
    };
  }
  const need_wei = req.gas_limit * req.max_fee_per_gas + (req.reserved_wei ?? 0n);
  if (balances.eth_wei < need_wei) {
    return {
      ok: false,
      kind: "insufficient_gas",
      have_wei: balances.eth_wei,
      need_wei,
      reason: `hot wallet ${balances.address} holds ${balances.eth_wei} wei of ETH, gas for the payout needs up to ${need_wei}`,
    };
  }
  return { ok: true, balances };
}

/** Current EIP-1559 fee suggestion of the node (max fee, priority fee), in wei per gas. */
export async function suggestFees(deps: BaseChainDeps): Promise<{ max_fee_per_gas: bigint; max_priority_fee_per_gas: bigint }> {
  const f = await deps.client.estimateFeesPerGas({ type: "eip1559" });
  return { max_fee_per_gas: f.maxFeePerGas, max_priority_fee_per_gas: f.maxPriorityFeePerGas };
}

/** The hot wallet's nonce: `latest` counts mined transactions, `pending` also the node's pool. */
export async function hotWalletNonces(deps: BaseChainDeps): Promise<{ latest: number; pending: number }> {
  const address = deps.account.address;
  const [latest, pending] = await Promise.all([
    deps.client.getTransactionCount({ address, blockTag: "latest" }),
    deps.client.getTransactionCount({ address, blockTag: "pending" }),
  ]);
  return { latest, pending };
}

// ---- the port ---------------------------------------------------------------------------

/** The Base chain port: the functions above bound to one client, configuration and hot wallet. */
export interface BaseChain {
  readonly config: BaseRailConfig;
  /** EIP-55 address of the hot wallet. */
  readonly hot_wallet: Address;
  verifyDeposit(req: { tx_hash: Hash; log_index: number; claimed?: DepositClaim }): Promise<DepositVerification>;
  initialCursor(from_block: bigint): Promise<ScanCursor>;
  scanDeposits(cursor: ScanCursor): Promise<ScanResult>;
  signPayout(req: PayoutTxRequest): Promise<SignedPayout>;
  broadcast(raw: Hex): Promise<BroadcastResult>;
  getTransactionFate(hash: Hash, nonce_of?: { from: Address; nonce: number }): Promise<TransactionFate>;
  balances(): Promise<HotWalletBalances>;
  preflightPayout(req: PreflightRequest): Promise<PreflightResult>;
  suggestFees(): Promise<{ max_fee_per_gas: bigint; max_priority_fee_per_gas: bigint }>;
  nonces(): Promise<{ latest: number; pending: number }>;
  /** The node's latest block number. */
  headNumber(): Promise<bigint>;
}

/**
 * Connect to the node at `config.rpc_url` with the hot wallet key, and check before any use that
 * the node's chain id is `config.chain_id` and the token's `decimals()` is 6 (so one base unit is
 * one micro-USD). Throws BaseChainStartupError otherwise; transport failures are thrown as is.
 */
export async function connectBaseChain(config: BaseRailConfig, hot_wallet_key: Hex): Promise<BaseChain> {
  const chain = defineChain({
    id: config.chain_id,
    name: `base-rail-${config.chain_id}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [config.rpc_url] } },
  });
  // cacheTime 0: viem caches eth_blockNumber for 4 s by default; confirmations must be fresh.
  const client = createPublicClient({ chain, transport: http(config.rpc_url), cacheTime: 0 }) as PublicClient<Transport, Chain>;
  const account = privateKeyToAccount(hot_wallet_key);
  const deps: BaseChainDeps = { client, config, account };

  const node_chain_id = await client.getChainId();
  if (node_chain_id !== config.chain_id) {
    throw new BaseChainStartupError(`BASE_CHAIN_ID is ${config.chain_id} but the node at BASE_RPC_URL is on chain ${node_chain_id}`);
  }
  let decimals: number;
  try {
    decimals = await client.readContract({ address: config.token_address, abi: erc20Abi, functionName: "decimals" });
  } catch (e) {
    if (isTransportFailure(e)) throw e;
    throw new BaseChainStartupError(`BASE_USDC_ADDRESS ${config.token_address} does not answer decimals() on chain ${config.chain_id}: ${firstLine(errorText(e))}`);
  }
  if (decimals !== USDC_DECIMALS) {
    throw new BaseChainStartupError(`BASE_USDC_ADDRESS ${config.token_address} has ${decimals} decimals; the ledger counts micro-USD, so it must have ${USDC_DECIMALS}`);
  }

  return {
    config,
    hot_wallet: account.address,
    verifyDeposit: (req) => verifyDeposit(deps, req),
    initialCursor: (from_block) => initialCursor(deps, from_block),
    scanDeposits: (cursor) => scanDeposits(deps, cursor),
    signPayout: (req) => signPayout(deps, req),
    broadcast: (raw) => broadcast(deps, raw),
    getTransactionFate: (hash, nonce_of) => getTransactionFate(deps, hash, nonce_of),
    balances: () => hotWalletBalances(deps),
    preflightPayout: (req) => preflightPayout(deps, req),
    suggestFees: () => suggestFees(deps),
    nonces: () => hotWalletNonces(deps),
    headNumber: () => client.getBlockNumber(),
  };
}
