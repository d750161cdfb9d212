import { defineClientCommand, formatUsd, UsageError } from "../common.js";
import { accountJson, transferJson, isoTime } from "../render.js";
import { TransferKind } from "../../gen/masques/ledger/v1/common_pb.js";

/** `masques-ledger-client earnings`: an author's earnings balance and recent session shares. */
export const earningsCommand = defineClientCommand({
  name: "earnings",
  summary: "Show an author's earnings and the latest session payments",
  usage: "earnings [--author ID] [--recent N] [options]",
  description: `Shows the caller's own earnings (an author token) or the named author's (admin). Each doffed
session of your masques pays your share into this account; payouts to a rail leave from it.`,
  options: { author: { type: "string" }, recent: { type: "string" } },
  optionHelp: `  --author ID             the author (default: the token's own)
  --recent N              also list the N latest session payments (default 5, 0 = none)`,
  positionals: { min: 0, max: 0, names: "" },
  examples: ["masques-ledger-client earnings", "masques-ledger-client earnings --recent 20 --json"],
  async run(ctx) {
    const client = await ctx.client();
    let author = ctx.str("author");
    if (author === undefined) {
      const me = client.whoami();
      if (me.kind !== "author") {
        throw new UsageError(`earnings belong to authors: pass --author <id>${me.kind === "admin" ? "" : ", or use an author's token"} (this token is ${me.kind} "${me.id}")`);
      }
      author = me.id;
    }
    const recent = Number(ctx.uint("recent") ?? 5n);
    if (recent > 1000) throw new UsageError("--recent: at most 1000");
    const a = await client.getAccount({ author_id: author });
    const b = a.balance;
    const human = [
      `Earnings of ${author}`,
      `  available  ${formatUsd(b?.availableMicro ?? 0n)}`,
      `  earned     ${formatUsd(b?.creditsPostedMicro ?? 0n)} in total`,
      `  paid out   ${formatUsd(b?.debitsPostedMicro ?? 0n)}${(b?.debitsPendingMicro ?? 0n) > 0n ? ` (+ ${formatUsd(b!.debitsPendingMicro)} in flight)` : ""}`,
    ];
    let payments: Record<string, unknown>[] = [];
    if (recent > 0) {
      const page = await client.listTransfers({ account: { author_id: author }, page_size: recent, kind: TransferKind.SESSION_AUTHOR_SHARE });
      payments = page.entries.flatMap((e) => (e.transfer ? [transferJson(e.transfer)] : []));
      if (page.entries.length > 0) {
        human.push("", "Latest session payments:");
        for (const e of page.entries) {
          const t = e.transfer;
          if (t) human.push(`  ${isoTime(t.createTime) ?? "-"}  ${formatUsd(t.amountMicro).padStart(12)}  session ${t.referenceId || "-"}`);
        }
      }
    }
    return { human, json: { author, account: accountJson(a), recent_payments: payments } };
  },
});
