/**
 * Power loss, simulated by a storage layer that keeps only what was synced (support/power-loss-ops):
 * every acknowledged write survives, so this fails if the log's fsync (O_DSYNC, or write +
 * fdatasync) or the directory fsync after creating a segment were removed. A SIGKILL keeps the
 * page cache, so the crash tests cannot notice either (ADR 0010).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AccountFlags, CreateTransferStatus, type Transfer } from "tigerbeetle-node";
import { createEmbeddedClient, type EmbeddedClient, type EngineLog } from "../../../src/ledger/embedded/index.js";
import { newAccount, newTransfer } from "../../../src/domain/records.js";
import { PowerLossFileOps } from "../support/power-loss-ops.js";

let dir: string;
let warned: Record<string, unknown>[];
const log: EngineLog = { warn: (fields) => warned.push(fields), error: (fields) => warned.push(fields) };
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "power-loss-test-"));
  warned = [];
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const SEED = process.env.LEDGER_POWER_SEED !== undefined ? Number(process.env.LEDGER_POWER_SEED) : (Date.now() % 0x7fffffff) | 1;
function rng(seed: number): () => number {
  let s = seed;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

function transfer(id: bigint, amount: bigint): Transfer {
  return newTransfer({ id, debit_account_id: 2n, credit_account_id: 1n, amount, ledger: 1, code: 20 });
}

async function setUp(ops: PowerLossFileOps): Promise<EmbeddedClient> {
  const c = createEmbeddedClient({ dataDir: dir, logFileOps: ops, log, snapshotMinLogBytes: 1 << 30 });
  await c.createAccounts([1n, 2n].map((id) => newAccount({ id, ledger: 1, code: 10, flags: AccountFlags.history })));
  return c;
}

/** After the power comes back: the old engine is gone, a new one opens the same directory. */
async function reboot(old: EmbeddedClient): Promise<EmbeddedClient> {
  old.destroy();
  fs.rmSync(path.join(dir, "LOCK"), { force: true }); // its owner died with the power
  return createEmbeddedClient({ dataDir: dir, log });
}

describe("power loss", () => {
  it("the simulation drops what was never synced (so the test below can fail)", () => {
    const ops = new PowerLossFileOps();
    const file = path.join(dir, "probe");
    const fd = ops.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    ops.writeSync(fd, Buffer.from("synced"), 0);
    ops.fsyncSync(fd);
    const dfd = ops.open(dir, fs.constants.O_RDONLY, 0);
    ops.fsyncSync(dfd);
    ops.close(dfd);
    ops.writeSync(fd, Buffer.from(" and lost"), 6);
    ops.close(fd);
    const other = path.join(dir, "never-dir-synced");
    const ofd = ops.open(other, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DSYNC, 0o600);
    ops.writeSync(ofd, Buffer.from("data synced, name not"), 0);
    ops.close(ofd);
    ops.powerLoss();
    expect(fs.readFileSync(file, "utf8")).toBe("synced");
    expect(fs.existsSync(other)).toBe(false);
  });

  it("keeps every acknowledged transfer, in single and concurrent requests", async () => {
    const ops = new PowerLossFileOps();
    const c = await setUp(ops);
    let id = 100n;
    let acked = 0n;
    for (let i = 0; i < 20; i++) {
      const r = await c.createTransfers([transfer(id++, 1n)]);
      expect(r[0]!.status).toBe(CreateTransferStatus.created);
      acked += 1n;
    }
    const results = await Promise.all(Array.from({ length: 64 }, () => c.createTransfers([transfer(id++, 2n)])));
    for (const r of results) expect(r[0]!.status).toBe(CreateTransferStatus.created);
    acked += 128n;
    expect(ops.syncs).toBeGreaterThan(0);
    ops.powerLoss();

    const r = await reboot(c);
    const [wallet] = await r.lookupAccounts([1n]);
    expect(wallet?.credits_posted).toBe(acked);
    expect((await r.lookupTransfers(Array.from({ length: 84 }, (_, i) => 100n + BigInt(i)))).length).toBe(84);
    await r.close();
  });

  it("keeps every acknowledged transfer across snapshots (the snapshot's own fsyncs, then old segments deleted)", async () => {
    const ops = new PowerLossFileOps();
    const c = await setUp(ops);
    let id = 100n;
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 30 }, () => c.createTransfers([transfer(id++, 1n)])));
      await c.snapshot();
    }
    await Promise.all(Array.from({ length: 10 }, () => c.createTransfers([transfer(id++, 1n)])));
    expect(c.stats().snapshots_taken).toBe(3);
    ops.powerLoss();

    const r = await reboot(c);
    expect(r.stats().snapshot_seq).toBeGreaterThan(0n);
    const [wallet] = await r.lookupAccounts([1n]);
    expect(wallet?.credits_posted).toBe(100n);
    await r.close();
  });

  it(`loses nothing acknowledged when the power fails in the middle of writes (LEDGER_POWER_SEED=${SEED})`, async () => {
    const next = rng(SEED);
    let tornCut = 0;
    for (let round = 0; round < 6; round++) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir);
      const ops = new PowerLossFileOps({ tornPages: next });
      const c = await setUp(ops);
      const acked = new Set<bigint>();
      let id = 1000n;
      // Big and small requests in flight; the power fails after a seeded number of acknowledgements.
      const cutAfter = 3 + (next() % 20);
      let inFlight: Promise<void>[] = [];
      let stop = false;
      const fire = (n: number): void => {
        const batch = Array.from({ length: n }, () => transfer(id++, 1n));
        inFlight.push(
          c.createTransfers(batch).then(
            (res) => {
              if (stop) return;
              res.forEach((x, i) => x.status === CreateTransferStatus.created && acked.add(batch[i]!.id));
            },
            () => undefined, // failed by the power loss: never acknowledged
          ),
        );
      };
      let acks = 0;
      while (acks < cutAfter) {
        fire(1 + (next() % 3) * 40);
        fire(1);
        await Promise.race(inFlight);
        acks++;
      }
      // Cut while the next writes are in flight (submitted, not yet answered).
      fire(60);
      fire(1);
      await new Promise((resolve) => setImmediate(resolve));
      ops.powerLoss();
      stop = true;
      await Promise.all(inFlight);
      inFlight = [];

      const r = await reboot(c);
      if (r.stats().torn_tail_truncated) tornCut++;
      const ids = [...acked];
      const found = new Set((await r.lookupTransfers(ids)).map((t) => t.id));
      expect(ids.filter((x) => !found.has(x)), `round ${round} (LEDGER_POWER_SEED=${SEED}): acknowledged transfers lost`).toEqual([]);
      const [wallet] = await r.lookupAccounts([1n]);
      expect(wallet!.credits_posted).toBeGreaterThanOrEqual(BigInt(acked.size));
      await r.close();
    }
    console.log(`power loss (LEDGER_POWER_SEED=${SEED}): ${tornCut} of 6 reboots cut a torn tail`);
  });
});
