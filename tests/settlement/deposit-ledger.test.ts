/**
 * Deposit credits against the real embedded engine (issue 13 "Deposits"; seed 004 §4.3): one
 * chain event is credited exactly once, whatever spelling or how many times it is reported, and
 * the same event reported with other facts is refused with nothing credited.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { availableMicro, railAccountId } from "../../src/domain/accounts.js";
import {
  decideDepositReport,
  type DepositDecision,
  type DepositReport,
  canonicalDepositKey,
  depositCreditId,
  depositCreditPlan,
  depositOutcome,
  DepositKeyError,
} from "../../src/domain/settlement/index.js";
import { account, openAgentWallet, openSettlementLedger, submit, type SettlementLedger } from "./fixture.js";

let l: SettlementLedger;
beforeEach(async () => {
  l = await openSettlementLedger();
});
afterEach(async () => {
  await l.close();
});

const TX = "0x" + "ab".repeat(32);

async function credit(report: { chain_id: string; tx_ref: string; event_index: number }, wallet_id: bigint, amount_micro: bigint) {
  const key = canonicalDepositKey("base", report);
  const [r] = await submit(l, [depositCreditPlan({ key, wallet_id, amount_micro })]);
  return depositOutcome(r!);
}

describe("deposit credit", () => {
  it("the same (chain, tx, log index) reported twice — and in upper-case hex — is credited once", async () => {
    const wallet = await openAgentWallet(l, "agent-1");
    expect(await credit({ chain_id: "eip155:8453", tx_ref: TX, event_index: 3 }, wallet, 25_000_000n)).toEqual({ kind: "credited" });
    expect(await credit({ chain_id: "eip155:8453", tx_ref: TX, event_index: 3 }, wallet, 25_000_000n)).toEqual({ kind: "already_credited" });
    expect(await credit({ chain_id: "eip155:8453", tx_ref: "0x" + "AB".repeat(32), event_index: 3 }, wallet, 25_000_000n)).toEqual({
      kind: "already_credited",
    });
    const w = await account(l, wallet);
    expect([w.credits_posted, availableMicro(w)]).toEqual([25_000_000n, 25_000_000n]);
    expect((await account(l, railAccountId("rail_inbound", "base"))).debits_posted).toBe(25_000_000n);
  });

  it("another log index of the same tx, or the same tx on another chain, is another deposit", async () => {
    const wallet = await openAgentWallet(l, "agent-2");
    expect((await credit({ chain_id: "eip155:8453", tx_ref: TX, event_index: 3 }, wallet, 1_000_000n)).kind).toBe("credited");
    expect((await credit({ chain_id: "eip155:8453", tx_ref: TX, event_index: 4 }, wallet, 1_000_000n)).kind).toBe("credited");
    expect((await credit({ chain_id: "eip155:84532", tx_ref: TX, event_index: 3 }, wallet, 1_000_000n)).kind).toBe("credited");
    expect((await account(l, wallet)).credits_posted).toBe(3_000_000n);
  });

  it("a replay with another amount or another wallet is refused and credits nothing", async () => {
    const wallet = await openAgentWallet(l, "agent-3");
    const other = await openAgentWallet(l, "agent-4");
    const report = { chain_id: "eip155:8453", tx_ref: TX, event_index: 0 };
    expect((await credit(report, wallet, 5_000_000n)).kind).toBe("credited");
    expect(await credit(report, wallet, 50_000_000n)).toEqual({ kind: "facts_mismatch", status: "exists_with_different_amount" });
    expect(await credit(report, other, 5_000_000n)).toEqual({ kind: "facts_mismatch", status: "exists_with_different_credit_account_id" });
    expect((await account(l, wallet)).credits_posted).toBe(5_000_000n);
    expect((await account(l, other)).credits_posted).toBe(0n);
  });

  it("crediting a wallet that does not exist burns the deposit id: it can never be credited by this path (look up first)", async () => {
    const report = { chain_id: "eip155:8453", tx_ref: TX, event_index: 1 };
    const { agentWalletId } = await import("../../src/domain/accounts.js");
    expect(await credit(report, agentWalletId("agent-late"), 2_000_000n)).toEqual({ kind: "wallet_not_found" });
    const wallet = await openAgentWallet(l, "agent-late");
    // credit_account_not_found is transient in TigerBeetle: the failed id is never reused, even
    // once the wallet exists. Hence the service's rule: look the wallet up before submitting.
    expect(await credit(report, wallet, 2_000_000n)).toEqual({ kind: "id_already_failed" });
    expect((await account(l, wallet)).credits_posted).toBe(0n);
  });
});

describe("deposit keys", () => {
  it("canonicalises hex case, keeps base58 case, and names the field of a malformed key", () => {
    const k = canonicalDepositKey("base", { chain_id: "EIP155:8453", tx_ref: "0x" + "AB".repeat(32), event_index: 7 });
    expect(k).toEqual({ rail: "base", chain_id: "eip155:8453", tx_ref: TX, event_index: 7 });
    const sig = "5".repeat(43) + "Ab".repeat(22);
    const s = canonicalDepositKey("solana", { chain_id: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", tx_ref: sig, event_index: 2 });
    expect(s.tx_ref).toBe(sig);
    expect(depositCreditId(s)).not.toBe(depositCreditId({ ...s, tx_ref: sig.toLowerCase() }));

    const bad = (rail: "base" | "solana" | "lightning", r: { chain_id: string; tx_ref: string; event_index: number }) => {
      try {
        canonicalDepositKey(rail, r);
      } catch (e) {
        if (e instanceof DepositKeyError) return e.message;
        throw e;
      }
      return "accepted";
    };
    expect(bad("base", { chain_id: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", tx_ref: TX, event_index: 0 })).toMatch(/^chain_id: must be a CAIP-2 EVM/);
    expect(bad("base", { chain_id: "eip155:8453", tx_ref: "0x1234", event_index: 0 })).toMatch(/^tx_ref: /);
    expect(bad("base", { chain_id: "eip155:8453", tx_ref: TX, event_index: -1 })).toMatch(/^event_index: /);
    expect(bad("base", { chain_id: "eip155:8453", tx_ref: TX, event_index: 1.5 })).toMatch(/^event_index: /);
    expect(bad("lightning", { chain_id: "bip122:000000000019d6689c085ae165831e93", tx_ref: "ab".repeat(32), event_index: 1 })).toBe(
      "event_index: must be 0 on Lightning",
    );
    expect(bad("lightning", { chain_id: "bip122:000000000019d6689c085ae165831e93", tx_ref: "AB".repeat(32), event_index: 0 })).toBe("accepted");
  });

  it("refuses a zero or oversized amount before anything reaches the ledger", () => {
    const key = canonicalDepositKey("base", { chain_id: "eip155:1", tx_ref: TX, event_index: 0 });
    expect(() => depositCreditPlan({ key, wallet_id: 1n, amount_micro: 0n })).toThrow(/amount_micro: must be in \[1, 2\^63-1\]/);
    expect(() => depositCreditPlan({ key, wallet_id: 1n, amount_micro: 1n << 63n })).toThrow(/amount_micro/);
  });
});

describe("deciding a deposit report", () => {
  const CHAIN = "eip155:8453";
  const report = (over: Partial<DepositReport> = {}): DepositReport => ({
    chain_id: CHAIN,
    tx_ref: TX,
    event_index: 2,
    from_address: "0x1111111111111111111111111111111111111111",
    amount_micro: 10_000_000n,
    confirmations: 12,
    ...over,
  });
  const decide = (r: DepositReport, binding: { wallet_id: bigint; wallet: "open" | "missing" | "closed" } | null, earlier: { from_address: string; amount_micro: bigint } | null = null) =>
    decideDepositReport({ rail: "base", chain_id: CHAIN, finality_depth: 12, report: r, earlier, binding });

  async function apply(d: DepositDecision) {
    if (d.action !== "credit") return d.action;
    const [r] = await submit(l, [d.transfer]);
    return depositOutcome(r!).kind;
  }

  it("below finality credits nothing; at finality credits once; a report after a reorg re-included it (new block) credits nothing more", async () => {
    const wallet = await openAgentWallet(l, "agent-r");
    const bound = { wallet_id: wallet, wallet: "open" as const };
    expect(await apply(decide(report({ confirmations: 3 }), bound))).toBe("record_confirming");
    expect((await account(l, wallet)).credits_posted).toBe(0n);
    expect(await apply(decide(report({ confirmations: 11 }), bound))).toBe("record_confirming");
    expect((await account(l, wallet)).credits_posted).toBe(0n);
    const earlier = { from_address: report().from_address, amount_micro: report().amount_micro };
    expect(await apply(decide(report({ confirmations: 12 }), bound, earlier))).toBe("credited");
    expect(await apply(decide(report({ confirmations: 40 }), bound, earlier))).toBe("already_credited");
    expect((await account(l, wallet)).credits_posted).toBe(10_000_000n);
  });

  it("an unbound source, or a wallet that is missing or closed, is held: nothing submitted, so nothing burned", async () => {
    const held = decide(report(), null);
    expect(held).toMatchObject({ action: "hold", why: "unbound_source" });
    expect(decide(report(), { wallet_id: 1n, wallet: "missing" })).toMatchObject({ action: "hold", why: "wallet_missing" });
    expect(decide(report(), { wallet_id: 1n, wallet: "closed" })).toMatchObject({ action: "hold", why: "wallet_closed" });
    // After an admin binds the source, the same event is credited once.
    const wallet = await openAgentWallet(l, "agent-h");
    expect(await apply(decide(report(), { wallet_id: wallet, wallet: "open" }))).toBe("credited");
    expect((await account(l, wallet)).credits_posted).toBe(10_000_000n);
  });

  it("refuses another chain, malformed keys, bad amounts, and facts that contradict an earlier report", () => {
    const bound = { wallet_id: 1n, wallet: "open" as const };
    expect(decide(report({ chain_id: "eip155:1" }), bound)).toEqual({ action: "refuse", reason: "WRONG_CHAIN", chain_id: "eip155:1", expected_chain_id: CHAIN });
    expect(decide(report({ tx_ref: "0xdead" }), bound)).toMatchObject({ action: "refuse", reason: "INVALID_ARGUMENT", field: "tx_ref" });
    expect(decide(report({ amount_micro: 0n }), bound)).toMatchObject({ action: "refuse", reason: "INVALID_ARGUMENT", field: "amount_micro" });
    expect(decide(report({ confirmations: -1 }), bound)).toMatchObject({ action: "refuse", field: "confirmations" });
    const earlier = { from_address: report().from_address, amount_micro: 10_000_000n };
    expect(decide(report({ amount_micro: 10_000_001n }), bound, earlier)).toEqual({
      action: "refuse",
      reason: "DEPOSIT_FACTS_MISMATCH",
      field: "amount_micro",
      recorded: "10000000",
      reported: "10000001",
    });
    expect(decide(report({ from_address: "0x2222222222222222222222222222222222222222" }), bound, earlier)).toMatchObject({
      reason: "DEPOSIT_FACTS_MISMATCH",
      field: "from_address",
    });
    // Upper-case hex of the same event is the same event (and the same earlier facts apply).
    expect(decide(report({ tx_ref: "0x" + "AB".repeat(32), amount_micro: 1n }), bound, earlier)).toMatchObject({ reason: "DEPOSIT_FACTS_MISMATCH" });
  });
});
