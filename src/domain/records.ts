/**
 * Zero-valued ledger records. TigerBeetle's Account and Transfer have many fields that are zero in
 * almost every event; plans, tests and benchmarks name only the fields they set.
 */
import type { Account, Transfer } from "tigerbeetle-node";

export function newAccount(fields: Partial<Account> & { id: bigint }): Account {
  return {
    debits_pending: 0n,
    debits_posted: 0n,
    credits_pending: 0n,
    credits_posted: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    reserved: 0,
    ledger: 0,
    code: 0,
    flags: 0,
    timestamp: 0n,
    ...fields,
  };
}

export function newTransfer(fields: Partial<Transfer> & { id: bigint }): Transfer {
  return {
    debit_account_id: 0n,
    credit_account_id: 0n,
    amount: 0n,
    pending_id: 0n,
    user_data_128: 0n,
    user_data_64: 0n,
    user_data_32: 0,
    timeout: 0,
    ledger: 0,
    code: 0,
    flags: 0,
    timestamp: 0n,
    ...fields,
  };
}
