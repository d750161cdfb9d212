/**
 * The Solana rail's RailDriver (ADR 0092, on ADR 0081's runner over ADR 0090's chain port):
 * bytes = the signed wire transaction exactly as sent, tx_ref = its signature (base58),
 * replay_guard = its blockhash's last valid block height (also carried in the payout memo, so the
 * recorded bytes say it after a crash: chain.ts decodeSignedPayout).
 *
 * - Pre-flight signs the payout (no chain side effect) to learn whether the destination ATA is
 *   usable (refusals such as a frozen or re-owned ATA fail the payout, nothing recorded) and checks
 *   USDC and SOL (fee, ATA rent, own rent-exempt minimum) on top of what in-flight payouts that
 *   have not landed promised. `sign` returns that same signed transaction when it is still fresh.
 * - Fate: landed at SOLANA_PAYOUT_COMMITMENT → final; the network fee (lamports) and whether the
 *   transaction created the destination's token account come from the transaction's metadata.
 *   Unknown with the blockhash expired at `finalized` → `never_lands` with the observed height
 *   (the replacement proof the daemon checks, ADR 0091); otherwise unknown → the runner re-sends
 *   the same bytes.
 * - Confirmations reported: the status's count, or FINALIZED_CONFIRMATIONS once the cluster
 *   rooted the slot (the status says `null`). The daemon's SETTLEMENT_SOLANA_FINALITY_DEPTH must
 *   not exceed what the configured commitment yields (32 for finalized, 1 for confirmed).
 * - Deposits: the scan lists the deposit token account's signatures AT SOLANA_DEPOSIT_COMMITMENT,
 *   so nothing below it is ever a candidate; every top-level transfer into the account (verified
 *   or refused by the port) is handed to the runner, which re-verifies and reports or logs the
 *   refusal. Cursor: `sig:<newest listed signature>` or `start` (nothing listed yet).
 */
import { createSolanaRpc, getBase64Decoder, getBase64Encoder, type Address, type Base64EncodedWireTransaction, type Signature } from "@solana/kit";
import { Rail } from "../../../clients/gen/masques/ledger/v1/common_pb.js";
import type { DepositCheck, InFlight, PayoutFate, PayoutOrder, RailDriver, SignedPayout as RailSigned } from "../adapter/driver.js";
import { LAMPORTS_PER_SIGNATURE, decodeSignedPayout, type SignedPayout, type SolanaChain } from "./chain.js";

/** Confirmations reported for a rooted (finalized) slot: Solana's maximum lockout depth + 1. */
export const FINALIZED_CONFIRMATIONS = 32;

/** Lamports reserved per in-flight payout that has not landed: fee + one token account's rent (upper bound). */
const TOKEN_ACCOUNT_RENT_LAMPORTS_MAX = 2_039_280n;

const b64enc = getBase64Encoder();
const b64dec = getBase64Decoder();

/** Parse a cursor text: `start` → null, `sig:<signature>` → the signature. Throws on anything else. */
export function parseSolanaCursor(text: string): Signature | null {
  if (text === "start") return null;
  const m = /^sig:([1-9A-HJ-NP-Za-km-z]{64,88})$/.exec(text);
  if (!m || m[1] === undefined) throw new Error(`deposit cursor "${text}" is not a Solana cursor (start | sig:<signature>)`);
  return m[1] as Signature;
}

export function formatSolanaCursor(sig: Signature | null): string {
  return sig === null ? "start" : `sig:${sig}`;
}

/** The Solana driver over a connected chain port; `chain_id` = CAIP-2 id deposits are reported under. */
export function solanaDriver(chain: SolanaChain, chain_id: string): RailDriver {
  const config = chain.config;
  const rpc = createSolanaRpc(config.rpc_url);
  /** Signed by pre-flight, handed out by `sign` (payout id → signed). */
  const presigned = new Map<string, SignedPayout>();

  const toRail = (s: SignedPayout): RailSigned => ({
    bytes: Uint8Array.from(b64enc.encode(s.wire_transaction)),
    tx_ref: s.signature,
    replay_guard: s.last_valid_block_height,
  });
  const decode = (bytes: Uint8Array): RailSigned => {
    const d = decodeSignedPayout(bytes, { hot_wallet: chain.hot_wallet, hot_token_account: chain.hot_token_account, usdc_mint: config.usdc_mint });
    return { bytes, tx_ref: d.signature, replay_guard: d.last_valid_block_height };
  };
  const reserved = (in_flight: InFlight) => {
    const open = in_flight.filter((f) => !f.landed);
    return {
      reserved_micro: open.reduce((s, f) => s + f.order.net_micro, 0n),
      reserved_lamports: BigInt(open.length) * (LAMPORTS_PER_SIGNATURE + TOKEN_ACCOUNT_RENT_LAMPORTS_MAX),
    };
  };
  const signFor = async (order: PayoutOrder) => {
    const s = await chain.signPayout({ payout_id: order.payout_id, destination_owner: order.destination as Address, amount_micro: order.net_micro });
    if (s.ok) presigned.set(order.payout_id, s.signed);
    return s;
  };
  const confirmationsOf = async (signature: Signature): Promise<number> => {
    const [s] = (await rpc.getSignatureStatuses([signature], { searchTransactionHistory: true }).send()).value;
    if (!s) return 0;
    return s.confirmations === null ? FINALIZED_CONFIRMATIONS : Math.min(Number(s.confirmations), FINALIZED_CONFIRMATIONS);
  };

  return {
    rail: "solana",
    proto_rail: Rail.SOLANA,
    async preflight(order, in_flight) {
      presigned.delete(order.payout_id);
      const s = await signFor(order);
      if (!s.ok) return { ok: false, definite: true, reason: `${s.kind}: ${s.reason}` };
      const req = { destination_owner: order.destination as Address, amount_micro: order.net_micro };
      const r = await chain.preflightPayout({ ...req, ...reserved(in_flight) });
      if (r.ok) return { ok: true };
      const alone = await chain.preflightPayout(req);
      return { ok: false, definite: !alone.ok, reason: alone.ok ? `${r.reason} (with in-flight payouts)` : alone.reason };
    },
    async sign(order) {
      const pre = presigned.get(order.payout_id);
      presigned.delete(order.payout_id);
      if (pre && pre.amount_micro === order.net_micro && pre.destination_owner === order.destination) return toRail(pre);
      const s = await signFor(order);
      presigned.delete(order.payout_id);
      if (!s.ok) throw new Error(`payout ${order.payout_id}: ${s.kind}: ${s.reason}`);
      return toRail(s.signed);
    },
    decode,
    async broadcast(tx) {
      const b = await chain.sendPayout({ wire_transaction: b64dec.decode(tx.bytes) as Base64EncodedWireTransaction, signature: tx.tx_ref as Signature });
      return b.ok ? { ok: true, detail: b.outcome } : { ok: false, reason: `${b.kind}: ${b.reason}` };
    },
    async fate(tx): Promise<PayoutFate> {
      const signature = tx.tx_ref as Signature;
      const f = await chain.getSignatureFate({ signature, last_valid_block_height: tx.replay_guard });
      if (f.kind === "unknown") {
        if (!f.blockhash_expired) return { kind: "unknown" };
        const observed = BigInt(await rpc.getBlockHeight({ commitment: "finalized" }).send());
        return {
          kind: "never_lands",
          reason: `blockhash of ${signature} expired (finalized block height ${observed} > last valid ${tx.replay_guard}) and the cluster never saw it`,
          observed_block_height: observed,
        };
      }
      if (!f.final) return { kind: "landed", success: f.status === "success", final: false, confirmations: 0, block_number: f.slot, block_ref: `slot:${f.slot}`, fee_native: 0n, reason: f.reason ?? "" };
      const got = await rpc.getTransaction(signature, { commitment: "confirmed", encoding: "json", maxSupportedTransactionVersion: 0 }).send();
      if (!got || !got.meta) throw new Error(`${signature} is ${f.commitment} but getTransaction returned nothing`);
      const d = decodeSignedPayout(tx.bytes, { hot_wallet: chain.hot_wallet, hot_token_account: chain.hot_token_account, usdc_mint: config.usdc_mint });
      const keys = got.transaction.message.accountKeys;
      const destIndex = keys.indexOf(d.destination);
      const had = (got.meta.preTokenBalances ?? []).some((b) => Number(b.accountIndex) === destIndex);
      const account_created = f.status === "success" && !had;
      return {
        kind: "landed",
        success: f.status === "success",
        final: true,
        confirmations: await confirmationsOf(signature),
        block_number: f.slot,
        block_ref: `slot:${f.slot}`,
        // What the hot wallet (fee payer, account 0) spent in lamports: the fee plus any new ATA's rent.
        fee_native: BigInt(got.meta.preBalances[0] ?? 0) - BigInt(got.meta.postBalances[0] ?? 0),
        reason: f.status === "success" ? "" : `transaction ${signature} failed on chain in slot ${f.slot} (${f.commitment}): ${f.reason ?? ""}`,
        account_created,
      };
    },
    async initialCursor() {
      const [newest] = await rpc.getSignaturesForAddress(chain.deposit_token_account, { commitment: config.deposit_commitment, limit: 1 }).send();
      return formatSolanaCursor(newest?.signature ?? null);
    },
    async scanDeposits(cursor) {
      const s = await chain.scanDeposits(parseSolanaCursor(cursor));
      const candidates = [
        ...s.deposits.map((d) => ({ tx_ref: d.signature as string, event_index: d.instruction_index, from_address: d.source_owner as string, amount_micro: d.amount_micro })),
        ...s.refused.map((r) => ({ tx_ref: r.signature as string, event_index: r.instruction_index })),
      ];
      return { cursor: formatSolanaCursor(s.cursor), final: candidates, tentative: [], caught_up: true, reorg: null };
    },
    async verifyDeposit(c): Promise<DepositCheck> {
      if (!/^[1-9A-HJ-NP-Za-km-z]{64,88}$/.test(c.tx_ref)) return { ok: false, kind: "unknown_signature", reason: `tx_ref ${c.tx_ref} is not a base58 Solana signature` };
      const v = await chain.verifyDeposit({
        signature: c.tx_ref as Signature,
        instruction_index: c.event_index,
        claimed: {
          ...(c.from_address === undefined ? {} : { source_owner: c.from_address as Address }),
          ...(c.amount_micro === undefined ? {} : { amount_micro: c.amount_micro }),
        },
      });
      if (!v.ok) return { ok: false, kind: v.refusal.kind, reason: v.refusal.reason };
      const d = v.deposit;
      return {
        ok: true,
        deposit: {
          chain_id,
          tx_ref: d.signature,
          event_index: d.instruction_index,
          from_address: d.source_owner,
          amount_micro: d.amount_micro,
          block_number: d.slot,
          block_ref: `slot:${d.slot}`,
          confirmations: await confirmationsOf(d.signature),
        },
      };
    },
    async balances() {
      const b = await chain.balances();
      return { usdc_micro: b.usdc_micro, sol_lamports: b.sol_lamports };
    },
  };
}
