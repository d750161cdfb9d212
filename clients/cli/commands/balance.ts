import { defineClientCommand, formatUsd, UsageError } from "../common.js";
import { accountJson } from "../render.js";
import type { AccountSelector } from "../../sdk/client.js";

/** `masques-ledger-client balance`: a wallet's available, held and posted balances. */
export const balanceCommand = defineClientCommand({
  name: "balance",
  summary: "Show a wallet's available, held and posted balance",
  usage: "balance [--agent ID | --account HEX] [options]",
  description: `Shows the caller's own wallet (an agent token) or the named one. "available" is what a
Don can reserve right now; "held" is reserved by open sessions and returns to the wallet
(minus the price) when they are doffed.`,
  options: { agent: { type: "string" }, account: { type: "string" } },
  optionHelp: `  --agent ID              the agent whose wallet to show (default: the token's own)
  --account HEX           an account by its 32-hex id`,
  positionals: { min: 0, max: 0, names: "" },
  examples: ["masques-ledger-client balance", "masques-ledger-client balance --json", "masques-ledger-client balance --agent agent-7 --token $ADMIN_TOKEN"],
  async run(ctx) {
    const agent = ctx.str("agent");
    const account = ctx.str("account");
    if (agent && account) throw new UsageError("give --agent or --account, not both");
    const sel: AccountSelector | undefined = agent ? { agent_id: agent } : account ? { account_id: account } : undefined;
    const client = await ctx.client();
    const who = agent ?? (account ? `account ${account}` : client.whoami().id);
    const a = await client.getAccount(sel);
    const b = a.balance;
    const available = b?.availableMicro ?? 0n;
    const held = b?.debitsPendingMicro ?? 0n;
    const posted = b?.postedMicro ?? 0n;
    const human = [
      `Wallet of ${who}`,
      `  available  ${formatUsd(available)}`,
      `  held       ${formatUsd(held)}${held > 0n ? "  (reserved by open sessions)" : ""}`,
      `  posted     ${formatUsd(posted)}`,
    ];
    if (a.creditLimitMicro > 0n) human.push(`  credit     ${formatUsd(a.creditLimitMicro)} limit (postpaid)`);
    return { human, json: { owner: who, account: accountJson(a) } };
  },
});
