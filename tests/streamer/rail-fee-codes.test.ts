/**
 * The rail fee account (code 420) and the payout fee transfer (code 31) are named in the public
 * contract (common.proto) with the ledger's numbers, and the streamer files a rail fee account
 * under the rail's identity, not "other" (issue 13; ADR 0085 "what the next session wires" 3).
 */
import { describe, expect, it } from "vitest";
import { AccountKind, TransferKind } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { AccountCode, Rail, TransferCode } from "../../src/domain/codes.js";
import { railFeesAccount } from "../../src/domain/settlement/accounts.js";
import { accountKind, identityKind, identityRow, transferKind } from "../../src/streamer/rows.js";

describe("rail fee codes", () => {
  it("common.proto names account kind 420 and transfer kind 31 with the ledger's numbers", () => {
    expect(AccountKind.RAIL_FEES).toBe(AccountCode.rail_fees);
    expect(AccountKind[420]).toBe("RAIL_FEES");
    expect(TransferKind.PAYOUT_FEE).toBe(TransferCode.payout_fee);
    expect(TransferKind[31]).toBe("PAYOUT_FEE");
  });

  it("the streamer classifies a rail's fee account as the rail's and names the fee transfers", () => {
    expect(identityKind(AccountCode.rail_fees)).toBe("rail");
    expect(accountKind(AccountCode.rail_fees)).toBe("rail_fees");
    expect(transferKind(TransferCode.payout_fee)).toBe("payout_fee");
    const row = identityRow({ ...railFeesAccount("base"), timestamp: 1n });
    expect(row[0]).toBe("rail");
    expect(row[3]).toBe(AccountCode.rail_fees);
    expect(railFeesAccount("solana").user_data_32).toBe(Rail.solana);
  });
});
