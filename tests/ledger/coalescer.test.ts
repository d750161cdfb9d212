/**
 * The coalescer merges concurrent create requests into shared ledger batches without ever
 * changing an answer. Every test runs against the real embedded engine and compares the
 * coalesced answers with what each request gets when submitted on its own.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import fc from "fast-check";
import {
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  ErrorCodes,
  RequestError,
  TransferFlags,
  type Account,
  type Transfer,
} from "tigerbeetle-node";
import { createEmbeddedClient, type EmbeddedClient } from "../../src/ledger/embedded/index.js";
import { BATCH_MAX, createCoalescedClient } from "../../src/ledger/coalescer.js";
import { newAccount, newTransfer } from "../../src/domain/records.js";

const dirs: string[] = [];
const clients: EmbeddedClient[] = [];

async function engine(): Promise<EmbeddedClient> {
  const dir = await mkdtemp(path.join(tmpdir(), "coalescer-"));
  dirs.push(dir);
  const c = createEmbeddedClient({ dataDir: dir });
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function account(id: bigint, flags = 0, timestamp = 0n): Account {
  return newAccount({ id, ledger: 1, code: 1, flags, timestamp });
}

function transfer(id: bigint, debit: bigint, credit: bigint, amount: bigint, flags = 0): Transfer {
  return newTransfer({ id, debit_account_id: debit, credit_account_id: credit, amount, ledger: 1, code: 1, flags });
}

const statuses = (rs: { status: number }[]) => rs.map((r) => r.status);

describe("coalescer", () => {
  test("concurrent requests share ledger batches and each caller gets exactly its own results", async () => {
    const inner = await engine();
    const ledger = createCoalescedClient(inner);
    // 40 callers, each opening 3 accounts; caller 7 repeats an id of caller 3 (exists).
    const requests = Array.from({ length: 40 }, (_, i) =>
      [0, 1, 2].map((j) => account(BigInt(1000 + i * 10 + j))),
    );
    requests[7] = [account(1031n), account(1071n), account(1072n)];
    const before = ledger.stats.batches;
    const answers = await Promise.all(requests.map((r) => ledger.createAccounts(r)));
    expect(ledger.stats.batches - before).toBeLessThan(requests.length);
    for (const [i, a] of answers.entries()) {
      expect(a).toHaveLength(requests[i]!.length);
    }
    expect(statuses(answers[7]!)).toEqual([CreateAccountStatus.exists, CreateAccountStatus.created, CreateAccountStatus.created]);
    const all = answers.filter((_, i) => i !== 7).flat();
    expect(all.every((r) => r.status === CreateAccountStatus.created)).toBe(true);
    const ids = [...new Set(requests.flat().map((a) => a.id))];
    const found = await ledger.lookupAccounts(ids);
    expect(found.map((a) => a.id).sort()).toEqual(ids.sort());
  });

  test("a request ending with an open linked chain fails alone and does not swallow the next request", async () => {
    const inner = await engine();
    const ledger = createCoalescedClient(inner);
    await ledger.createAccounts([account(1n), account(2n)]);
    const open = [transfer(10n, 1n, 2n, 5n, TransferFlags.linked), transfer(11n, 1n, 2n, 5n, TransferFlags.linked)];
    const next = [transfer(12n, 1n, 2n, 7n)];
    const after = [transfer(13n, 1n, 2n, 9n)];
    const [a, b, c] = await Promise.all([ledger.createTransfers(open), ledger.createTransfers(next), ledger.createTransfers(after)]);
    expect(statuses(a)).toEqual([CreateTransferStatus.linked_event_failed, CreateTransferStatus.linked_event_chain_open]);
    expect(statuses(b)).toEqual([CreateTransferStatus.created]);
    expect(statuses(c)).toEqual([CreateTransferStatus.created]);
    const [acc] = await ledger.lookupAccounts([2n]);
    expect(acc!.credits_posted).toBe(16n);
  });

  test("closed linked chains inside a request stay intact when merged", async () => {
    const inner = await engine();
    const ledger = createCoalescedClient(inner);
    await ledger.createAccounts([account(1n), account(2n, AccountFlags.debits_must_not_exceed_credits)]);
    // Chain: 1->2 (5), then 2->1 (10) which overdraws account 2: the whole chain fails.
    const chain = [transfer(20n, 1n, 2n, 5n, TransferFlags.linked), transfer(21n, 2n, 1n, 10n)];
    const other = [transfer(22n, 1n, 2n, 3n)];
    const [a, b] = await Promise.all([ledger.createTransfers(chain), ledger.createTransfers(other)]);
    expect(statuses(a)).toEqual([CreateTransferStatus.linked_event_failed, CreateTransferStatus.exceeds_credits]);
    expect(statuses(b)).toEqual([CreateTransferStatus.created]);
  });

  test("imported and non-imported requests never share a batch", async () => {
    const inner = await engine();
    const ledger = createCoalescedClient(inner);
    const past = 1_600_000_000_000_000_000n;
    const imported = [account(101n, AccountFlags.imported, past), account(102n, AccountFlags.imported, past + 1n)];
    const plain = [account(103n)];
    const batches = ledger.stats.batches;
    // Imported first: imported timestamps must not regress behind existing objects.
    const [b, a] = await Promise.all([ledger.createAccounts(imported), ledger.createAccounts(plain)]);
    expect(statuses(a)).toEqual([CreateAccountStatus.created]);
    expect(statuses(b)).toEqual([CreateAccountStatus.created, CreateAccountStatus.created]);
    expect(ledger.stats.batches - batches).toBe(2);
    const [acc] = await ledger.lookupAccounts([101n]);
    expect(acc!.timestamp).toBe(past);
  });

  test("a request larger than 8189 events is rejected like the real client, and nothing is applied", async () => {
    const inner = await engine();
    const ledger = createCoalescedClient(inner);
    const big = Array.from({ length: BATCH_MAX + 1 }, (_, i) => account(BigInt(50_000 + i)));
    const fromCoalescer = await ledger.createAccounts(big).catch((e: unknown) => e);
    const fromEngine = await inner.createAccounts(big).catch((e: unknown) => e);
    expect(fromCoalescer).toBeInstanceOf(RequestError);
    expect((fromCoalescer as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
    expect((fromEngine as RequestError).code).toBe(ErrorCodes.ERR_TOO_MUCH_DATA);
    expect(await ledger.lookupAccounts([50_000n])).toEqual([]);
    // Exactly 8189 fits.
    const max = big.slice(0, BATCH_MAX);
    const res = await ledger.createAccounts(max);
    expect(res.every((r) => r.status === CreateAccountStatus.created)).toBe(true);
  });

  test("requests that together exceed 8189 events are split across batches, never cut", async () => {
    const inner = await engine();
    const ledger = createCoalescedClient(inner);
    const reqs = [5000, 5000, 100].map((n, k) => Array.from({ length: n }, (_, i) => account(BigInt(k * 100_000 + i + 1))));
    const batches = ledger.stats.batches;
    const answers = await Promise.all(reqs.map((r) => ledger.createAccounts(r)));
    expect(answers.map((a) => a.length)).toEqual([5000, 5000, 100]);
    expect(answers.flat().every((r) => r.status === CreateAccountStatus.created)).toBe(true);
    expect(ledger.stats.batches - batches).toBeGreaterThanOrEqual(2);
  });

  test("a ledger failure reaches every caller of the batch", async () => {
    const inner = await engine();
    const ledger = createCoalescedClient(inner);
    await inner.close();
    const results = await Promise.allSettled([ledger.createAccounts([account(1n)]), ledger.createAccounts([account(2n)])]);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect(((r as PromiseRejectedResult).reason as RequestError).code).toBe(ErrorCodes.ERR_CLIENT_CLOSED);
    }
  });

  test("property: concurrent coalesced answers equal one-by-one answers", async () => {
    type Req = { kind: "plain" | "open" | "imported"; ids: number[]; amounts: number[] };
    const reqArb: fc.Arbitrary<Req> = fc.record({
      kind: fc.constantFrom<Req["kind"]>("plain", "plain", "open", "imported"),
      ids: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 4 }),
      amounts: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 4, maxLength: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(reqArb, { minLength: 1, maxLength: 12 }), async (reqs) => {
        const build = (base: bigint) => {
          let importTs = 1_600_000_000_000_000_000n;
          return reqs.map((r, k) =>
            r.ids.map((id, j) => {
              const t = transfer(base + BigInt(id), 1n, j % 2 === 0 ? 2n : 3n, BigInt(r.amounts[j] ?? 1));
              if (r.kind === "open" || j < r.ids.length - 1 && k % 3 === 0) t.flags |= TransferFlags.linked;
              if (r.kind === "imported") {
                t.flags |= TransferFlags.imported;
                importTs += 1n;
                t.timestamp = importTs;
              }
              return t;
            }),
          );
        };
        const setup = async (c: { createAccounts: EmbeddedClient["createAccounts"] }) => {
          // Accounts are imported (old timestamps) so imported transfers may reference them.
          await c.createAccounts([
            account(1n, AccountFlags.imported, 1_500_000_000_000_000_000n),
            account(2n, AccountFlags.imported | AccountFlags.credits_must_not_exceed_debits, 1_500_000_000_000_000_001n),
            account(3n, AccountFlags.imported, 1_500_000_000_000_000_002n),
          ]);
        };
        const solo = await engine();
        await setup(solo);
        const expected: number[][] = [];
        for (const r of build(100n)) expected.push(statuses(await solo.createTransfers(r)));
        const merged = await engine();
        const ledger = createCoalescedClient(merged);
        await setup(ledger);
        const got = (await Promise.all(build(100n).map((r) => ledger.createTransfers(r)))).map(statuses);
        expect(got).toEqual(expected);
        await solo.close();
        await merged.close();
      }),
      { numRuns: 25 },
    );
  });
});
