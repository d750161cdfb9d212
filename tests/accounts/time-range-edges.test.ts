/**
 * ListTransfers and GetBalanceHistory time-range filters at every edge (issue 11, "Errors and
 * inputs at their edges"; the table in src/domain/time-range.ts, ADR 0056). A range in the year
 * 9999 used to reach the ledger as a timestamp past 2^64 and fail with INTERNAL.
 */
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DepositRequestSchema,
  DepositResponseSchema,
  GetBalanceHistoryRequestSchema,
  GetBalanceHistoryResponseSchema,
  ListTransfersRequestSchema,
  ListTransfersResponseSchema,
  OpenAgentWalletRequestSchema,
  OpenAgentWalletResponseSchema,
  WalletMode,
} from "../../clients/gen/masques/ledger/v1/account_service_pb.js";
import { Rail } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { encodePageToken } from "../../src/services/views.js";
import { expectInvalid } from "./errors.js";
import { ADMIN, ctxFor, openInProcessLedger, type AccountHandlers, type InProcessLedger } from "./in-process.js";

type Ts = { seconds: bigint; nanos: number };
type Filter = { startTime?: Ts; endTime?: Ts; pageSize?: number; pageToken?: string };
const ts = (seconds: bigint, nanos = 0): Ts => ({ seconds, nanos });
const nsOf = (t: Ts) => t.seconds * 1_000_000_000n + BigInt(t.nanos);
const tsOfNs = (ns: bigint): Ts => ts(ns / 1_000_000_000n, Number(ns % 1_000_000_000n));

const YEAR_9999 = ts(253_402_300_799n, 999_999_999); // the last valid Timestamp
const YEAR_3000 = ts(32_503_680_000n); // past the ledger's last timestamp (2^63-1 ns, in 2262)
const EPOCH = ts(0n);
const YEAR_1960 = ts(-315_619_200n);

describe("time-range filters at their edges", () => {
  let ledger: InProcessLedger;
  let svc: AccountHandlers;
  const ctx = ctxFor(ADMIN);
  let walletId = "";
  const times: bigint[] = []; // deposit times (ns), oldest first

  const account = () => ({ ref: { case: "accountId" as const, value: walletId } });
  const list = async (f: Filter) =>
    create(ListTransfersResponseSchema, await svc.listTransfers(create(ListTransfersRequestSchema, { account: account(), ...f }), ctx));
  const history = async (f: Filter) =>
    create(
      GetBalanceHistoryResponseSchema,
      await svc.getBalanceHistory(create(GetBalanceHistoryRequestSchema, { account: account(), ...f }), ctx),
    );
  const amountsOf = async (f: Filter) =>
    (await list(f)).entries.map((e) => e.transfer!.amountMicro);

  beforeAll(async () => {
    ledger = await openInProcessLedger("time-range");
    svc = ledger.service();
    const opened = create(
      OpenAgentWalletResponseSchema,
      await svc.openAgentWallet(create(OpenAgentWalletRequestSchema, { agentId: "timey", mode: WalletMode.PREPAID }), ctx),
    );
    walletId = opened.account!.accountId;
    for (const amount of [1n, 2n, 3n]) {
      const r = create(
        DepositResponseSchema,
        await svc.deposit(
          create(DepositRequestSchema, {
            account: account(),
            amountMicro: amount,
            rail: Rail.UNSPECIFIED,
            idempotencyKey: `tr-${amount}`,
          }),
          ctx,
        ),
      );
      times.push(nsOf(r.transfer!.createTime!));
    }
  });
  afterAll(async () => {
    await ledger?.close();
  });

  it("a range in the year 9999 is an empty page (start) or unbounded above (end), never INTERNAL", async () => {
    expect(await amountsOf({ startTime: YEAR_9999 })).toEqual([]);
    expect(await amountsOf({ endTime: YEAR_9999 })).toEqual([3n, 2n, 1n]);
    expect(await amountsOf({ startTime: YEAR_3000, endTime: YEAR_9999 })).toEqual([]);
    expect(await amountsOf({ startTime: EPOCH, endTime: YEAR_9999 })).toEqual([3n, 2n, 1n]);
    expect((await history({ startTime: YEAR_9999 })).snapshots).toEqual([]);
    const all = await history({ endTime: YEAR_9999 });
    expect(all.snapshots.map((s) => s.balance!.creditsPostedMicro)).toEqual([6n, 3n, 1n]);
  });

  it("explicit bounds at the epoch: start at the epoch is everything, end at the epoch is nothing", async () => {
    expect(await amountsOf({ startTime: EPOCH })).toEqual([3n, 2n, 1n]);
    expect(await amountsOf({ endTime: EPOCH })).toEqual([]);
    expect(await amountsOf({ endTime: ts(0n, 1) })).toEqual([]); // [.., 1 ns): still before any ledger time
    expect(await amountsOf({ startTime: YEAR_1960 })).toEqual([3n, 2n, 1n]);
    expect(await amountsOf({ startTime: YEAR_1960, endTime: EPOCH })).toEqual([]);
    expect((await history({ endTime: EPOCH })).snapshots).toEqual([]);
  });

  it("ranges around the entries are half-open [start, end)", async () => {
    const [t1, t2, t3] = times as [bigint, bigint, bigint];
    expect(await amountsOf({ startTime: tsOfNs(t2), endTime: tsOfNs(t3) })).toEqual([2n]);
    expect(await amountsOf({ startTime: tsOfNs(t1), endTime: tsOfNs(t3 + 1n) })).toEqual([3n, 2n, 1n]);
    expect(await amountsOf({ startTime: tsOfNs(t3 + 1n) })).toEqual([]);
    expect((await history({ startTime: tsOfNs(t2), endTime: tsOfNs(t3) })).snapshots.length).toBe(1);
  });

  it("an empty range (start == end) is an empty page; end before start names end_time", async () => {
    const [, t2] = times as [bigint, bigint];
    expect(await amountsOf({ startTime: tsOfNs(t2), endTime: tsOfNs(t2) })).toEqual([]);
    expect(await amountsOf({ startTime: YEAR_9999, endTime: YEAR_9999 })).toEqual([]);
    expect((await history({ startTime: EPOCH, endTime: EPOCH })).snapshots).toEqual([]);
    await expectInvalid(list({ startTime: ts(20n), endTime: ts(10n) }), ["end_time"]);
    await expectInvalid(list({ startTime: YEAR_9999, endTime: YEAR_3000 }), ["end_time"]);
    await expectInvalid(history({ startTime: tsOfNs(t2), endTime: tsOfNs(t2 - 1n) }), ["end_time"]);
  });

  it("a value that is not a valid Timestamp is INVALID_ARGUMENT naming its field", async () => {
    await expectInvalid(list({ startTime: ts(253_402_300_800n) }), ["start_time"]); // 10000-01-01
    await expectInvalid(list({ endTime: ts(-62_135_596_801n) }), ["end_time"]); // before year 1
    await expectInvalid(list({ startTime: ts(5n, 1_000_000_000) }), ["start_time"]);
    await expectInvalid(history({ endTime: ts(5n, -1) }), ["end_time"]);
    await expectInvalid(history({ startTime: ts(1n << 62n), endTime: ts(-(1n << 62n)) }), ["start_time", "end_time"]);
  });

  it("pages walk a range that ends in the year 9999, and a forged cursor past the ledger is refused", async () => {
    const first = await list({ endTime: YEAR_9999, pageSize: 2 });
    expect(first.entries.map((e) => e.transfer!.amountMicro)).toEqual([3n, 2n]);
    const second = await list({ endTime: YEAR_9999, pageSize: 2, pageToken: first.nextPageToken });
    expect(second.entries.map((e) => e.transfer!.amountMicro)).toEqual([1n]);
    expect(second.nextPageToken).toBe("");

    const h1 = await history({ endTime: YEAR_9999, pageSize: 2 });
    const h2 = await history({ endTime: YEAR_9999, pageSize: 2, pageToken: h1.nextPageToken });
    expect([...h1.snapshots, ...h2.snapshots].map((s) => s.balance!.creditsPostedMicro)).toEqual([6n, 3n, 1n]);

    const query = ["ListTransfers", BigInt(`0x${walletId}`), 0, 0, null, null];
    await expectInvalid(list({ pageToken: encodePageToken(1n << 64n, query) }), ["page_token"]);
    await expectInvalid(list({ pageToken: encodePageToken(1n << 63n, query) }), ["page_token"]);
  });
});
