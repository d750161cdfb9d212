/**
 * Small conveniences over a Backend for the conformance tests: a private ledger per test, account
 * creation that must succeed, balance reads, status names.
 */
import { afterAll, beforeAll, expect } from "vitest";
import {
  AccountFlags,
  CreateAccountStatus,
  CreateTransferStatus,
  type Account,
  type CreateAccountResult,
  type CreateTransferResult,
  type Transfer,
} from "tigerbeetle-node";
import {
  account,
  accountStatuses,
  balancesOf,
  openBackend,
  transfer,
  transferStatuses,
  type Backend,
  type Balances,
} from "../../support/ledger-backend.js";

/** Opens one backend for the whole file; tests isolate themselves with fresh ids and ledgers. */
export function useBackend(): () => Backend {
  let backend: Backend | undefined;
  beforeAll(async () => {
    backend = await openBackend();
  });
  afterAll(async () => {
    await backend?.close();
  });
  return () => {
    if (backend === undefined) throw new Error("backend not opened");
    return backend;
  };
}

export interface AccountSpec {
  flags?: number;
  code?: number;
  user_data_128?: bigint;
  user_data_64?: bigint;
  user_data_32?: number;
  ledger?: number;
}

/** One test's world: a fresh ledger on the shared backend. */
export class World {
  readonly ledger: number;
  constructor(readonly b: Backend) {
    this.ledger = b.uniqueLedger();
  }

  id(): bigint {
    return this.b.uniqueId();
  }

  /** Create accounts (all must be `created`); returns their ids in order. */
  async accounts(...specs: AccountSpec[]): Promise<bigint[]> {
    const events = specs.map((s) => account({ id: this.id(), ledger: this.ledger, ...s }));
    const results = await this.b.client.createAccounts(events);
    expect(accountStatuses(results)).toEqual(events.map(() => "created"));
    return events.map((e) => e.id);
  }

  /** Create `n` plain accounts. */
  async plain(n: number): Promise<bigint[]> {
    return this.accounts(...Array.from({ length: n }, () => ({})));
  }

  /** A single-phase transfer template on this ledger. */
  t(fields: Partial<Transfer> & { debit_account_id?: bigint; credit_account_id?: bigint }): Transfer {
    return transfer({ id: this.id(), ledger: this.ledger, code: 1, ...fields });
  }

  async createTransfers(events: Transfer[]): Promise<CreateTransferResult[]> {
    const results = await this.b.client.createTransfers(events);
    expect(results).toHaveLength(events.length);
    for (const r of results) expect(r.timestamp).toBeGreaterThan(0n);
    return results;
  }

  /** Submit transfers and return their status names. */
  async submit(...events: Transfer[]): Promise<string[]> {
    return transferStatuses(await this.createTransfers(events));
  }

  async createAccounts(events: Account[]): Promise<CreateAccountResult[]> {
    const results = await this.b.client.createAccounts(events);
    expect(results).toHaveLength(events.length);
    for (const r of results) expect(r.timestamp).toBeGreaterThan(0n);
    return results;
  }

  async submitAccounts(...events: Account[]): Promise<string[]> {
    return accountStatuses(await this.createAccounts(events));
  }

  /** Fund `to` with `amount` from a fresh plain account (single-phase). */
  async fund(to: bigint, amount: bigint): Promise<void> {
    const [source] = await this.plain(1);
    expect(await this.submit(this.t({ debit_account_id: source, credit_account_id: to, amount }))).toEqual(["created"]);
  }

  async account(id: bigint): Promise<Account> {
    const found = await this.b.client.lookupAccounts([id]);
    expect(found).toHaveLength(1);
    return found[0];
  }

  async balances(id: bigint): Promise<Balances> {
    return balancesOf(await this.account(id));
  }

  async expectBalances(id: bigint, expected: Balances): Promise<void> {
    expect(await this.balances(id)).toEqual(expected);
  }

  async isClosed(id: bigint): Promise<boolean> {
    return ((await this.account(id)).flags & AccountFlags.closed) !== 0;
  }

  async transfer(id: bigint): Promise<Transfer | undefined> {
    const found = await this.b.client.lookupTransfers([id]);
    return found[0];
  }
}

export const created = "created";
export const S = CreateTransferStatus;
export const A = CreateAccountStatus;

/** Status names of CreateTransferStatus in declaration order (= documented precedence). */
export function transferPrecedence(): string[] {
  return Object.keys(CreateTransferStatus).filter((k) => Number.isNaN(Number(k)));
}

export function accountPrecedence(): string[] {
  return Object.keys(CreateAccountStatus).filter((k) => Number.isNaN(Number(k)));
}
