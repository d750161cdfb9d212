/**
 * The SDK's `view` option on don / doff / cancel (issue 20 follow-up, ADR 0128): "basic" returns a
 * BasicSession — the id, status, close reason, billing mode, hold and every amount, to the micro,
 * and nothing else — while "full" and the default return the whole Session as before. Checked
 * against a real daemon, with the wallet and earnings balances the amounts must agree with.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import path from "node:path";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { MasquesClient } from "../../clients/sdk/client.js";
import { InvalidArgumentError, NotFoundError } from "../../clients/sdk/errors.js";
import {
  BASIC_SESSION_FIELDS,
  BillingMode,
  isFullSession,
  newSessionId,
  SessionStatus,
  type BasicSession,
  type Session,
  type SessionViewName,
} from "../../clients/sdk/sessions.js";
import { CloseReason } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { expectAnalyticsReconcile } from "../support/reconcile.js";

const MASQUES_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../masques");
const AUTHOR = "author-grace"; // masques/researcher.yaml: reserve $0.50, no flat or per-minute price
const HOLD = 500_000n;
const DEPOSIT = 3_000_000n;

let d: Daemon;
let admin: MasquesClient;

beforeAll(async () => {
  d = await startDaemon({ env: { MASQUES_DIR } });
  admin = new MasquesClient({ endpoint: `http://${d.grpcAddr}`, token: await d.token("admin", "ops"), env: {} });
});
afterAll(async () => {
  await d?.stop();
});

let n = 0;
/** A fresh agent with DEPOSIT in its wallet, and its own client. */
async function fundedAgent(): Promise<MasquesClient> {
  const id = `agent-view-${++n}`;
  await admin.openAgentWallet({ agent_id: id });
  await admin.deposit({ to: { agent_id: id }, amount_micro: DEPOSIT }, { idempotency_key: `view-dep-${n}` });
  return new MasquesClient({ endpoint: `http://${d.grpcAddr}`, token: await d.token("agent", id), env: {} });
}

async function earnedMicro(): Promise<bigint> {
  try {
    return (await admin.getAccount({ author_id: AUTHOR })).balance?.creditsPostedMicro ?? 0n;
  } catch (e) {
    if (e instanceof NotFoundError) return 0n;
    throw e;
  }
}

/** The basic fields of a full session, to compare a BasicSession with what GetSession says. */
function basicOf(s: Session): BasicSession {
  return Object.fromEntries(BASIC_SESSION_FIELDS.map((k) => [k, s[k]])) as BasicSession;
}

describe("SDK sessions: view basic | full", () => {
  it("basic don / doff return only the id, state and amounts, exact to the micro, and the balances agree", async () => {
    const agent = await fundedAgent();
    const earned_before = await earnedMicro();
    const sid = newSessionId();

    const don = await agent.sessions.don({ masque: "researcher", session_id: sid, view: "basic" });
    expect(don.created).toBe(true);
    expect(Object.keys(don.session).sort()).toEqual([...BASIC_SESSION_FIELDS].sort());
    expect(isFullSession(don.session)).toBe(false);
    // @ts-expect-error a basic session has no masque name (nor times, nor usage)
    expect(don.session.masqueName).toBeUndefined();
    expect(don.session).toMatchObject({ sessionId: sid, status: SessionStatus.OPEN, billingMode: BillingMode.LIVE, holdMicro: HOLD, chargedMicro: 0n, refundMicro: 0n });
    const held = await agent.getAccount();
    expect(held.balance?.availableMicro).toBe(DEPOSIT - HOLD);
    expect(held.balance?.debitsPendingMicro).toBe(HOLD);
    expect(don.session).toEqual({ ...basicOf(await agent.sessions.get(sid)), priceMicro: don.session.priceMicro });

    await agent.sessions.recordUsage([{ session_id: sid, seq: 1, input_tokens: 10_000n, output_tokens: 5_000n, tool_calls: 3n }]);
    const doffed = await agent.sessions.doff(sid, { view: "basic" });
    expect(Object.keys(doffed).sort()).toEqual([...BASIC_SESSION_FIELDS].sort());
    // 10k in x $0.0002/1k + 5k out x $0.0008/1k + 3 calls x $0.0005 = 2,000 + 4,000 + 1,500 micro-USD;
    // the platform takes 15 % (rounded down), the author the rest.
    expect(doffed).toEqual({
      sessionId: sid,
      billingMode: BillingMode.LIVE,
      status: SessionStatus.DOFFED,
      closeReason: CloseReason.DOFF,
      holdMicro: HOLD,
      priceMicro: 7_500n,
      chargedMicro: 7_500n,
      postedMicro: 7_500n,
      debtMicro: 0n,
      refundMicro: HOLD - 7_500n,
      unbilledMicro: 0n,
      authorShareMicro: 6_375n,
      platformFeeMicro: 1_125n,
      platformFeeBps: 1500,
    });
    const settled = await agent.sessions.get(sid);
    expect(doffed).toEqual(basicOf(settled));
    const wallet = await agent.getAccount();
    expect(wallet.balance?.availableMicro).toBe(DEPOSIT - doffed.chargedMicro);
    expect(wallet.balance?.debitsPendingMicro).toBe(0n);
    expect(wallet.balance?.debitsPostedMicro).toBe(doffed.chargedMicro);
    expect((await earnedMicro()) - earned_before).toBe(doffed.authorShareMicro);

    // A retried Doff returns the recorded outcome in whichever view it asks for.
    expect(await agent.sessions.doff(sid, { view: "basic" })).toEqual(doffed);
    const again = await agent.sessions.doff(sid, { view: "full" });
    expect(again).toEqual(settled);
    expect(again.masqueName).toBe("researcher");
  });

  it("full and the default return the whole session, as before", async () => {
    const agent = await fundedAgent();
    const sid = newSessionId();
    const byDefault = await agent.sessions.don({ masque: "researcher", session_id: sid });
    expect(byDefault.session).toMatchObject({ sessionId: sid, masqueName: "researcher", author: AUTHOR, holdMicro: HOLD });
    expect(byDefault.session.donTime).toBeDefined();
    expect(byDefault.session.deadlineTime).toBeDefined();
    expect(byDefault.session.usage).toBeDefined();
    const retryFull = await agent.sessions.don({ masque: "researcher", session_id: sid, view: "full" });
    expect(retryFull.created).toBe(false);
    expect(retryFull.session.donTime).toEqual(byDefault.session.donTime);
    expect(retryFull.session.masqueName).toBe("researcher");
    // Basic on a retry: the recorded session, slim; nothing held twice.
    const retryBasic = await agent.sessions.don({ masque: "researcher", session_id: sid, view: "basic" });
    expect(retryBasic.created).toBe(false);
    expect(retryBasic.session.holdMicro).toBe(HOLD);
    expect(isFullSession(retryBasic.session)).toBe(false);
    expect((await agent.getAccount()).balance?.debitsPendingMicro).toBe(HOLD);

    await agent.sessions.recordUsage([{ session_id: sid, seq: 1, input_tokens: 1_000n }]);
    const doffed = await agent.sessions.doff(sid);
    expect(doffed).toEqual(await agent.sessions.get(sid));
    expect(doffed).toMatchObject({ masqueName: "researcher", status: SessionStatus.DOFFED, priceMicro: 200n, chargedMicro: 200n, refundMicro: HOLD - 200n });
    expect(doffed.usage?.inputTokens).toBe(1_000n);
    expect(doffed.endTime).toBeDefined();
  });

  it("basic cancel returns the voided hold as the refund, and the wallet has it all back", async () => {
    const agent = await fundedAgent();
    const sid = newSessionId();
    await agent.sessions.don({ masque: "researcher", session_id: sid, view: "basic" });
    const cancelled = await agent.sessions.cancel(sid, { view: "basic" });
    expect(Object.keys(cancelled).sort()).toEqual([...BASIC_SESSION_FIELDS].sort());
    expect(cancelled).toMatchObject({ sessionId: sid, status: SessionStatus.CANCELLED, holdMicro: HOLD, refundMicro: HOLD, chargedMicro: 0n, priceMicro: 0n, postedMicro: 0n });
    const wallet = await agent.getAccount();
    expect(wallet.balance?.availableMicro).toBe(DEPOSIT);
    expect(wallet.balance?.debitsPendingMicro).toBe(0n);
    const full = await agent.sessions.cancel(sid); // idempotent: the recorded session, full by default
    expect(full).toMatchObject({ status: SessionStatus.CANCELLED, masqueName: "researcher", refundMicro: HOLD });
  });

  it("a view that is neither basic nor full is refused before anything is sent", async () => {
    const agent = await fundedAgent();
    const sid = newSessionId();
    const bad = "slim" as unknown as SessionViewName;
    const e = await agent.sessions.don({ masque: "researcher", session_id: sid, view: bad }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as InvalidArgumentError).field).toBe("view");
    expect((e as Error).message).toBe('Invalid view: expected "basic" or "full", got "slim".');
    await expect(agent.sessions.get(sid)).rejects.toBeInstanceOf(NotFoundError); // no Don reached the daemon
    expect((await agent.getAccount()).balance?.availableMicro).toBe(DEPOSIT);
    await expect(agent.sessions.doff(sid, { view: bad })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(agent.sessions.cancel(sid, { view: bad })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe("analytics copy (issue 5: reconcile after every end-to-end scenario)", () => {
  it("the daemon's ClickHouse copy reconciles with its ledger after every scenario above", async () => {
    await expectAnalyticsReconcile(d);
  });
});
