/**
 * ClickHouse holds every usage total the ledger can (issue 11, "Values past the API's range"):
 * three usage events of 2^63-1 input tokens in one session used to be summed and stored as
 * UInt64, silently wrapping. The ledger's meters are u128, so the per-session totals are UInt128
 * (sql/008) and the reputation sums are taken in UInt256.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TransferCode as C, Ledger } from "../../src/domain/codes.js";
import { ChdbSink, migrate } from "../../src/streamer/index.js";
import { recomputeSessionsSql } from "../../src/streamer/derive.js";
import { tempDir } from "./support.js";

const TRANSFER_COLUMNS = [
  "id", "debit_account_id", "credit_account_id", "amount", "user_data_128", "user_data_64", "ledger", "code", "timestamp",
  "kind", "phase",
] as const;

describe("usage totals past 2^64 in ClickHouse", () => {
  const tmp = tempDir("usage-range");
  let sink: ChdbSink;
  beforeAll(async () => {
    sink = await ChdbSink.open({ path: path.join(tmp.dir, "chdb"), database: "masques" });
    await migrate(sink);
  });
  afterAll(async () => {
    await sink.close();
    tmp.cleanup();
  });

  it("a session's three 2^63-1 input-token events total exactly 3 * (2^63-1), and per-masque sums do not wrap", async () => {
    const big = (1n << 63n) - 1n;
    const rows: (bigint | number | string)[][] = [];
    let ts = 1000n;
    for (const session of [0x5e55n, 0x5e56n]) {
      // The Don hold (masque index 7), then three usage events.
      rows.push([session * 100n, 10n, 20n, 1_000n, session, 7n, Ledger.usd_micro, C.session_hold, ts++, "session_hold", "pending"]);
      for (let seq = 1n; seq <= 3n; seq++) {
        rows.push([session * 100n + seq, 30n, 40n, big, session, seq, Ledger.usage_input_tokens, C.usage_input_tokens, ts++, "usage_input_tokens", "single"]);
      }
    }
    await sink.insert("transfers", [...TRANSFER_COLUMNS], rows);
    await sink.exec(recomputeSessionsSql("masques", [0x5e55n, 0x5e56n]));

    const sessions = await sink.query("SELECT toString(usage_input_tokens) AS t FROM masques.sessions FINAL ORDER BY session_id");
    expect(sessions).toEqual([{ t: (3n * big).toString() }, { t: (3n * big).toString() }]);
    const masque = await sink.query("SELECT toString(input_tokens) AS t FROM masques.reputation_masques WHERE masque_index = 7");
    expect(masque).toEqual([{ t: (6n * big).toString() }]);
  });
});
