/**
 * SettlementService e2e harness: the real daemon in process with an injected clock
 * (tests/support/clock-daemon.ts), so quote expiry, leases and cooling periods are moved by the
 * test, never waited for. Authors earn through real sessions; payout destinations are proven with
 * real EIP-191 signatures (viem accounts); the rail adapter's signed transactions are real signed
 * EIP-1559 transactions whose hash the daemon checks.
 */
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { keccak256, parseUnits, type Hex } from "viem";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { OwnershipPurpose, SettlementService } from "../../clients/gen/masques/ledger/v1/settlement_service_pb.js";
import { authorEarningsId, railAccountId } from "../../src/domain/accounts.js";
import { idToHex } from "../../src/domain/ids.js";
import { railFeesAccountId } from "../../src/domain/settlement/ids.js";
import type { PrincipalKind } from "../../src/server/principal.js";
import { startClockDaemon, type ClockDaemon } from "../support/clock-daemon.js";
import { newSessionId } from "../sessions/harness.js";

export type Settlement = Client<typeof SettlementService>;

/** The payout terms every test daemon runs with (fee = 1,000 + ceil(amount x 50 / 10,000)). */
export const TEST_PAYOUT_ENV = {
  SETTLEMENT_BASE_CHAIN_ID: "31337",
  SETTLEMENT_BASE_FINALITY_DEPTH: "3",
  PAYOUT_FIXED_FEE_MICRO: "1000",
  PAYOUT_FEE_BPS: "50",
  PAYOUT_MIN_NET_MICRO: "10000",
  PAYOUT_QUOTE_TTL_S: "300",
  PAYOUT_DESTINATION_COOLING_S: "3600",
  PAYOUT_LEASE_S: "60",
  PAYOUT_LEASE_MAX_S: "600",
  SESSION_REAPER_INTERVAL_MS: "3600000",
};

export function expectedFee(amount_micro: bigint): bigint {
  return 1_000n + (amount_micro * 50n + 9_999n) / 10_000n;
}

export interface SettlementHarness {
  d: ClockDaemon;
  settlement(kind: PrincipalKind, id: string): Promise<Settlement>;
  /** Runs `sessions` researcher sessions (author-grace) each charged 500,000 micro-USD. */
  earn(agent: string, sessions: number): Promise<void>;
  /** Admin reads: [posted, available] of an author's earnings. */
  earnings(author: string): Promise<{ posted: bigint; available: bigint }>;
  /** Credits posted on the Base rail's outbound and fee accounts. */
  railCredits(): Promise<{ outbound: bigint; fees: bigint }>;
  /** Challenge + EIP-191 signature + register: the destination registered. */
  prove(author: string, account: PrivateKeyAccount): ReturnType<Settlement["registerPayoutDestination"]>;
  stop(): Promise<void>;
}

export async function startSettlementHarness(env: Record<string, string> = {}, opts: Parameters<typeof startClockDaemon>[1] = {}): Promise<SettlementHarness> {
  const d = await startClockDaemon({ ...TEST_PAYOUT_ENV, ...env }, opts);
  const settlement = async (kind: PrincipalKind, id: string): Promise<Settlement> => {
    const token = await d.token(kind, id);
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    return createClient(SettlementService, createGrpcTransport({ baseUrl: `http://${d.daemon.grpcAddr}`, interceptors: [auth] }));
  };
  const balance = async (id: bigint) => {
    const admin = await d.as("admin", "ops");
    return (await admin.accounts.getAccount({ account: { ref: { case: "accountId", value: idToHex(id) } } })).account!.balance!;
  };
  return {
    d,
    settlement,
    async earn(agent, sessions) {
      const c = await d.fundedAgent(agent, BigInt(sessions) * 500_000n);
      for (let i = 0; i < sessions; i++) {
        const sid = newSessionId();
        await c.sessions.don({ sessionId: sid, masque: "researcher" });
        // 625,000 output tokens x 0.0008 USD / 1k = 500,000 micro-USD = the masque's reserve.
        await c.sessions.recordUsage({ events: [{ sessionId: sid, seq: 1n, outputTokens: 625_000n }] });
        await c.sessions.doff({ sessionId: sid });
      }
    },
    async earnings(author) {
      const b = await balance(authorEarningsId(author));
      return { posted: b.postedMicro, available: b.availableMicro };
    },
    async railCredits() {
      const [o, f] = await Promise.all([balance(railAccountId("rail_outbound", "base")), balance(railFeesAccountId("base"))]);
      return { outbound: o.creditsPostedMicro, fees: f.creditsPostedMicro };
    },
    async prove(author, account) {
      const s = await settlement("author", author);
      const { challenge } = await s.createDestinationChallenge({ purpose: OwnershipPurpose.PAYOUT_DESTINATION, rail: Rail.BASE, address: account.address.toLowerCase() });
      const signature = await account.signMessage({ message: challenge!.message });
      return s.registerPayoutDestination({ rail: Rail.BASE, address: account.address, proof: { challengeId: challenge!.challengeId, signature } });
    },
    stop: () => d.stop(),
  };
}

export function newAccount(): PrivateKeyAccount {
  return privateKeyToAccount(generatePrivateKey());
}

/** A real signed EIP-1559 USDC-like transfer from a hot wallet, and its hash. */
export async function signedPayoutTx(hot: PrivateKeyAccount, to: Hex, nonce: number, net_micro: bigint): Promise<{ bytes: Uint8Array; hash: Hex }> {
  const data = `0xa9059cbb${to.slice(2).toLowerCase().padStart(64, "0")}${net_micro.toString(16).padStart(64, "0")}` as Hex;
  const serialized = await hot.signTransaction({
    chainId: 31337,
    type: "eip1559",
    to: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    data,
    nonce,
    gas: 100_000n,
    maxFeePerGas: parseUnits("2", 9),
    maxPriorityFeePerGas: parseUnits("1", 9),
    value: 0n,
  });
  return { bytes: Buffer.from(serialized.slice(2), "hex"), hash: keccak256(serialized) };
}
