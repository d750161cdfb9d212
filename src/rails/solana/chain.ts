/**
 * The Solana rail's chain port (ADR 0090): everything the Solana adapter asks of the chain, over
 * @solana/kit's JSON-RPC client, with no storage of its own. Same shape as the Base port
 * (src/rails/base/chain.ts, ADR 0080), so both rails fit one settlement framework:
 *
 * - Deposits: `verifyDeposit(signature, instruction_index)` re-reads one transaction and returns
 *   verified facts or a typed refusal (seed 004 §4.3: nothing is credited on a report alone).
 * - Payouts: `signPayout` (transferChecked to the author's associated token account, created
 *   idempotently when missing; returns the signed wire transaction and its signature so the
 *   caller records them BEFORE sending), `sendPayout` (idempotent), `getSignatureFate`, and
 *   `resignPayout`, which signs anew only once the recorded blockhash expired without landing.
 * - Hot wallet: balances and a pre-flight check (USDC, and SOL for the fee, ATA rent and the
 *   fee payer's own rent-exempt minimum) before signing.
 *
 * Amounts: USDC base units are micro-USD (6 decimals, asserted at connect time) in `_micro`
 * bigints; SOL in `_lamports` bigints; slots and block heights are bigints. Expected failures are
 * typed values with a `reason` sentence; transport failures are thrown, and the caller retries.
 */
import {
  address,
  appendTransactionMessageInstructions,
  createKeyPairSignerFromBytes,
  createSolanaRpc,
  createTransactionMessage,
  getBase58Decoder,
  getBase58Encoder,
  getBase64EncodedWireTransaction,
  getCompiledTransactionMessageDecoder,
  getSignatureFromTransaction,
  getTransactionDecoder,
  getUtf8Encoder,
  pipe,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signTransactionMessageWithSigners,
  type Address,
  type Base64EncodedWireTransaction,
  type Blockhash,
  type Commitment,
  type Instruction,
  type ReadonlyUint8Array,
  type KeyPairSigner,
  type Rpc,
  type Signature,
  type SolanaRpcApi,
  type Transaction,
} from "@solana/kit";
import {
  ASSOCIATED_TOKEN_PROGRAM_ADDRESS,
  AccountState,
  TOKEN_PROGRAM_ADDRESS,
  TRANSFER_CHECKED_DISCRIMINATOR,
  TRANSFER_DISCRIMINATOR,
  fetchMaybeMint,
  fetchMaybeToken,
  findAssociatedTokenPda,
  getCreateAssociatedTokenIdempotentInstructionAsync,
  getTokenSize,
  getTransferCheckedInstruction,
  getTransferCheckedInstructionDataDecoder,
  getTransferInstructionDataDecoder,
} from "@solana-program/token";
import type { RequiredCommitment, SolanaRailConfig } from "./config.js";

/** USDC's decimals: one base unit = 1 micro-USD (ARCHITECTURE.md, money model). */
export const USDC_DECIMALS = 6;

/** Base fee per signature (lamports); a payout has one signature (the hot wallet). */
export const LAMPORTS_PER_SIGNATURE = 5_000n;

/** The SPL Memo program (v2); a payout carries `masques:payout:<id>` so equal payouts differ. */
export const MEMO_PROGRAM_ADDRESS = address("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr");

const RANK: Record<Commitment, number> = { processed: 0, confirmed: 1, finalized: 2 };

/** Does `have` reach `need`? (processed < confirmed < finalized) */
export function commitmentReaches(have: Commitment | null, need: Commitment): boolean {
  return have !== null && RANK[have] >= RANK[need];
}

// ---- types ------------------------------------------------------------------------------

/** One SPL Token transfer of USDC into the deposit token account, as read from the chain. */
export interface DepositFacts {
  readonly signature: Signature;
  /** Index of the TOP-LEVEL instruction (inner/CPI transfers are refused, ADR 0090). */
  readonly instruction_index: number;
  readonly mint: Address;
  /** Always the configured deposit token account in a verified deposit. */
  readonly destination: Address;
  /** The source token account. */
  readonly source: Address;
  /** Owner of the source token account; the daemon credits only an owner bound to an agent. */
  readonly source_owner: Address;
  /** Signer of the transfer (the owner or a delegate). */
  readonly authority: Address;
  /** From the instruction, checked against the deposit account's token-balance change. */
  readonly amount_micro: bigint;
  readonly slot: bigint;
  readonly commitment: Commitment;
}

/** What a reporter claims; every field given must match the chain. */
export interface DepositClaim {
  readonly source_owner?: Address;
  readonly amount_micro?: bigint;
  readonly slot?: bigint;
}

export type DepositRefusal =
  | { kind: "unknown_signature"; reason: string }
  | { kind: "failed"; slot: bigint; reason: string }
  | { kind: "instruction_not_found"; instruction_index: number; reason: string }
  | { kind: "inner_transfer"; reason: string }
  | { kind: "not_a_transfer"; instruction_index: number; reason: string }
  | { kind: "wrong_mint"; mint: Address; reason: string }
  | { kind: "wrong_destination"; destination: Address; reason: string }
  | { kind: "balance_mismatch"; instruction_micro: bigint; balance_change_micro: bigint; reason: string }
  | { kind: "claim_mismatch"; field: keyof DepositClaim; claimed: string; actual: string; reason: string }
  | { kind: "below_commitment"; commitment: Commitment; required: RequiredCommitment; reason: string };

export type DepositVerification = { ok: true; deposit: DepositFacts } | { ok: false; refusal: DepositRefusal };

export interface PayoutRequest {
  /** The daemon's payout id; carried in a memo, so two equal payouts never share a signature. */
  readonly payout_id: string;
  /** The author's wallet (proven by ownership.ts); USDC goes to its associated token account. */
  readonly destination_owner: Address;
  readonly amount_micro: bigint;
}

/** A signed payout: record `wire_transaction` and `signature` durably BEFORE sending. */
export interface SignedPayout extends PayoutRequest {
  readonly signature: Signature;
  /** Base64 wire transaction: exactly the bytes to send (and to re-send after a crash). */
  readonly wire_transaction: Base64EncodedWireTransaction;
  readonly blockhash: Blockhash;
  /** The transaction can land only while the block height is <= this. */
  readonly last_valid_block_height: bigint;
  readonly source: Address;
  readonly destination: Address;
  /** True when the transaction also creates the destination ATA (idempotently). */
  readonly creates_destination_account: boolean;
  /** Rent the hot wallet puts into the new ATA (0 when it existed): record who pays it. */
  readonly ata_rent_lamports: bigint;
  /** Base fee of the transaction (one signature). */
  readonly fee_lamports: bigint;
}

export type PayoutRefusal =
  | { ok: false; kind: "destination_not_owned"; reason: string }
  | { ok: false; kind: "destination_frozen"; reason: string };

export type SendResult =
  | { ok: true; signature: Signature; outcome: "accepted" | "already_processed" }
  | {
      ok: false;
      signature: Signature;
      /**
       * blockhash_expired: the node no longer knows the blockhash (check getSignatureFate before
       * re-signing); insufficient_funds: USDC or SOL short (nothing landed); rejected: other.
       */
      kind: "blockhash_expired" | "insufficient_funds" | "rejected";
      reason: string;
    };

export type SignatureFate =
  | {
      kind: "landed";
      signature: Signature;
      status: "success" | "failed";
      slot: bigint;
      commitment: Commitment;
      /** commitment reaches SOLANA_PAYOUT_COMMITMENT. */
      final: boolean;
      reason: string | null;
    }
  /**
   * Not seen by the node. blockhash_expired false: it may still land, re-send the SAME recorded
   * wire transaction. true: the finalized block height passed last_valid_block_height, so it can
   * never land; only now may the payout be re-signed (resignPayout) or failed.
   */
  | { kind: "unknown"; signature: Signature; blockhash_expired: boolean };

export type ResignResult =
  | { ok: true; signed: SignedPayout }
  | PayoutRefusal
  | { ok: false; kind: "still_valid" | "landed"; fate: SignatureFate; reason: string };

export interface HotWalletBalances {
  readonly address: Address;
  readonly token_account: Address;
  readonly usdc_micro: bigint;
  readonly sol_lamports: bigint;
}

export interface PreflightRequest {
  readonly destination_owner: Address;
  readonly amount_micro: bigint;
  /** USDC already promised to signed payouts that have not landed yet. */
  readonly reserved_micro?: bigint;
  /** SOL already promised to fees/rent of signed payouts that have not landed yet. */
  readonly reserved_lamports?: bigint;
}

export type PreflightResult =
  | { ok: true; balances: HotWalletBalances; ata_rent_lamports: bigint; fee_lamports: bigint }
  | { ok: false; kind: "insufficient_usdc"; have_micro: bigint; need_micro: bigint; reason: string }
  | { ok: false; kind: "insufficient_sol"; have_lamports: bigint; need_lamports: bigint; reason: string };

/** Raised by connectSolanaChain when the mint or the deposit account do not match the configuration. */
export class SolanaChainStartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SolanaChainStartupError";
  }
}

/** Dependencies of every chain function (explicit, so each is testable alone). */
export interface SolanaChainDeps {
  readonly rpc: Rpc<SolanaRpcApi>;
  readonly config: SolanaRailConfig;
  readonly signer: KeyPairSigner;
  /** The hot wallet's USDC associated token account. */
  readonly hot_token_account: Address;
  /** The resolved deposit token account. */
  readonly deposit_token_account: Address;
}

// ---- deposits ---------------------------------------------------------------------------

interface DecodedTransfer {
  source: Address;
  destination: Address;
  authority: Address;
  mint: Address | null;
  amount: bigint;
}

function decodeTokenTransfer(keys: readonly Address[], accounts: readonly number[], data: ReadonlyUint8Array): DecodedTransfer | null {
  const at = (i: number): Address | null => {
    const k = accounts[i];
    return k === undefined ? null : (keys[k] ?? null);
  };
  if (data[0] === TRANSFER_DISCRIMINATOR && data.length === 9) {
    const [source, destination, authority] = [at(0), at(1), at(2)];
    if (!source || !destination || !authority) return null;
    return { source, destination, authority, mint: null, amount: getTransferInstructionDataDecoder().decode(data).amount };
  }
  if (data[0] === TRANSFER_CHECKED_DISCRIMINATOR && data.length === 10) {
    const [source, mint, destination, authority] = [at(0), at(1), at(2), at(3)];
    if (!source || !mint || !destination || !authority) return null;
    return { source, destination, authority, mint, amount: getTransferCheckedInstructionDataDecoder().decode(data).amount };
  }
  return null;
}

/**
 * Verify one reported deposit on chain. In order: the signature is known (`unknown_signature`);
 * the transaction is readable at `confirmed` or better (else `below_commitment`, since a
 * processed-only transaction can still be rolled back); it succeeded (`failed`); no inner (CPI)
 * SPL Token transfer moves the deposit account's tokens (`inner_transfer`: the documented rule, ADR 0090);
 * top-level instruction `instruction_index` exists (`instruction_not_found`) and is an SPL Token
 * `transfer` / `transferChecked` (`not_a_transfer`); its destination is the configured deposit
 * token account (`wrong_destination`); the mint is the configured USDC (`wrong_mint`); the deposit
 * account's token-balance change equals the sum of the top-level transfers into it (the amount
 * is the chain's balance change, never a memo: `balance_mismatch`); every claimed field matches
 * (`claim_mismatch`); and the status reaches SOLANA_DEPOSIT_COMMITMENT (`below_commitment`).
 * Whether `source_owner` is bound to an agent is the daemon's check (it holds the bindings).
 */
export async function verifyDeposit(
  deps: SolanaChainDeps,
  req: { signature: Signature; instruction_index: number; claimed?: DepositClaim },
): Promise<DepositVerification> {
  const { rpc, config } = deps;
  const refuse = (refusal: DepositRefusal): DepositVerification => ({ ok: false, refusal });
  const required = config.deposit_commitment;
  const deposit_account = deps.deposit_token_account;
  if (!Number.isSafeInteger(req.instruction_index) || req.instruction_index < 0) {
    throw new RangeError(`instruction_index must be a non-negative integer, got ${req.instruction_index}`);
  }
  const [status] = (await rpc.getSignatureStatuses([req.signature], { searchTransactionHistory: true }).send()).value;
  if (!status) return refuse({ kind: "unknown_signature", reason: `transaction ${req.signature} is not known to the cluster` });
  const tx = await rpc
    .getTransaction(req.signature, { commitment: "confirmed", encoding: "json", maxSupportedTransactionVersion: 0 })
    .send();
  const have: Commitment = status.confirmationStatus ?? "processed";
  if (!tx || !tx.meta) {
    return refuse({ kind: "below_commitment", commitment: have, required, reason: `transaction ${req.signature} is only ${have}; it is read once confirmed and credited once ${required}` });
  }
  const slot = BigInt(tx.slot);
  if (tx.meta.err !== null) {
    return refuse({ kind: "failed", slot, reason: `transaction ${req.signature} failed on chain (slot ${slot}): it moved no tokens` });
  }
  const loaded = tx.meta.loadedAddresses;
  const keys: Address[] = [...tx.transaction.message.accountKeys, ...(loaded?.writable ?? []), ...(loaded?.readonly ?? [])];
  const b58 = getBase58Encoder();
  const depositIndex = keys.indexOf(deposit_account);
  for (const group of tx.meta.innerInstructions ?? []) {
    for (const inner of group.instructions) {
      if (keys[Number(inner.programIdIndex)] !== TOKEN_PROGRAM_ADDRESS) continue;
      const t = decodeTokenTransfer(keys, inner.accounts.map(Number), Uint8Array.from(b58.encode(inner.data)));
      if (t && (t.destination === deposit_account || t.source === deposit_account)) {
        return refuse({
          kind: "inner_transfer",
          reason: `instruction ${group.index} of ${req.signature} moves the deposit account's tokens through another program (CPI); only top-level SPL Token transfers are credited`,
        });
      }
    }
  }
  const ixs = tx.transaction.message.instructions;
  const ix = ixs[req.instruction_index];
  if (!ix) {
    return refuse({ kind: "instruction_not_found", instruction_index: req.instruction_index, reason: `transaction ${req.signature} has ${ixs.length} top-level instructions, no index ${req.instruction_index}` });
  }
  const decode = (i: (typeof ixs)[number]): DecodedTransfer | null =>
    keys[Number(i.programIdIndex)] === TOKEN_PROGRAM_ADDRESS ? decodeTokenTransfer(keys, i.accounts.map(Number), Uint8Array.from(b58.encode(i.data))) : null;
  const transfer = decode(ix);
  if (!transfer) {
    return refuse({ kind: "not_a_transfer", instruction_index: req.instruction_index, reason: `instruction ${req.instruction_index} of ${req.signature} is not an SPL Token transfer or transferChecked` });
  }
  if (transfer.destination !== deposit_account) {
    return refuse({ kind: "wrong_destination", destination: transfer.destination, reason: `the transfer goes to ${transfer.destination}, not to the deposit token account ${deposit_account}` });
  }
  const tokenBalance = (list: typeof tx.meta.postTokenBalances, index: number) => (list ?? []).find((b) => Number(b.accountIndex) === index);
  const postDeposit = tokenBalance(tx.meta.postTokenBalances, depositIndex);
  const mint = postDeposit?.mint ?? transfer.mint;
  if (!mint || mint !== config.usdc_mint || (transfer.mint !== null && transfer.mint !== config.usdc_mint)) {
    const seen = transfer.mint ?? mint ?? "(unknown)";
    return refuse({ kind: "wrong_mint", mint: seen as Address, reason: `the transfer moves mint ${seen}, not the configured USDC ${config.usdc_mint}` });
  }
  const pre = BigInt(tokenBalance(tx.meta.preTokenBalances, depositIndex)?.uiTokenAmount.amount ?? "0");
  const post = BigInt(postDeposit?.uiTokenAmount.amount ?? "0");
  let into = 0n;
  for (const other of ixs) {
    const t = decode(other);
    if (t?.destination === deposit_account) into += t.amount;
    if (t?.source === deposit_account) into -= t.amount;
  }
  if (post - pre !== into || transfer.amount <= 0n) {
    return refuse({
      kind: "balance_mismatch",
      instruction_micro: transfer.amount,
      balance_change_micro: post - pre,
      reason: `the deposit account's balance changed by ${post - pre} but the transfers into it say ${into}`,
    });
  }
  const sourceIndex = keys.indexOf(transfer.source);
  const source_owner = tokenBalance(tx.meta.preTokenBalances, sourceIndex)?.owner;
  if (!source_owner) {
    return refuse({ kind: "not_a_transfer", instruction_index: req.instruction_index, reason: `the source ${transfer.source} of instruction ${req.instruction_index} is not a token account with an owner` });
  }
  const deposit: DepositFacts = {
    signature: req.signature,
    instruction_index: req.instruction_index,
    mint: config.usdc_mint,
    destination: deposit_account,
    source: transfer.source,
    source_owner,
    authority: transfer.authority,
    amount_micro: transfer.amount,
    slot,
    commitment: have,
  };
  const claimed = req.claimed ?? {};
  const checks: { field: keyof DepositClaim; claimed: string | undefined; actual: string }[] = [
    { field: "source_owner", claimed: claimed.source_owner, actual: deposit.source_owner },
    { field: "amount_micro", claimed: claimed.amount_micro?.toString(), actual: deposit.amount_micro.toString() },
    { field: "slot", claimed: claimed.slot?.toString(), actual: deposit.slot.toString() },
  ];
  const bad = checks.find((c) => c.claimed !== undefined && c.claimed !== c.actual);
  if (bad && bad.claimed !== undefined) {
    return refuse({ kind: "claim_mismatch", field: bad.field, claimed: bad.claimed, actual: bad.actual, reason: `claimed ${bad.field} ${bad.claimed} but the chain says ${bad.actual}` });
  }
  if (!commitmentReaches(have, required)) {
    return refuse({ kind: "below_commitment", commitment: have, required, reason: `transaction ${req.signature} is ${have}; deposits are credited once ${required}` });
  }
  return { ok: true, deposit };
}

/** Upper bounds of one scan: signatures per RPC page, and pages per call (100k signatures). */
export const SCAN_PAGE_LIMIT = 1_000;
export const SCAN_MAX_PAGES = 100;

export interface DepositScan {
  /** The newest signature listed: persist it, pass it to the next scan (null: nothing seen yet). */
  readonly cursor: Signature | null;
  /** Verified deposits, oldest first, each at SOLANA_DEPOSIT_COMMITMENT. */
  readonly deposits: readonly DepositFacts[];
  /** Top-level transfers into the deposit account that verifyDeposit refused (record them). */
  readonly refused: readonly { signature: Signature; instruction_index: number; refusal: DepositRefusal }[];
}

/**
 * Find deposits since `cursor`: the deposit token account's signatures at
 * SOLANA_DEPOSIT_COMMITMENT (`getSignaturesForAddress`, newest first, paged back to the cursor),
 * examined oldest first; every top-level SPL Token transfer into the deposit account goes through
 * `verifyDeposit`. Failed transactions are skipped (nothing moved). Throws when more than
 * SCAN_MAX_PAGES × SCAN_PAGE_LIMIT signatures are newer than the cursor (an operator must look:
 * the adapter was down for very long, or the cursor is wrong). The daemon keys deposits by
 * (signature, instruction index), so scanning a range twice credits nothing twice.
 */
export async function scanDeposits(deps: SolanaChainDeps, cursor: Signature | null): Promise<DepositScan> {
  const commitment = deps.config.deposit_commitment;
  const newestFirst: Signature[] = [];
  let newest: Signature | null = null;
  let before: Signature | undefined;
  for (let page = 0; ; page++) {
    if (page >= SCAN_MAX_PAGES) {
      throw new Error(`scanDeposits: more than ${SCAN_MAX_PAGES * SCAN_PAGE_LIMIT} signatures of ${deps.deposit_token_account} are newer than cursor ${cursor ?? "(none)"}`);
    }
    const got = await deps.rpc
      .getSignaturesForAddress(deps.deposit_token_account, { commitment, limit: SCAN_PAGE_LIMIT, ...(before ? { before } : {}), ...(cursor ? { until: cursor } : {}) })
      .send();
    newest ??= got[0]?.signature ?? null;
    for (const s of got) if (s.err === null) newestFirst.push(s.signature);
    const last = got.at(-1);
    if (got.length < SCAN_PAGE_LIMIT || !last) break;
    before = last.signature;
  }
  const deposits: DepositFacts[] = [];
  const refused: { signature: Signature; instruction_index: number; refusal: DepositRefusal }[] = [];
  const b58 = getBase58Encoder();
  for (const signature of [...newestFirst].reverse()) {
    const tx = await deps.rpc.getTransaction(signature, { commitment, encoding: "json", maxSupportedTransactionVersion: 0 }).send();
    if (!tx) throw new Error(`scanDeposits: ${signature} was listed at ${commitment} but getTransaction returned nothing`);
    const keys: Address[] = [...tx.transaction.message.accountKeys, ...(tx.meta?.loadedAddresses?.writable ?? []), ...(tx.meta?.loadedAddresses?.readonly ?? [])];
    const indexes = tx.transaction.message.instructions.flatMap((ix, i) => {
      if (keys[Number(ix.programIdIndex)] !== TOKEN_PROGRAM_ADDRESS) return [];
      const t = decodeTokenTransfer(keys, ix.accounts.map(Number), b58.encode(ix.data));
      return t?.destination === deps.deposit_token_account ? [i] : [];
    });
    for (const instruction_index of indexes) {
      const v = await verifyDeposit(deps, { signature, instruction_index });
      if (v.ok) deposits.push(v.deposit);
      else refused.push({ signature, instruction_index, refusal: v.refusal });
    }
  }
  return { cursor: newest ?? cursor, deposits, refused };
}

// ---- payouts ----------------------------------------------------------------------------

const PAYOUT_ID = /^[A-Za-z0-9._:-]{1,64}$/;

async function ataOf(owner: Address, mint: Address): Promise<Address> {
  const [ata] = await findAssociatedTokenPda({ owner, mint, tokenProgram: TOKEN_PROGRAM_ADDRESS });
  return ata;
}

/** The destination ATA's state: missing, or existing and checked (owner, mint, not frozen). */
async function destinationState(
  deps: SolanaChainDeps,
  destination_owner: Address,
): Promise<{ ok: true; destination: Address; exists: boolean } | PayoutRefusal> {
  const destination = await ataOf(destination_owner, deps.config.usdc_mint);
  const acc = await fetchMaybeToken(deps.rpc, destination, { commitment: "confirmed" });
  if (!acc.exists) return { ok: true, destination, exists: false };
  if (acc.data.owner !== destination_owner || acc.data.mint !== deps.config.usdc_mint) {
    // An ATA's owner can be reassigned with SetAuthority: then the proven wallet no longer controls it.
    return { ok: false, kind: "destination_not_owned", reason: `token account ${destination} is owned by ${acc.data.owner}, not by the proven wallet ${destination_owner}` };
  }
  if (acc.data.state === AccountState.Frozen) {
    return { ok: false, kind: "destination_frozen", reason: `token account ${destination} of ${destination_owner} is frozen by the mint's freeze authority` };
  }
  return { ok: true, destination, exists: true };
}

/**
 * Build and sign a payout: [create the destination ATA idempotently if it is missing now,]
 * `transferChecked(hot wallet ATA → destination ATA, amount, decimals 6)`, and a memo
 * `masques:payout:<payout_id>`, with the latest blockhash (or `lifetime`). Nothing is sent: the
 * caller records `wire_transaction` and `signature` first. Throws RangeError on amount <= 0 or a
 * malformed payout id; returns a typed refusal when the destination ATA exists but is not the
 * proven wallet's, or is frozen.
 */
export async function signPayout(
  deps: SolanaChainDeps,
  req: PayoutRequest,
  lifetime?: { blockhash: Blockhash; last_valid_block_height: bigint },
): Promise<{ ok: true; signed: SignedPayout } | PayoutRefusal> {
  if (req.amount_micro <= 0n) throw new RangeError(`amount_micro must be > 0, got ${req.amount_micro}`);
  if (!PAYOUT_ID.test(req.payout_id)) throw new RangeError(`payout_id: expected 1-64 chars of [A-Za-z0-9._:-], got "${req.payout_id}"`);
  const dest = await destinationState(deps, req.destination_owner);
  if (!dest.ok) return dest;
  const ata_rent_lamports = dest.exists ? 0n : await rentOfTokenAccount(deps);
  let life = lifetime;
  if (!life) {
    const { value } = await deps.rpc.getLatestBlockhash({ commitment: "confirmed" }).send();
    life = { blockhash: value.blockhash, last_valid_block_height: BigInt(value.lastValidBlockHeight) };
  }
  const { blockhash, last_valid_block_height } = life;
  const instructions: Instruction[] = [];
  if (!dest.exists) {
    instructions.push(
      await getCreateAssociatedTokenIdempotentInstructionAsync({ payer: deps.signer, owner: req.destination_owner, mint: deps.config.usdc_mint }),
    );
  }
  instructions.push(
    getTransferCheckedInstruction({
      source: deps.hot_token_account,
      mint: deps.config.usdc_mint,
      destination: dest.destination,
      authority: deps.signer,
      amount: req.amount_micro,
      decimals: USDC_DECIMALS,
    }),
    { programAddress: MEMO_PROGRAM_ADDRESS, data: getUtf8Encoder().encode(payoutMemo(req.payout_id, last_valid_block_height)) },
  );
  const tx = await pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(deps.signer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash, lastValidBlockHeight: last_valid_block_height }, m),
    (m) => appendTransactionMessageInstructions(instructions, m),
    (m) => signTransactionMessageWithSigners(m),
  );
  assertPayoutMessage(tx.messageBytes, deps, req, dest.destination);
  return {
    ok: true,
    signed: {
      ...req,
      signature: getSignatureFromTransaction(tx),
      wire_transaction: getBase64EncodedWireTransaction(tx),
      blockhash,
      last_valid_block_height,
      source: deps.hot_token_account,
      destination: dest.destination,
      creates_destination_account: !dest.exists,
      ata_rent_lamports,
      fee_lamports: LAMPORTS_PER_SIGNATURE,
    },
  };
}

/**
 * The payout memo: `masques:payout:<payout_id>:lvbh:<last valid block height>`. The payout id makes
 * two equal payouts differ; the block height travels inside the signed bytes, so a recorded
 * transaction read back after a crash says until when it can land (decodeSignedPayout).
 */
export function payoutMemo(payout_id: string, last_valid_block_height: bigint): string {
  return `masques:payout:${payout_id}:lvbh:${last_valid_block_height}`;
}

const MEMO_TEXT = /^masques:payout:([A-Za-z0-9._:-]{1,64}):lvbh:(\d{1,20})$/;

/** A recorded payout transaction read back from its wire bytes (decodeSignedPayout). */
export interface DecodedPayout {
  readonly signature: Signature;
  readonly payout_id: string;
  readonly last_valid_block_height: bigint;
  readonly destination: Address;
  readonly amount_micro: bigint;
  /** The transaction carries a create-ATA-idempotent instruction. */
  readonly creates_destination_account: boolean;
}

/**
 * Parse wire bytes this port signed (signPayout): the first signature, the memo's payout id and
 * last valid block height, and the single USDC transferChecked from `hot_token_account` signed by
 * `hot_wallet`. Throws an Error naming what does not match for any other bytes.
 */
export function decodeSignedPayout(wire: Uint8Array, expect: { hot_wallet: Address; hot_token_account: Address; usdc_mint: Address }): DecodedPayout {
  let tx: Transaction;
  try {
    tx = getTransactionDecoder().decode(wire);
  } catch (e) {
    throw new Error(`recorded bytes are not a Solana wire transaction: ${e instanceof Error ? e.message : String(e)}`);
  }
  const msg = getCompiledTransactionMessageDecoder().decode(tx.messageBytes);
  if (!("instructions" in msg)) throw new Error("recorded transaction has an unexpected message version");
  const keys = msg.staticAccounts;
  const signature = tx.signatures[expect.hot_wallet];
  if (keys[0] !== expect.hot_wallet || !signature) throw new Error(`recorded transaction is not signed by the hot wallet ${expect.hot_wallet}`);
  const memos = msg.instructions.filter((i) => keys[i.programAddressIndex] === MEMO_PROGRAM_ADDRESS);
  const memo = memos.length === 1 && memos[0]?.data ? MEMO_TEXT.exec(new TextDecoder().decode(Uint8Array.from(memos[0].data))) : null;
  if (!memo || memo[1] === undefined || memo[2] === undefined) throw new Error("recorded transaction carries no masques payout memo");
  const token = msg.instructions.filter((i) => keys[i.programAddressIndex] === TOKEN_PROGRAM_ADDRESS);
  const t = token.length === 1 && token[0] ? decodeTokenTransfer(keys, [...(token[0].accountIndices ?? [])], token[0].data ?? new Uint8Array()) : null;
  if (!t || t.mint !== expect.usdc_mint || t.source !== expect.hot_token_account || t.authority !== expect.hot_wallet) {
    throw new Error("recorded transaction is not a USDC transferChecked from the hot wallet");
  }
  return {
    signature: getBase58Decoder().decode(signature) as Signature,
    payout_id: memo[1],
    last_valid_block_height: BigInt(memo[2]),
    destination: t.destination,
    amount_micro: t.amount,
    creates_destination_account: msg.instructions.some((i) => keys[i.programAddressIndex] === ASSOCIATED_TOKEN_PROGRAM_ADDRESS),
  };
}

/**
 * Invariant: the bytes handed out for recording say exactly what was asked: fee payer = hot
 * wallet, exactly one SPL Token instruction, a TransferChecked of `amount_micro` of the USDC mint
 * from the hot wallet's ATA to `destination`, signed by the hot wallet. Throws otherwise.
 */
function assertPayoutMessage(messageBytes: ReadonlyUint8Array, deps: SolanaChainDeps, req: PayoutRequest, destination: Address): void {
  const msg = getCompiledTransactionMessageDecoder().decode(messageBytes);
  if (!("instructions" in msg)) throw new Error("signPayout: unexpected transaction message version");
  const keys = msg.staticAccounts;
  const token = msg.instructions.filter((i) => keys[i.programAddressIndex] === TOKEN_PROGRAM_ADDRESS);
  const t = token.length === 1 && token[0] ? decodeTokenTransfer(keys, [...(token[0].accountIndices ?? [])], token[0].data ?? new Uint8Array()) : null;
  if (
    keys[0] !== deps.signer.address ||
    !t ||
    t.mint !== deps.config.usdc_mint ||
    t.source !== deps.hot_token_account ||
    t.destination !== destination ||
    t.authority !== deps.signer.address ||
    t.amount !== req.amount_micro
  ) {
    throw new Error(`signPayout: the signed transaction does not match the request (payout ${req.payout_id}, to ${destination})`);
  }
}

async function rentOfTokenAccount(deps: SolanaChainDeps): Promise<bigint> {
  return BigInt(await deps.rpc.getMinimumBalanceForRentExemption(BigInt(getTokenSize())).send());
}

/** All text of an error and its causes and contexts, for classifying a node's refusal. */
function errorText(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 6 && cur !== undefined && cur !== null; i++) {
    if (cur instanceof Error) {
      parts.push(cur.message);
      const ctx = (cur as { context?: unknown }).context;
      if (ctx !== undefined) parts.push(JSON.stringify(ctx, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)));
      cur = cur.cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.join(" | ");
}

function isTransportFailure(text: string): boolean {
  return /HTTP_ERROR|fetch failed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|socket hang up/i.test(text);
}

/**
 * Send a signed wire transaction (with preflight). Idempotent: a signature the cluster already
 * processed is success (`already_processed`). Refusals come back typed (SendResult); transport
 * failures are thrown so the caller re-sends the same bytes.
 */
export async function sendPayout(deps: SolanaChainDeps, signed: Pick<SignedPayout, "wire_transaction" | "signature">): Promise<SendResult> {
  const { signature } = signed;
  try {
    const got = await deps.rpc.sendTransaction(signed.wire_transaction, { encoding: "base64", preflightCommitment: "confirmed" }).send();
    if (got !== signature) throw new Error(`node returned signature ${got} for a transaction whose signature is ${signature}`);
    return { ok: true, signature, outcome: "accepted" };
  } catch (e) {
    const text = errorText(e);
    if (isTransportFailure(text)) throw e;
    if (/already (been )?processed|ALREADY_PROCESSED/i.test(text)) return { ok: true, signature, outcome: "already_processed" };
    if (/blockhash not found|BLOCKHASH_NOT_FOUND/i.test(text)) {
      return { ok: false, signature, kind: "blockhash_expired", reason: `the node does not know the transaction's blockhash (expired): ${firstLine(text)}` };
    }
    if (/insufficient (funds|lamports)|INSUFFICIENT_FUNDS|no record of a prior credit|ACCOUNT_NOT_FOUND/i.test(text)) {
      return { ok: false, signature, kind: "insufficient_funds", reason: `the hot wallet cannot pay: ${firstLine(text)}` };
    }
    if (e instanceof Error) return { ok: false, signature, kind: "rejected", reason: firstLine(text) };
    throw e;
  }
}

function firstLine(text: string): string {
  return (text.trim().split("\n")[0] ?? "").slice(0, 300);
}

/**
 * What happened to `signature`: `landed` (success or failed, slot, commitment, whether it
 * reached SOLANA_PAYOUT_COMMITMENT), or `unknown` with `blockhash_expired`: true only when the
 * FINALIZED block height is past `last_valid_block_height` and the signature is still unseen
 * (asked again after the height check, to close the race with a late landing). Only then can the
 * transaction never land.
 */
export async function getSignatureFate(
  deps: SolanaChainDeps,
  req: { signature: Signature; last_valid_block_height: bigint },
): Promise<SignatureFate> {
  const look = async (): Promise<SignatureFate | null> => {
    const [s] = (await deps.rpc.getSignatureStatuses([req.signature], { searchTransactionHistory: true }).send()).value;
    if (!s) return null;
    const commitment: Commitment = s.confirmationStatus ?? "processed";
    return {
      kind: "landed",
      signature: req.signature,
      status: s.err === null ? "success" : "failed",
      slot: BigInt(s.slot),
      commitment,
      final: commitmentReaches(commitment, deps.config.payout_commitment),
      reason: s.err === null ? null : `the transaction failed on chain: ${JSON.stringify(s.err, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v))}`,
    };
  };
  const first = await look();
  if (first) return first;
  const finalized_height = BigInt(await deps.rpc.getBlockHeight({ commitment: "finalized" }).send());
  if (finalized_height <= req.last_valid_block_height) return { kind: "unknown", signature: req.signature, blockhash_expired: false };
  const again = await look();
  return again ?? { kind: "unknown", signature: req.signature, blockhash_expired: true };
}

/**
 * Re-sign a recorded payout with a fresh blockhash, ONLY when its recorded transaction can never
 * land (getSignatureFate: unknown with blockhash_expired). Otherwise refuses: `still_valid` (re-send
 * the recorded bytes instead) or `landed` (settle it from its fate). The new transaction pays the
 * same amount to the same owner with the same memo; record it before sending, like the first.
 */
export async function resignPayout(deps: SolanaChainDeps, recorded: SignedPayout): Promise<ResignResult> {
  const fate = await getSignatureFate(deps, recorded);
  if (fate.kind === "landed") return { ok: false, kind: "landed", fate, reason: `${recorded.signature} landed (${fate.status}, ${fate.commitment}); do not sign again` };
  if (!fate.blockhash_expired) {
    return { ok: false, kind: "still_valid", fate, reason: `${recorded.signature} may still land until block height ${recorded.last_valid_block_height}; re-send the recorded transaction` };
  }
  return signPayout(deps, { payout_id: recorded.payout_id, destination_owner: recorded.destination_owner, amount_micro: recorded.amount_micro });
}

// ---- hot wallet -------------------------------------------------------------------------

/** USDC (micro) of the hot wallet's ATA (0 if it does not exist) and SOL (lamports) of the wallet. */
export async function hotWalletBalances(deps: SolanaChainDeps): Promise<HotWalletBalances> {
  const [token, sol] = await Promise.all([
    fetchMaybeToken(deps.rpc, deps.hot_token_account, { commitment: "confirmed" }),
    deps.rpc.getBalance(deps.signer.address, { commitment: "confirmed" }).send(),
  ]);
  return {
    address: deps.signer.address,
    token_account: deps.hot_token_account,
    usdc_micro: token.exists ? token.data.amount : 0n,
    sol_lamports: BigInt(sol.value),
  };
}

/**
 * Before signing a payout: does the hot wallet hold amount + reserved USDC, and fee + ATA rent
 * (when the destination ATA is missing) + its own rent-exempt minimum + reserved SOL? A fee payer
 * may not drop below rent exemption, so that minimum is part of the need. USDC is checked first.
 */
export async function preflightPayout(deps: SolanaChainDeps, req: PreflightRequest): Promise<PreflightResult> {
  if (req.amount_micro <= 0n) throw new RangeError(`amount_micro must be > 0, got ${req.amount_micro}`);
  const [balances, dest, min_balance] = await Promise.all([
    hotWalletBalances(deps),
    destinationState(deps, req.destination_owner),
    deps.rpc.getMinimumBalanceForRentExemption(0n).send(),
  ]);
  const need_micro = req.amount_micro + (req.reserved_micro ?? 0n);
  if (balances.usdc_micro < need_micro) {
    return { ok: false, kind: "insufficient_usdc", have_micro: balances.usdc_micro, need_micro, reason: `hot wallet ${balances.address} holds ${balances.usdc_micro} micro-USDC, the payout needs ${need_micro}` };
  }
  const ata_rent_lamports = dest.ok && !dest.exists ? await rentOfTokenAccount(deps) : 0n;
  const need_lamports = LAMPORTS_PER_SIGNATURE + ata_rent_lamports + BigInt(min_balance) + (req.reserved_lamports ?? 0n);
  if (balances.sol_lamports < need_lamports) {
    return {
      ok: false,
      kind: "insufficient_sol",
      have_lamports: balances.sol_lamports,
      need_lamports,
      reason: `hot wallet ${balances.address} holds ${balances.sol_lamports} lamports, the payout needs ${need_lamports} (fee ${LAMPORTS_PER_SIGNATURE}, ATA rent ${ata_rent_lamports}, own rent-exempt minimum ${min_balance})`,
    };
  }
  return { ok: true, balances, ata_rent_lamports, fee_lamports: LAMPORTS_PER_SIGNATURE };
}

// ---- the port ---------------------------------------------------------------------------

/** The Solana chain port: the functions above bound to one RPC, configuration and hot wallet. */
export interface SolanaChain {
  readonly config: SolanaRailConfig;
  readonly hot_wallet: Address;
  readonly hot_token_account: Address;
  readonly deposit_token_account: Address;
  verifyDeposit(req: { signature: Signature; instruction_index: number; claimed?: DepositClaim }): Promise<DepositVerification>;
  scanDeposits(cursor: Signature | null): Promise<DepositScan>;
  signPayout(req: PayoutRequest): Promise<{ ok: true; signed: SignedPayout } | PayoutRefusal>;
  sendPayout(signed: Pick<SignedPayout, "wire_transaction" | "signature">): Promise<SendResult>;
  getSignatureFate(req: { signature: Signature; last_valid_block_height: bigint }): Promise<SignatureFate>;
  resignPayout(recorded: SignedPayout): Promise<ResignResult>;
  balances(): Promise<HotWalletBalances>;
  preflightPayout(req: PreflightRequest): Promise<PreflightResult>;
}

/**
 * Connect to `config.rpc_url` with the hot wallet keypair (64 bytes, loadHotWalletKeypair), and
 * check before any use that the mint is an SPL Token mint with 6 decimals and that the deposit
 * token account (configured, or the deposit owner's ATA) exists, holds that mint and is owned by
 * SOLANA_DEPOSIT_OWNER. Throws SolanaChainStartupError otherwise (or for a keypair whose halves do
 * not match); transport failures are thrown as is.
 */
export async function connectSolanaChain(config: SolanaRailConfig, keypair: Uint8Array): Promise<SolanaChain> {
  let signer: KeyPairSigner;
  try {
    signer = await createKeyPairSignerFromBytes(keypair);
  } catch {
    throw new SolanaChainStartupError("SOLANA_HOT_WALLET_KEYPAIR_FILE: the keypair's public half does not match its secret half");
  }
  const rpc = createSolanaRpc(config.rpc_url);
  const mint = await fetchMaybeMint(rpc, config.usdc_mint, { commitment: "confirmed" }).catch((e: unknown) => {
    if (isTransportFailure(errorText(e))) throw e;
    throw new SolanaChainStartupError(`SOLANA_USDC_MINT ${config.usdc_mint} is not an SPL Token mint: ${firstLine(errorText(e))}`);
  });
  if (!mint.exists || mint.programAddress !== TOKEN_PROGRAM_ADDRESS) {
    throw new SolanaChainStartupError(`SOLANA_USDC_MINT ${config.usdc_mint} is not an SPL Token mint on this cluster`);
  }
  if (mint.data.decimals !== USDC_DECIMALS) {
    throw new SolanaChainStartupError(`SOLANA_USDC_MINT ${config.usdc_mint} has ${mint.data.decimals} decimals; the ledger counts micro-USD, so it must have ${USDC_DECIMALS}`);
  }
  const deposit_token_account = config.deposit_token_account ?? (await ataOf(config.deposit_owner, config.usdc_mint));
  const dep = await fetchMaybeToken(rpc, deposit_token_account, { commitment: "confirmed" }).catch((e: unknown) => {
    if (isTransportFailure(errorText(e))) throw e;
    throw new SolanaChainStartupError(`deposit token account ${deposit_token_account} is not an SPL Token account: ${firstLine(errorText(e))}`);
  });
  if (!dep.exists) throw new SolanaChainStartupError(`deposit token account ${deposit_token_account} does not exist; create it (the deposit owner's USDC ATA) first`);
  if (dep.data.mint !== config.usdc_mint) throw new SolanaChainStartupError(`deposit token account ${deposit_token_account} holds mint ${dep.data.mint}, not SOLANA_USDC_MINT ${config.usdc_mint}`);
  if (dep.data.owner !== config.deposit_owner) throw new SolanaChainStartupError(`deposit token account ${deposit_token_account} is owned by ${dep.data.owner}, not SOLANA_DEPOSIT_OWNER ${config.deposit_owner}`);
  const deps: SolanaChainDeps = { rpc, config, signer, hot_token_account: await ataOf(signer.address, config.usdc_mint), deposit_token_account };
  return {
    config,
    hot_wallet: signer.address,
    hot_token_account: deps.hot_token_account,
    deposit_token_account,
    verifyDeposit: (req) => verifyDeposit(deps, req),
    scanDeposits: (cursor) => scanDeposits(deps, cursor),
    signPayout: (req) => signPayout(deps, req),
    sendPayout: (signed) => sendPayout(deps, signed),
    getSignatureFate: (req) => getSignatureFate(deps, req),
    resignPayout: (recorded) => resignPayout(deps, recorded),
    balances: () => hotWalletBalances(deps),
    preflightPayout: (req) => preflightPayout(deps, req),
  };
}
