/**
 * The Base rail's RailDriver (ADR 0081 over ADR 0080's chain port): bytes = a signed EIP-1559
 * USDC `transfer`, tx_ref = its hash (lower-case hex), replay_guard = its nonce.
 *
 * Nonces: the next payout takes max(the node's `pending` nonce count, highest in-flight recorded
 * nonce + 1). The runner re-examines (and re-broadcasts) every recorded transaction before it
 * signs anything new, so the node's pending count already covers them; the in-flight maximum
 * covers a recorded transaction the node dropped and has not been re-sent yet. One adapter
 * process per hot wallet (the daemon's lease belongs to the rail).
 *
 * Pre-flight reserves, for every in-flight payout, its net USDC and gas_limit × max_fee_per_gas
 * of ETH (conservative: a landed-but-not-final one is counted twice until it is completed).
 */
import { keccak256, parseTransaction, toBytes, toHex, type Address, type Hash } from "viem";
import { Rail } from "../../../clients/gen/masques/ledger/v1/common_pb.js";
import type { DepositCheck, InFlight, PayoutFate, RailDriver, SignedPayout, VerifiedDeposit } from "../adapter/driver.js";
import { PAYOUT_GAS_LIMIT, formatCursor, parseCursor, type BaseChain, type DepositFacts } from "./chain.js";

/** The Base driver over a connected chain port; `scan_from_block` = first block of a fresh scan (null: the head at first start). */
export function baseDriver(chain: BaseChain, scan_from_block: bigint | null): RailDriver {
  const caip2 = `eip155:${chain.config.chain_id}`;
  const toVerified = (d: DepositFacts): VerifiedDeposit => ({
    chain_id: caip2,
    tx_ref: d.tx_hash.toLowerCase(),
    event_index: d.log_index,
    from_address: d.from,
    amount_micro: d.amount_micro,
    block_number: d.block_number,
    block_ref: d.block_hash,
    confirmations: Number(d.confirmations > 0xffff_ffffn ? 0xffff_ffffn : d.confirmations),
  });
  const decode = (bytes: Uint8Array): SignedPayout => {
    const raw = toHex(bytes);
    const tx = parseTransaction(raw);
    if (tx.nonce === undefined || tx.chainId !== chain.config.chain_id) throw new Error(`recorded bytes are not a Base transaction for chain ${chain.config.chain_id}`);
    return { bytes, tx_ref: keccak256(raw).toLowerCase(), replay_guard: BigInt(tx.nonce) };
  };
  const reserved = (in_flight: InFlight, max_fee_per_gas: bigint) => {
    const open = in_flight.filter((f) => !f.landed);
    return {
      reserved_micro: open.reduce((s, f) => s + f.order.net_micro, 0n),
      reserved_wei: BigInt(open.length) * PAYOUT_GAS_LIMIT * max_fee_per_gas,
    };
  };

  return {
    rail: "base",
    proto_rail: Rail.BASE,
    async preflight(order, in_flight) {
      const fees = await chain.suggestFees();
      const req = { amount_micro: order.net_micro, gas_limit: PAYOUT_GAS_LIMIT, max_fee_per_gas: fees.max_fee_per_gas };
      const r = await chain.preflightPayout({ ...req, ...reserved(in_flight, fees.max_fee_per_gas) });
      if (r.ok) return { ok: true };
      const alone = await chain.preflightPayout(req);
      return { ok: false, definite: !alone.ok, reason: alone.ok ? `${r.reason} (with in-flight payouts)` : alone.reason };
    },
    async sign(order, in_flight) {
      const [fees, nonces] = await Promise.all([chain.suggestFees(), chain.nonces()]);
      const next = in_flight.reduce((n, f) => (f.tx.replay_guard + 1n > n ? f.tx.replay_guard + 1n : n), BigInt(nonces.pending));
      const s = await chain.signPayout({
        to: order.destination as Address,
        amount_micro: order.net_micro,
        nonce: Number(next),
        gas_limit: PAYOUT_GAS_LIMIT,
        max_fee_per_gas: fees.max_fee_per_gas,
        max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
      });
      return { bytes: toBytes(s.raw), tx_ref: s.hash.toLowerCase(), replay_guard: BigInt(s.nonce) };
    },
    decode,
    async broadcast(tx) {
      const b = await chain.broadcast(toHex(tx.bytes));
      return b.ok ? { ok: true, detail: b.outcome } : { ok: false, reason: `${b.kind}: ${b.reason}` };
    },
    async fate(tx): Promise<PayoutFate> {
      const f = await chain.getTransactionFate(tx.tx_ref as Hash, { from: chain.hot_wallet, nonce: Number(tx.replay_guard) });
      switch (f.kind) {
        case "pending":
        case "unknown":
          return { kind: f.kind };
        case "replaced":
          return { kind: "never_lands", reason: f.reason };
        case "landed":
          return {
            kind: "landed",
            success: f.status === "success",
            final: f.final,
            confirmations: Number(f.confirmations > 0xffff_ffffn ? 0xffff_ffffn : f.confirmations),
            block_number: f.block_number,
            block_ref: f.block_hash,
            fee_native: f.fee_wei,
            reason: f.status === "success" ? "" : `transaction ${f.hash} reverted in block ${f.block_number} (at finality depth)`,
          };
      }
    },
    async initialCursor() {
      const from = scan_from_block ?? (await chain.headNumber()) + 1n;
      return formatCursor(await chain.initialCursor(from));
    },
    async scanDeposits(cursor) {
      const s = await chain.scanDeposits(parseCursor(cursor));
      return {
        cursor: formatCursor(s.cursor),
        final: s.final.map((d) => ({ tx_ref: d.tx_hash.toLowerCase(), event_index: d.log_index, from_address: d.from, amount_micro: d.amount_micro })),
        tentative: s.tentative.map(toVerified),
        caught_up: s.caught_up,
        reorg: s.reorg === null ? null : `block ${s.reorg.block_number}: expected ${s.reorg.expected_hash}, chain has ${s.reorg.actual_hash ?? "nothing"}`,
      };
    },
    async verifyDeposit(c): Promise<DepositCheck> {
      if (!/^0x[0-9a-fA-F]{64}$/.test(c.tx_ref)) return { ok: false, kind: "unknown_tx", reason: `tx_ref ${c.tx_ref} is not a transaction hash` };
      const v = await chain.verifyDeposit({
        tx_hash: c.tx_ref as Hash,
        log_index: c.event_index,
        claimed: {
          ...(c.from_address === undefined ? {} : { from: c.from_address as Address }),
          ...(c.amount_micro === undefined ? {} : { amount_micro: c.amount_micro }),
        },
      });
      return v.ok ? { ok: true, deposit: toVerified(v.deposit) } : { ok: false, kind: v.refusal.kind, reason: v.refusal.reason };
    },
    async balances() {
      const b = await chain.balances();
      return { usdc_micro: b.usdc_micro, eth_wei: b.eth_wei };
    },
  };
}
