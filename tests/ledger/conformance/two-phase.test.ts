/**
 * Two-phase transfers, per docs/coding/two-phase-transfers.md, docs/reference/transfer.md
 * (amount, pending_id, timeout, post/void flags) and docs/reference/requests/create_transfers.md.
 * Post amounts use 0.16+ semantics: AMOUNT_MAX posts the full pending amount, 0 posts zero.
 */
import { describe, expect, it } from "vitest";
import { amount_max, TransferFlags, type Transfer } from "tigerbeetle-node";
import { bal, eventually, U128_MAX } from "../../support/ledger-backend.js";
import { transferPrecedence, useBackend, World } from "./fixture.js";

const backend = useBackend();
const P = TransferFlags.pending;
const POST = TransferFlags.post_pending_transfer;
const VOID = TransferFlags.void_pending_transfer;

async function pending(w: World, amount: bigint, extra: Partial<Transfer> = {}): Promise<{ p: Transfer; dr: bigint; cr: bigint }> {
  const [dr, cr] = await w.plain(2);
  const p = w.t({ debit_account_id: dr, credit_account_id: cr, amount, flags: P, user_data_128: 11n, user_data_64: 12n, user_data_32: 13, code: 7, ...extra });
  expect(await w.submit(p)).toEqual(["created"]);
  return { p, dr, cr };
}

/** A post/void with every optional field zero. */
function resolve(w: World, p: Transfer, flags: number, amount: bigint, extra: Partial<Transfer> = {}): Transfer {
  return w.t({ pending_id: p.id, flags, amount, ledger: 0, code: 0, ...extra });
}

describe("two-phase transfers: pending, post, void", () => {
  it("a pending transfer reserves the amount in debits_pending/credits_pending", async () => {
    const w = new World(backend());
    const { p, dr, cr } = await pending(w, 100n);
    await w.expectBalances(dr, bal(100n, 0n, 0n, 0n));
    await w.expectBalances(cr, bal(0n, 0n, 100n, 0n));
    const stored = await w.transfer(p.id);
    expect(stored?.flags).toBe(P);
    expect(stored?.amount).toBe(100n);
  });

  it("post with AMOUNT_MAX posts the full pending amount and fills in the pending transfer's fields", async () => {
    const w = new World(backend());
    const { p, dr, cr } = await pending(w, 100n);
    const post = resolve(w, p, POST, amount_max);
    expect(await w.submit(post)).toEqual(["created"]);
    await w.expectBalances(dr, bal(0n, 100n, 0n, 0n));
    await w.expectBalances(cr, bal(0n, 0n, 0n, 100n));
    const stored = await w.transfer(post.id);
    expect(stored).toMatchObject({
      debit_account_id: dr,
      credit_account_id: cr,
      amount: 100n,
      pending_id: p.id,
      user_data_128: 11n,
      user_data_64: 12n,
      user_data_32: 13,
      ledger: w.ledger,
      code: 7,
      timeout: 0,
      flags: POST,
    });
  });

  it("a partial post posts that amount and releases the rest; user_data given on the post is kept", async () => {
    const w = new World(backend());
    const { p, dr, cr } = await pending(w, 100n);
    const post = resolve(w, p, POST, 30n, { debit_account_id: dr, credit_account_id: cr, ledger: w.ledger, code: 7, user_data_64: 99n });
    expect(await w.submit(post)).toEqual(["created"]);
    await w.expectBalances(dr, bal(0n, 30n, 0n, 0n));
    await w.expectBalances(cr, bal(0n, 0n, 0n, 30n));
    expect(await w.transfer(post.id)).toMatchObject({ amount: 30n, user_data_128: 11n, user_data_64: 99n, user_data_32: 13 });
  });

  it("a post with amount 0 posts zero and releases the whole reservation (0.16+)", async () => {
    const w = new World(backend());
    const { p, dr, cr } = await pending(w, 100n);
    const post = resolve(w, p, POST, 0n);
    expect(await w.submit(post)).toEqual(["created"]);
    await w.expectBalances(dr, bal(0n, 0n, 0n, 0n));
    await w.expectBalances(cr, bal(0n, 0n, 0n, 0n));
    expect((await w.transfer(post.id))?.amount).toBe(0n);
    expect(await w.submit(resolve(w, p, POST, 1n))).toEqual(["pending_transfer_already_posted"]);
  });

  it("void with amount 0 or the exact amount releases everything; other amounts are refused", async () => {
    const w = new World(backend());
    const { p, dr, cr } = await pending(w, 100n);
    expect(
      await w.submit(resolve(w, p, VOID, 99n), resolve(w, p, VOID, 101n), resolve(w, p, VOID, amount_max)),
    ).toEqual(["pending_transfer_has_different_amount", "exceeds_pending_transfer_amount", "exceeds_pending_transfer_amount"]);
    const v = resolve(w, p, VOID, 0n);
    expect(await w.submit(v)).toEqual(["created"]);
    expect((await w.transfer(v.id))?.amount).toBe(100n);
    await w.expectBalances(dr, bal(0n, 0n, 0n, 0n));
    await w.expectBalances(cr, bal(0n, 0n, 0n, 0n));

    const q = await pending(w, 50n);
    expect(await w.submit(resolve(w, q.p, VOID, 50n))).toEqual(["created"]);
    await w.expectBalances(q.dr, bal(0n, 0n, 0n, 0n));
  });

  it("a post larger than the pending amount is exceeds_pending_transfer_amount", async () => {
    const w = new World(backend());
    const { p, dr } = await pending(w, 100n);
    expect(await w.submit(resolve(w, p, POST, 101n), resolve(w, p, POST, U128_MAX - 1n))).toEqual([
      "exceeds_pending_transfer_amount",
      "exceeds_pending_transfer_amount",
    ]);
    await w.expectBalances(dr, bal(100n, 0n, 0n, 0n));
  });

  it("a pending transfer resolves at most once: already_posted / already_voided", async () => {
    const w = new World(backend());
    const a = await pending(w, 10n);
    const b = await pending(w, 10n);
    expect(await w.submit(resolve(w, a.p, POST, amount_max), resolve(w, b.p, VOID, 0n))).toEqual(["created", "created"]);
    expect(
      await w.submit(
        resolve(w, a.p, POST, amount_max),
        resolve(w, a.p, VOID, 0n),
        resolve(w, b.p, POST, amount_max),
        resolve(w, b.p, VOID, 0n),
      ),
    ).toEqual([
      "pending_transfer_already_posted",
      "pending_transfer_already_posted",
      "pending_transfer_already_voided",
      "pending_transfer_already_voided",
    ]);
    await w.expectBalances(a.dr, bal(0n, 10n, 0n, 0n));
    await w.expectBalances(b.dr, bal(0n, 0n, 0n, 0n));
  });

  it("two posts of the same pending transfer in one batch: the second is already_posted", async () => {
    const w = new World(backend());
    const { p, dr } = await pending(w, 10n);
    expect(await w.submit(resolve(w, p, POST, 4n), resolve(w, p, POST, 4n), resolve(w, p, VOID, 0n))).toEqual([
      "created",
      "pending_transfer_already_posted",
      "pending_transfer_already_posted",
    ]);
    await w.expectBalances(dr, bal(0n, 4n, 0n, 0n));
  });

  it("pending_transfer_not_found / not_pending / has_different_* are checked against the pending transfer", async () => {
    const w = new World(backend());
    const { p, dr, cr } = await pending(w, 10n);
    const [x] = await w.plain(1);
    const single = w.t({ debit_account_id: dr, credit_account_id: cr, amount: 1n });
    expect(await w.submit(single)).toEqual(["created"]);
    expect(
      await w.submit(
        resolve(w, p, POST, 1n, { pending_id: w.id() }),
        resolve(w, single, POST, 1n),
        resolve(w, p, POST, 1n, { debit_account_id: x }),
        resolve(w, p, POST, 1n, { credit_account_id: x }),
        resolve(w, p, POST, 1n, { ledger: w.ledger + 1 }),
        resolve(w, p, POST, 1n, { code: 8 }),
        resolve(w, p, VOID, 0n, { debit_account_id: cr, credit_account_id: dr }),
        // precedence among them
        resolve(w, p, POST, 11n, { code: 8 }),
        resolve(w, p, POST, 11n, { ledger: w.ledger + 1, code: 8 }),
        resolve(w, p, POST, 11n, { credit_account_id: x, ledger: w.ledger + 1 }),
      ),
    ).toEqual([
      "pending_transfer_not_found",
      "pending_transfer_not_pending",
      "pending_transfer_has_different_debit_account_id",
      "pending_transfer_has_different_credit_account_id",
      "pending_transfer_has_different_ledger",
      "pending_transfer_has_different_code",
      "pending_transfer_has_different_debit_account_id",
      "pending_transfer_has_different_code",
      "pending_transfer_has_different_ledger",
      "pending_transfer_has_different_credit_account_id",
    ]);
    await w.expectBalances(dr, bal(10n, 1n, 0n, 0n));
  });

  it("post/void validation follows the documented precedence (fixing one violation at a time)", async () => {
    const w = new World(backend());
    const { p, dr } = await pending(w, 10n);
    let e: Transfer = w.t({
      flags: POST | VOID | P | TransferFlags.balancing_debit,
      pending_id: 0n,
      timeout: 3,
      amount: 11n,
      ledger: 0,
      code: 0,
    });
    const steps: Array<[string, (x: Transfer) => Transfer]> = [
      ["flags_are_mutually_exclusive", (x) => ({ ...x, flags: POST | TransferFlags.balancing_debit })],
      ["flags_are_mutually_exclusive", (x) => ({ ...x, flags: POST | TransferFlags.closing_credit })],
      ["flags_are_mutually_exclusive", (x) => ({ ...x, flags: POST })],
      ["pending_id_must_not_be_zero", (x) => ({ ...x, pending_id: U128_MAX })],
      ["pending_id_must_not_be_int_max", (x) => ({ ...x, pending_id: x.id })],
      ["pending_id_must_be_different", (x) => ({ ...x, pending_id: p.id })],
      ["timeout_reserved_for_pending_transfer", (x) => ({ ...x, timeout: 0 })],
      ["exceeds_pending_transfer_amount", (x) => ({ ...x, amount: 10n })],
    ];
    const seen: string[] = [];
    for (const [, fix] of steps) {
      seen.push(...(await w.submit(e)));
      e = fix(e);
    }
    seen.push(...(await w.submit(e)));
    expect(seen).toEqual([...steps.map(([s]) => s), "created"]);
    const order = transferPrecedence();
    const indices = steps.map(([s]) => order.indexOf(s));
    expect([...indices].sort((x, y) => x - y)).toEqual(indices);
    await w.expectBalances(dr, bal(0n, 10n, 0n, 0n));
  });

  it("flag combinations with post/void are mutually exclusive; pending may combine with balancing", async () => {
    const w = new World(backend());
    const { p, dr } = await pending(w, 10n);
    const bad = [
      POST | VOID,
      POST | P,
      VOID | P,
      POST | TransferFlags.balancing_debit,
      POST | TransferFlags.balancing_credit,
      VOID | TransferFlags.balancing_debit,
      VOID | TransferFlags.balancing_credit,
      POST | TransferFlags.closing_debit,
      VOID | TransferFlags.closing_credit,
    ];
    expect(await w.submit(...bad.map((flags) => resolve(w, p, flags, 0n)))).toEqual(bad.map(() => "flags_are_mutually_exclusive"));
    await w.expectBalances(dr, bal(10n, 0n, 0n, 0n));
    const [a, b] = await w.plain(2);
    await w.fund(a, 5n);
    expect(
      await w.submit(w.t({ debit_account_id: a, credit_account_id: b, amount: 100n, flags: P | TransferFlags.balancing_debit | TransferFlags.balancing_credit })),
    ).toEqual(["created"]);
  });

  it("a post or void is idempotent: resubmitting it is exists, with AMOUNT_MAX or zero fields too", async () => {
    const w = new World(backend());
    const a = await pending(w, 10n);
    const postFull = resolve(w, a.p, POST, amount_max);
    const b = await pending(w, 10n);
    const voidIt = resolve(w, b.p, VOID, 0n);
    const c = await pending(w, 10n);
    const postPart = resolve(w, c.p, POST, 3n, { user_data_32: 77 });
    expect(await w.submit(postFull, voidIt, postPart)).toEqual(["created", "created", "created"]);
    expect(
      await w.submit(
        postFull,
        { ...postFull, amount: 10n, debit_account_id: a.dr, ledger: w.ledger, code: 7 },
        voidIt,
        { ...voidIt, amount: 10n },
        postPart,
        { ...postPart, amount: 4n },
        { ...postPart, user_data_32: 0 },
        { ...postPart, pending_id: a.p.id },
        { ...voidIt, flags: POST },
      ),
    ).toEqual([
      "exists",
      "exists",
      "exists",
      "exists",
      "exists",
      "exists_with_different_amount",
      "exists_with_different_user_data_32",
      "exists_with_different_pending_id",
      "exists_with_different_flags",
    ]);
    await w.expectBalances(a.dr, bal(0n, 10n, 0n, 0n));
    await w.expectBalances(b.dr, bal(0n, 0n, 0n, 0n));
    await w.expectBalances(c.dr, bal(0n, 3n, 0n, 0n));
  });

  it("post and pending in one linked chain; a chain that voids rolls back with the chain", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const p = w.t({ debit_account_id: a, credit_account_id: b, amount: 10n, flags: P | TransferFlags.linked });
    const post = w.t({ pending_id: p.id, amount: 6n, flags: POST });
    expect(await w.submit(p, post)).toEqual(["created", "created"]);
    await w.expectBalances(a, bal(0n, 6n, 0n, 0n));

    const { p: q, dr } = await pending(w, 10n);
    const v = w.t({ pending_id: q.id, flags: VOID | TransferFlags.linked, ledger: 0, code: 0 });
    const bad = w.t({ debit_account_id: a, credit_account_id: a, amount: 1n });
    expect(await w.submit(v, bad)).toEqual(["linked_event_failed", "accounts_must_be_different"]);
    await w.expectBalances(dr, bal(10n, 0n, 0n, 0n));
    expect(await w.submit({ ...v, id: w.id(), flags: VOID })).toEqual(["created"]);
    await w.expectBalances(dr, bal(0n, 0n, 0n, 0n));
  });
});

describe("two-phase transfers: timeouts and expiry (docs/reference/transfer.md#timeout)", () => {
  it("an expired pending transfer releases its reservation; post and void afterwards are pending_transfer_expired", async () => {
    const w = new World(backend());
    const { p, dr, cr } = await pending(w, 100n, { timeout: 1 });
    const { p: q } = await pending(w, 5n, { timeout: 1 });
    await w.expectBalances(dr, bal(100n, 0n, 0n, 0n));
    await w.b.advanceTime(1.5);
    const postP = resolve(w, p, POST, amount_max);
    expect(await w.submit(postP, resolve(w, q, VOID, 0n))).toEqual([
      "pending_transfer_expired",
      "pending_transfer_expired",
    ]);
    const released = await eventually(w.b, async () => (await w.balances(dr)).debits_pending === 0n);
    expect(released).toBe(true);
    await w.expectBalances(dr, bal(0n, 0n, 0n, 0n));
    await w.expectBalances(cr, bal(0n, 0n, 0n, 0n));
    // The pending transfer itself is unchanged (transfers are immutable).
    expect(await w.transfer(p.id)).toMatchObject({ flags: P, amount: 100n, timeout: 1 });
    // Not a transient error: the same id is answered the same way again, not id_already_failed.
    expect(await w.submit(postP)).toEqual(["pending_transfer_expired"]);
  });

  it("before its timeout a pending transfer can still be posted", async () => {
    const w = new World(backend());
    const { p, dr } = await pending(w, 100n, { timeout: 3600 });
    await w.b.advanceTime(1);
    expect(await w.submit(resolve(w, p, POST, 40n))).toEqual(["created"]);
    await w.expectBalances(dr, bal(0n, 40n, 0n, 0n));
  });

  it("expired funds become spendable again for a debits_must_not_exceed_credits account", async () => {
    const w = new World(backend());
    const [wallet] = await w.accounts({ flags: 2 });
    const [escrow] = await w.plain(1);
    await w.fund(wallet, 50n);
    const hold = w.t({ debit_account_id: wallet, credit_account_id: escrow, amount: 50n, flags: P, timeout: 1 });
    expect(await w.submit(hold)).toEqual(["created"]);
    expect(await w.submit(w.t({ debit_account_id: wallet, credit_account_id: escrow, amount: 1n }))).toEqual(["exceeds_credits"]);
    await w.b.advanceTime(1.5);
    expect(await eventually(w.b, async () => (await w.balances(wallet)).debits_pending === 0n)).toBe(true);
    expect(await w.submit(w.t({ debit_account_id: wallet, credit_account_id: escrow, amount: 50n }))).toEqual(["created"]);
    await w.expectBalances(wallet, bal(0n, 50n, 0n, 50n));
  });

  it("a posted or voided pending transfer does not expire later", async () => {
    const w = new World(backend());
    const a = await pending(w, 10n, { timeout: 1 });
    const b = await pending(w, 10n, { timeout: 1 });
    expect(await w.submit(resolve(w, a.p, POST, 7n), resolve(w, b.p, VOID, 0n))).toEqual(["created", "created"]);
    await w.b.advanceTime(1.5);
    await w.b.settle();
    await w.expectBalances(a.dr, bal(0n, 7n, 0n, 0n));
    await w.expectBalances(a.cr, bal(0n, 0n, 0n, 7n));
    await w.expectBalances(b.dr, bal(0n, 0n, 0n, 0n));
    expect(await w.submit(resolve(w, a.p, VOID, 0n))).toEqual(["pending_transfer_already_posted"]);
  });

  it("an expired closing transfer re-opens the account, like a void", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    const close = w.t({ debit_account_id: a, credit_account_id: b, amount: 3n, flags: P | TransferFlags.closing_debit, timeout: 1 });
    expect(await w.submit(close)).toEqual(["created"]);
    expect(await w.isClosed(a)).toBe(true);
    await w.b.advanceTime(1.5);
    expect(await eventually(w.b, async () => !(await w.isClosed(a)))).toBe(true);
    await w.expectBalances(a, bal(0n, 0n, 0n, 0n));
    expect(await w.submit(w.t({ debit_account_id: a, credit_account_id: b, amount: 1n }))).toEqual(["created"]);
    expect(await w.submit(resolve(w, close, VOID, 0n))).toEqual(["pending_transfer_expired"]);
  });

  it("timeout is only for pending transfers", async () => {
    const w = new World(backend());
    const [a, b] = await w.plain(2);
    expect(await w.submit(w.t({ debit_account_id: a, credit_account_id: b, amount: 1n, timeout: 1 }))).toEqual([
      "timeout_reserved_for_pending_transfer",
    ]);
    await w.expectBalances(a, bal(0n, 0n, 0n, 0n));
  });
});
