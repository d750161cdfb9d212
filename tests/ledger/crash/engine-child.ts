/**
 * Child process for crash.test.ts: opens the embedded engine on argv[2] and writes transfers
 * under load until it is SIGKILLed. Protocol on stdout (a pipe: synchronous writes on Linux, so a
 * line the parent reads was written before the kill):
 *   ready <snapshot seq> <replayed commits> <torn tail cut>   engine opened (recovery done)
 *   sub <first id> <id:tag,...>    about to submit this batch (may or may not become durable);
 *                                  tag: s must succeed, f must fail, x either (post/void), with an
 *                                  "L" suffix when the event is linked to the next one
 *   ack <first id> <status,...>    createTransfers resolved: the batch is durable
 * argv: dataDir, idBase (unique per run), snapshotMinLogBytes, snapshotCopyMaxBytes.
 */
import { AccountFlags, CreateAccountStatus, CreateTransferStatus, TransferFlags, amount_max, type Account, type Transfer } from "tigerbeetle-node";
import { createEmbeddedClient } from "../../../src/ledger/embedded/index.js";
import { newAccount, newTransfer } from "../../../src/domain/records.js";

const ACCOUNTS = 10; // ids 1..10, plain
const LIMITED = 11n; // debits_must_not_exceed_credits with no credits: every debit fails
const LEDGER = 7;

const [dataDir, idBaseArg, snapArg, copyArg] = process.argv.slice(2);
let nextId = BigInt(idBaseArg!);
const client = createEmbeddedClient({ dataDir: dataDir!, snapshotMinLogBytes: Number(snapArg ?? 262144), snapshotCopyMaxBytes: Number(copyArg ?? 1 << 28), flushMaxBytes: 256 * 1024 });

function account(id: bigint, flags: number): Account {
  return newAccount({ id, ledger: LEDGER, code: 1, flags });
}
function transfer(debit: bigint, credit: bigint, amount: bigint, flags: number, extra: Partial<Transfer> = {}): Transfer {
  return newTransfer({ id: nextId++, debit_account_id: debit, credit_account_id: credit, amount, ledger: LEDGER, code: 1, flags, ...extra });
}
let seed = Number(BigInt.asUintN(32, nextId)) | 1;
function rand(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}
const pick = (): bigint => BigInt(1 + rand(ACCOUNTS));
function pair(): [bigint, bigint] {
  const d = pick();
  let c = pick();
  while (c === d) c = pick();
  return [d, c];
}

const accounts = [...Array.from({ length: ACCOUNTS }, (_, i) => account(BigInt(i + 1), AccountFlags.none)), account(LIMITED, AccountFlags.debits_must_not_exceed_credits)];
const setup = await client.createAccounts(accounts);
for (const r of setup) {
  if (r.status !== CreateAccountStatus.created && r.status !== CreateAccountStatus.exists) throw new Error(`account setup: ${CreateAccountStatus[r.status]}`);
}
const opened = client.stats();
process.stdout.write(`ready ${opened.snapshot_seq} ${opened.recovered_commits} ${opened.torn_tail_truncated}\n`);

const openPending: bigint[] = [];

/** One request: a few independent transfers and linked chains, some failing by construction. */
function makeBatch(): { out: Transfer[]; tags: string[] } {
  const out: Transfer[] = [];
  const tags: string[] = [];
  const tag = (t: string): void => {
    while (tags.length < out.length) tags.push(t);
  };
  const pieces = 1 + rand(6);
  for (let p = 0; p < pieces; p++) {
    const kind = rand(6);
    if (kind === 0 || kind === 1) {
      const [d, c] = pair();
      out.push(transfer(d, c, BigInt(1 + rand(100)), 0));
      tag("s");
    } else if (kind === 2) {
      // Linked chain that succeeds.
      const n = 2 + rand(4);
      for (let i = 0; i < n; i++) {
        const [d, c] = pair();
        out.push(transfer(d, c, BigInt(1 + rand(100)), i < n - 1 ? TransferFlags.linked : 0));
      }
      tag("s");
    } else if (kind === 3) {
      // Linked chain whose last event fails (exceeds_credits): nothing of it may ever apply.
      const n = 2 + rand(3);
      for (let i = 0; i < n - 1; i++) {
        const [d, c] = pair();
        out.push(transfer(d, c, BigInt(1 + rand(100)), TransferFlags.linked));
      }
      out.push(transfer(LIMITED, pick(), 5n, 0));
      tag("f");
    } else if (kind === 4) {
      const [d, c] = pair();
      const t = transfer(d, c, BigInt(1 + rand(100)), TransferFlags.pending, { timeout: 1 + rand(2) });
      out.push(t);
      tag("s");
    } else if (openPending.length > 0) {
      const id = openPending.splice(rand(openPending.length), 1)[0]!;
      const post = rand(2) === 0;
      out.push(transfer(0n, 0n, post ? amount_max : 0n, post ? TransferFlags.post_pending_transfer : TransferFlags.void_pending_transfer, { pending_id: id, ledger: 0, code: 0 }));
      tag("x");
    }
  }
  return { out, tags: tags.map((t, i) => (out[i]!.flags & TransferFlags.linked ? `${t}L` : t)) };
}

async function worker(): Promise<void> {
  for (;;) {
    const { out: batch, tags } = makeBatch();
    if (batch.length === 0) continue;
    process.stdout.write(`sub ${batch[0]!.id} ${batch.map((t, i) => `${t.id}:${tags[i]}`).join(",")}\n`);
    const results = await client.createTransfers(batch);
    process.stdout.write(`ack ${batch[0]!.id} ${results.map((r) => r.status).join(",")}\n`);
    for (let i = 0; i < batch.length; i++) {
      if (batch[i]!.flags & TransferFlags.pending && results[i]!.status === CreateTransferStatus.created) openPending.push(batch[i]!.id);
    }
  }
}

await Promise.all(Array.from({ length: 8 }, worker));
