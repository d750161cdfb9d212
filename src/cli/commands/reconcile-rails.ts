/**
 * `masques-ledger reconcile --rails` (issue 13 "Rail reconciliation", issue 14 for Solana;
 * docs/adr/0088): on-chain USDC of each configured rail against the ledger's rail accounts.
 *
 * Per rail, with the chain read through the chain ports (src/rails/base, src/rails/solana; same
 * environment as the adapters) and the ledger read through the daemon's API (AccountService,
 * admin token):
 *   chain_micro    = hot wallet USDC + deposit address (token account) USDC
 *   expected_micro = float_micro + deposits_micro − payouts_micro
 *     deposits_micro = rail inbound debits posted (verified deposits credited to agents)
 *     payouts_micro  = rail outbound credits posted (payout nets confirmed on chain)
 *     float_micro    = RECONCILE_<RAIL>_FLOAT_MICRO: USDC the operator put on the rail's wallets
 *                      outside the ledger (funding minus sweeps)
 *   in_flight_micro = rail outbound credits pending (held payouts: signed ones may have left)
 * No drift when expected − in_flight ≤ chain ≤ expected. Below: money left that the ledger does
 * not show as paid (a double payment, an unknown transfer out). Above: money arrived that the
 * ledger did not credit (a deposit not yet final or HELD, a stray transfer in). Either is drift,
 * reported with the figures; exit 1. The native balance (ETH / SOL, which pays network fees) and
 * the rail fee account are printed for the operator, not compared (the network fees paid live in
 * the control plane). The decision is `railDrift`, pure.
 */
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createSolanaRpc, type Address as SolanaAddress } from "@solana/kit";
import { createPublicClient, erc20Abi, http } from "viem";
import { z } from "zod";
import { AccountService } from "../../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { railAccountId } from "../../domain/accounts.js";
import type { RailName } from "../../domain/codes.js";
import { idToHex } from "../../domain/ids.js";
import { railFeesAccountId } from "../../domain/settlement/ids.js";
import { connectBaseChain } from "../../rails/base/chain.js";
import { loadBaseRailConfig, loadHotWalletKey } from "../../rails/base/config.js";
import { connectSolanaChain } from "../../rails/solana/chain.js";
import { loadHotWalletKeypair, loadSolanaRailConfig } from "../../rails/solana/config.js";

/** The ledger side of one rail (micro-USD). */
export interface RailLedgerFacts {
  deposits_micro: bigint;
  payouts_micro: bigint;
  in_flight_micro: bigint;
  fees_micro: bigint;
}

/** The chain side of one rail. */
export interface RailChainFacts {
  hot_wallet: string;
  hot_usdc_micro: bigint;
  deposit_account: string;
  /** 0 when the deposit address is the hot wallet itself (counted once). */
  deposit_usdc_micro: bigint;
  native_balance: bigint;
  native_unit: "wei" | "lamports";
}

export interface RailReconciliation {
  rail: RailName;
  ok: boolean;
  chain_micro: bigint;
  expected_micro: bigint;
  /** chain − expected. */
  drift_micro: bigint;
  /** Sentence: why it is (not) drift. */
  detail: string;
  ledger: RailLedgerFacts;
  chain: RailChainFacts;
  float_micro: bigint;
}

/** The comparison of one rail (pure). */
export function railDrift(rail: RailName, ledger: RailLedgerFacts, chain: RailChainFacts, float_micro: bigint): RailReconciliation {
  const chain_micro = chain.hot_usdc_micro + chain.deposit_usdc_micro;
  const expected_micro = float_micro + ledger.deposits_micro - ledger.payouts_micro;
  const drift_micro = chain_micro - expected_micro;
  const ok = drift_micro <= 0n && -drift_micro <= ledger.in_flight_micro;
  const detail = ok
    ? drift_micro === 0n
      ? "on-chain USDC equals float + deposits − payouts"
      : `${-drift_micro} micro-USD left for payouts still pending in the ledger (in flight up to ${ledger.in_flight_micro})`
    : drift_micro > 0n
      ? `${drift_micro} micro-USD more on chain than the ledger credited (a deposit not final or HELD, or an unrecorded transfer in)`
      : `${-drift_micro - ledger.in_flight_micro} micro-USD missing on chain beyond the payouts in flight (${ledger.in_flight_micro}): money left that the ledger does not show as paid`;
  return { rail, ok, chain_micro, expected_micro, drift_micro, detail, ledger, chain, float_micro };
}

const floatVar = z.string().regex(/^\d{1,19}$/, "expected micro-USD as a non-negative integer").transform(BigInt);

/** Thrown for bad or missing configuration (exit 2), naming the variable. */
export class RailsConfigError extends Error {
  override name = "RailsConfigError";
}

function float(env: NodeJS.ProcessEnv, rail: RailName): bigint {
  const name = `RECONCILE_${rail.toUpperCase()}_FLOAT_MICRO`;
  const r = floatVar.safeParse(env[name] ?? "0");
  if (!r.success) throw new RailsConfigError(`${name}: ${r.error.issues[0]?.message ?? "invalid"}`);
  return r.data;
}

async function baseChainFacts(env: NodeJS.ProcessEnv): Promise<RailChainFacts> {
  const config = loadBaseRailConfig(env);
  const chain = await connectBaseChain(config, loadHotWalletKey(config.hot_wallet_key_file));
  const b = await chain.balances();
  let deposit_usdc_micro = 0n;
  if (config.deposit_address.toLowerCase() !== chain.hot_wallet.toLowerCase()) {
    const client = createPublicClient({ transport: http(config.rpc_url) });
    deposit_usdc_micro = await client.readContract({ address: config.token_address, abi: erc20Abi, functionName: "balanceOf", args: [config.deposit_address] });
  }
  return { hot_wallet: chain.hot_wallet, hot_usdc_micro: b.usdc_micro, deposit_account: config.deposit_address, deposit_usdc_micro, native_balance: b.eth_wei, native_unit: "wei" };
}

async function solanaChainFacts(env: NodeJS.ProcessEnv): Promise<RailChainFacts> {
  const config = loadSolanaRailConfig(env);
  const chain = await connectSolanaChain(config, loadHotWalletKeypair(config.hot_wallet_keypair_file));
  const b = await chain.balances();
  let deposit_usdc_micro = 0n;
  if (chain.deposit_token_account !== chain.hot_token_account) {
    const rpc = createSolanaRpc(config.rpc_url);
    const r = await rpc.getTokenAccountBalance(chain.deposit_token_account as SolanaAddress, { commitment: config.deposit_commitment }).send();
    deposit_usdc_micro = BigInt(r.value.amount);
  }
  return { hot_wallet: chain.hot_wallet, hot_usdc_micro: b.usdc_micro, deposit_account: chain.deposit_token_account, deposit_usdc_micro, native_balance: b.sol_lamports, native_unit: "lamports" };
}

/** The rails whose adapter environment is present (BASE_RPC_URL, SOLANA_RPC_URL). */
export function configuredRails(env: NodeJS.ProcessEnv): RailName[] {
  const out: RailName[] = [];
  if (env["BASE_RPC_URL"]?.trim()) out.push("base");
  if (env["SOLANA_RPC_URL"]?.trim()) out.push("solana");
  return out;
}

/**
 * Reconciles every configured rail. The ledger side comes from the daemon at `endpoint` with an
 * admin `token`. Throws RailsConfigError (or the rail config loaders' errors) for configuration,
 * anything else for an unreachable chain or daemon.
 */
export async function reconcileRails(args: { env: NodeJS.ProcessEnv; endpoint: string; token: string; timeout_ms?: number }): Promise<RailReconciliation[]> {
  const rails = configuredRails(args.env);
  if (rails.length === 0) throw new RailsConfigError("no rail configured: set BASE_RPC_URL (and the other BASE_* variables) and/or SOLANA_RPC_URL (SOLANA_*), as for the rail adapters");
  const floats = new Map(rails.map((r) => [r, float(args.env, r)] as const));
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${args.token}`);
    return next(req);
  };
  const accounts = createClient(AccountService, createGrpcTransport({ baseUrl: args.endpoint, interceptors: [auth] }));
  const balance = async (id: bigint) => {
    const r = await accounts.getAccount({ account: { ref: { case: "accountId", value: idToHex(id) } } }, { timeoutMs: args.timeout_ms ?? 60_000 });
    return r.account!.balance!;
  };
  const out: RailReconciliation[] = [];
  for (const rail of rails) {
    const chain = rail === "base" ? await baseChainFacts(args.env) : await solanaChainFacts(args.env);
    const [inbound, outbound, fees] = await Promise.all([balance(railAccountId("rail_inbound", rail)), balance(railAccountId("rail_outbound", rail)), balance(railFeesAccountId(rail))]);
    const ledger: RailLedgerFacts = {
      deposits_micro: inbound.debitsPostedMicro,
      payouts_micro: outbound.creditsPostedMicro,
      in_flight_micro: outbound.creditsPendingMicro,
      fees_micro: fees.creditsPostedMicro,
    };
    out.push(railDrift(rail, ledger, chain, floats.get(rail)!));
  }
  return out;
}

/** Human report, one block per rail. */
export function formatRailReconciliation(rs: readonly RailReconciliation[]): string {
  const lines = [`reconcile --rails: ${rs.every((r) => r.ok) ? "OK, no drift" : "DRIFT"}`];
  for (const r of rs) {
    lines.push(`  [${r.ok ? "ok" : "DRIFT"}] ${r.rail}: ${r.detail}`);
    lines.push(`      chain:    ${r.chain_micro} micro-USD (hot wallet ${r.chain.hot_wallet} ${r.chain.hot_usdc_micro}, deposit ${r.chain.deposit_account} ${r.chain.deposit_usdc_micro})`);
    lines.push(`      expected: ${r.expected_micro} = float ${r.float_micro} + deposits ${r.ledger.deposits_micro} − payouts ${r.ledger.payouts_micro}; in flight ${r.ledger.in_flight_micro}`);
    lines.push(`      drift:    ${r.drift_micro}`);
    lines.push(`      info:     fees collected ${r.ledger.fees_micro} micro-USD; native balance ${r.chain.native_balance} ${r.chain.native_unit}`);
  }
  return lines.join("\n");
}

/** JSON form (bigints as decimal strings). */
export function railReconciliationJson(rs: readonly RailReconciliation[]): string {
  return JSON.stringify({ ok: rs.every((r) => r.ok), rails: rs }, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}
