/**
 * Issue 10, "several daemons: nothing that decides money may rest on one process's memory". Two
 * SessionService instances stand in for two daemons: ONE ledger client (the embedded engine
 * admits one process; no TigerBeetle server runs here) and ONE control-plane database, but each
 * with its own catalog directory, its own price-book cache and its own session index. Daemon A's
 * MASQUES_DIR has a masque daemon B has never loaded ("translator", by an author B's catalog does
 * not name): B learns its price book only through the database. Dons, usage, Doffs and the reaper
 * are split across both, concurrently; then every session is priced and split correctly, the
 * balances are exact, nothing is overdrawn, and reconcile (ledger vs its ClickHouse copy) holds.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BillingMode, SessionStatus, UsageOutcome, type Session, type UsageEvent } from "../../clients/gen/masques/ledger/v1/session_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { openControlPlane, controlPlaneOptions, type ControlPlane } from "../../src/controlplane/index.js";
import { createPriceBookStore } from "../../src/controlplane/pricebooks.js";
import { agentWalletAccounts, agentWalletId, depositTransfer } from "../../src/domain/accounts.js";
import { accrue } from "../../src/domain/pricing.js";
import { createCoalescedClient } from "../../src/ledger/coalescer.js";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import type { Principal } from "../../src/server/principal.js";
import type { DaemonContext } from "../../src/server/registry.js";
import { onStart } from "../../src/services/index.js";
import { reapOnce } from "../../src/services/sessions/reaper.js";
import { createSessionInstance, type SessionServiceInstance } from "../../src/services/sessions/service.js";
import { ChdbSink, formatReconcileReport, migrate, reconcile, Streamer } from "../../src/streamer/index.js";
import { seedControlPlane } from "../support/pglite-template.js";
import { newSessionId } from "./harness.js";

const AGENTS = 4;
const PER_AGENT = 6; // sessions per agent: 3 donned on A (translator / researcher), 3 on B (researcher)
const DEPOSIT = 100_000_000n;
const TRANSLATOR_AUTHOR = "author-nadia";

const TRANSLATOR_YAML = `name: translator
index: 41
version: "1.0.0"
ring: player
author: ${TRANSLATOR_AUTHOR}
attributes:
  domain: language
  tagline: "Translates with care"
intent:
  allowed:
    - "translate *"
context: |
  You translate technical documents.
lens: |
  Keep the meaning; keep the terms.
pricing:
  flat_per_session: "0.013"
  per_minute: "0.0007"
  per_1k_input_tokens: "0.0011"
  per_1k_output_tokens: "0.0023"
  per_tool_call: "0.0003"
  cap_per_session: "3"
  reserve: "1"
`;

let dir: string;
let inner: EmbeddedClient;
let cp: ControlPlane;
let offset_ns = 0n;
const clock = () => BigInt(Date.now()) * 1_000_000n + offset_ns;
let A: SessionServiceInstance;
let B: SessionServiceInstance;

const agent = (id: string): Principal => ({ kind: "agent", id, scopes: ["ledger:read", "ledger:write"] });
const author = (id: string): Principal => ({ kind: "author", id, scopes: ["ledger:read"] });

/** One daemon's context: shared ledger and database, its own config, catalog and price-book cache. */
function daemonCtx(ledger: DaemonContext["ledger"], masquesDir: string): DaemonContext {
  // LEDGER=tigerbeetle: the instances behave as daemons in front of a cluster (no single-writer
  // shortcuts: reads trust no index). The ledger client is injected, so nothing connects there.
  const config = loadConfig({ MASQUES_DATA_DIR: dir, MASQUES_DIR: masquesDir, SESSION_IDLE_S: "5", BILLING_MODE: "live", LEDGER: "tigerbeetle", TB_ADDRESSES: "3000" });
  return {
    ledger,
    controlplane: { ...cp, priceBooks: createPriceBookStore({ db: cp.db }) },
    config,
    log: pino({ level: "silent" }),
    clock,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "two-daemons-"));
  const masquesA = path.join(dir, "masques-a");
  cpSync(path.resolve("masques"), masquesA, { recursive: true });
  writeFileSync(path.join(masquesA, "translator.yaml"), TRANSLATOR_YAML);
  inner = createEmbeddedClient({ dataDir: path.join(dir, "ledger") });
  const ledger = createCoalescedClient(inner);
  await seedControlPlane(dir);
  cp = await openControlPlane(controlPlaneOptions(loadConfig({ MASQUES_DATA_DIR: dir })));
  const ctxB = daemonCtx(ledger, path.resolve("masques"));
  await onStart(ctxB);
  // B starts first: its start-up reads every stored price book, and translator's is not stored yet.
  B = createSessionInstance(ctxB, { reaper: false });
  await B.ready;
  A = createSessionInstance(daemonCtx(ledger, masquesA), { reaper: false });
  await A.ready;
}, 120_000);

afterAll(async () => {
  A?.stop();
  B?.stop();
  await inner?.close();
  await cp?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function fundedAgent(id: string): Promise<Principal> {
  await A.state.ledger.createAccounts(agentWalletAccounts(id, "prepaid"));
  await A.state.ledger.createTransfers([depositTransfer({ walletId: agentWalletId(id), amountMicro: DEPOSIT, rail: null, idempotencyKey: `two-daemons-${id}` })]);
  return agent(id);
}

const ev = (sid: string, seq: bigint, n: bigint): UsageEvent =>
  ({ sessionId: sid, seq, inputTokens: 10_000n * n, outputTokens: 3_000n * n, toolCalls: n }) as UsageEvent;

interface Planned {
  sid: string;
  p: Principal;
  agent_id: string;
  masque: string;
  donOn: SessionServiceInstance;
  usageOn: SessionServiceInstance;
  /** Doffed by the other daemon, or left idle for the reaper. */
  end: "doff" | "reap";
}

describe("two daemons over one ledger and one control-plane database", () => {
  it("B does not know translator from its catalog: only the database can tell it", () => {
    expect(A.state.catalog.byName.has("translator")).toBe(true);
    expect(B.state.catalog.byName.has("translator")).toBe(false);
    const v = A.state.catalog.byName.get("translator")!.price_version;
    expect(A.state.registry.peek(v)).toBeDefined();
    expect(B.state.registry.peek(v)).toBeUndefined();
    expect([A.state.singleWriter, B.state.singleWriter]).toEqual([false, false]);
  });

  it("concurrent Dons, usage, Doffs and the reaper split across both: every session priced, split and paid exactly", async () => {
    const plan: Planned[] = [];
    for (let a = 0; a < AGENTS; a++) {
      const agent_id = `two-daemons-agent-${a}`;
      const p = await fundedAgent(agent_id);
      for (let k = 0; k < PER_AGENT; k++) {
        const onA = k % 2 === 0;
        plan.push({
          sid: newSessionId(),
          p,
          agent_id,
          masque: onA && k !== 2 ? "translator" : "researcher",
          donOn: onA ? A : B,
          usageOn: (a + k) % 2 === 0 ? A : B,
          end: k >= 4 ? "reap" : "doff",
        });
      }
    }
    // Dons on both daemons at once.
    const dons = await Promise.all(
      plan.map((x) => x.donOn.handlers.don(x.p, { sessionId: x.sid, masque: x.masque, agentId: "", maxSpendMicro: 0n, billingMode: BillingMode.UNSPECIFIED })),
    );
    for (const d of dons) expect(d.created).toBe(true);
    // Usage on either daemon, three events per session, all at once.
    const usage = await Promise.all(
      plan.map((x) => Promise.all([1n, 2n, 3n].map((seq) => x.usageOn.handlers.recordUsage(x.p, [ev(x.sid, seq, seq)])))),
    );
    for (const rs of usage) for (const r of rs) expect(r.results[0]!.outcome).toBe(UsageOutcome.APPLIED);

    // Doffs on the daemon that did NOT don the session, all at once.
    const doffs = plan.filter((x) => x.end === "doff");
    const doffed = await Promise.all(doffs.map((x) => (x.donOn === A ? B : A).handlers.doff(x.p, x.sid)));
    for (const s of doffed) expect(s.status).toBe(SessionStatus.DOFFED);

    // The rest idles out; both reapers run at once (each settles what it gets first; the ledger
    // refuses the second settlement of a session).
    offset_ns += 60n * 1_000_000_000n;
    await Promise.all([reapOnce(A.state), reapOnce(B.state)]);

    const total = { input_tokens: 60_000n, output_tokens: 18_000n, tool_calls: 6n };
    const byAgent = new Map<string, bigint>();
    const byAuthor = new Map<string, bigint>();
    let platform = 0n;
    for (const x of plan) {
      // Read on the daemon that did not don it (B prices translator sessions from the database).
      const reader = x.donOn === A ? B : A;
      const s: Session = await reader.handlers.get(x.p, x.sid);
      expect(s.status).toBe(x.end === "doff" ? SessionStatus.DOFFED : SessionStatus.REAPED);
      const m = A.state.catalog.byName.get(x.masque)!;
      expect(s.masqueName).toBe(x.masque);
      expect(s.author).toBe(m.author);
      expect(s.priceVersion).toBe(m.price_version);
      expect(s.usage).toMatchObject({ inputTokens: total.input_tokens, outputTokens: total.output_tokens, toolCalls: total.tool_calls });
      const price = accrue(m.pricing, total, s.billedDurationMs).price_micro;
      expect(s.priceMicro).toBe(price);
      expect(s.chargedMicro).toBe(price); // live mode, under the hold
      expect(s.authorShareMicro + s.platformFeeMicro + s.refundMicro).toBe(s.holdMicro);
      expect(s.authorShareMicro + s.platformFeeMicro).toBe(s.chargedMicro);
      // The daemon that donned it reads the same settled session (its index is no authority).
      expect(await x.donOn.handlers.get(x.p, x.sid)).toEqual(s);
      byAgent.set(x.agent_id, (byAgent.get(x.agent_id) ?? 0n) + s.chargedMicro);
      byAuthor.set(s.author, (byAuthor.get(s.author) ?? 0n) + s.authorShareMicro);
      platform += s.platformFeeMicro;
    }
    expect(byAuthor.get(TRANSLATOR_AUTHOR)).toBeGreaterThan(0n);

    // Balances exact; no wallet overdrawn; escrow empty.
    const ids = A.state.ids;
    const accounts = await A.state.ledger.lookupAccounts([
      ...[...byAgent.keys()].map((id) => agentWalletId(id)),
      ...[...byAuthor.keys()].map((id) => ids.authorEarnings(id)),
      ids.platformRevenue,
      ids.escrow,
    ]);
    const get = (id: bigint) => accounts.find((a) => a.id === id)!;
    for (const [id, charged] of byAgent) {
      const w = get(agentWalletId(id));
      expect(w.debits_pending).toBe(0n);
      expect(w.credits_posted - w.debits_posted).toBe(DEPOSIT - charged);
      expect(w.debits_posted).toBeLessThanOrEqual(w.credits_posted);
    }
    for (const [id, earned] of byAuthor) {
      const e = get(ids.authorEarnings(id));
      expect(e.credits_posted - e.debits_posted).toBe(earned);
    }
    const rev = get(ids.platformRevenue);
    expect(rev.credits_posted - rev.debits_posted).toBe(platform);
    const escrow = get(ids.escrow);
    expect(escrow.debits_pending + escrow.credits_pending).toBe(0n);
    expect(escrow.credits_posted).toBe(escrow.debits_posted);

    // The translator author lists their sessions on B, whose catalog does not name them.
    const listed = await B.handlers.list(author(TRANSLATOR_AUTHOR), { owner: { case: "author", value: TRANSLATOR_AUTHOR }, statuses: [], pageSize: 100, pageToken: "" });
    const translatorSids = plan.filter((x) => x.masque === "translator").map((x) => x.sid).sort();
    expect(listed.sessions.map((s) => s.sessionId).sort()).toEqual(translatorSids);
    for (const s of listed.sessions) expect(s.priceMicro).toBeGreaterThan(0n);
    // ... and by masque name, which only the database names on B.
    const byMasque = await B.handlers.list(author(TRANSLATOR_AUTHOR), { owner: { case: "masque", value: "translator" }, statuses: [], pageSize: 100, pageToken: "" });
    expect(byMasque.sessions.map((s) => s.sessionId).sort()).toEqual(translatorSids);
    await expect(
      B.handlers.list(author("author-grace"), { owner: { case: "masque", value: "translator" }, statuses: [], pageSize: 100, pageToken: "" }),
    ).rejects.toThrow(/may list only sessions of its own masques/);
    // Another author may not read them, on either daemon.
    const stranger = author("author-grace");
    const x = plan.find((y) => y.masque === "translator")!;
    await expect(B.handlers.get(stranger, x.sid)).rejects.toThrow(/may not read session/);
    await expect(A.handlers.get(stranger, x.sid)).rejects.toThrow(/may not read session/);
    await expect(B.handlers.get(author(TRANSLATOR_AUTHOR), x.sid)).resolves.toMatchObject({ author: TRANSLATOR_AUTHOR });
  }, 240_000);

  it("reconcile holds: the ledger and its ClickHouse copy agree (sessions' splits included)", async () => {
    const sink = await ChdbSink.open({ path: path.join(dir, "chdb"), database: "masques" });
    try {
      await migrate(sink);
      const streamer = await Streamer.create({ client: inner, sink, expiry_check_ms: 0 });
      await streamer.syncOnce();
      const report = await reconcile({ client: inner, sink });
      expect(report.drift, formatReconcileReport(report)).toEqual([]);
      expect(report.ok).toBe(true);
    } finally {
      await sink.close();
    }
  }, 120_000);
});
