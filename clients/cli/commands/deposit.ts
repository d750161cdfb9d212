import { defineClientCommand, formatUsd, UsageError } from "../common.js";
import { transferJson } from "../render.js";
import { MasquesError, NotFoundError } from "../../sdk/errors.js";
import { newIdempotencyKey } from "../../sdk/idempotency.js";
import { parseUsdInput } from "../../sdk/money.js";

const RAILS = ["base", "solana", "lightning"] as const;
type RailName = (typeof RAILS)[number];

/** `masques-ledger-client deposit` (admin): credit an agent wallet. */
export const depositCommand = defineClientCommand({
  name: "deposit",
  summary: "Credit an agent's wallet (admin only; rail adapters report chain deposits through SettlementService)",
  usage: "deposit <agent> <amount-usd> [--rail base|solana|lightning] [--key KEY] [options]",
  description: `Credits <agent>'s wallet with <amount-usd> (exact decimal USD, e.g. 25 or 0.50). Without --rail it
is a manual deposit from the platform operator account and needs an admin token. The agent's
prepaid wallet is opened first if it does not exist yet.

Idempotent by --key: running the command again with the same key credits at most once. Without
--key a fresh key is generated and printed; after an outage (exit 3) re-run with that key.`,
  options: { rail: { type: "string" }, key: { type: "string" } },
  optionHelp: `  --rail NAME             the rail the money arrived on (base, solana, lightning); default: manual
  --key KEY               idempotency key (1-128 of [A-Za-z0-9._:@-]), e.g. a ticket id or tx reference`,
  positionals: { min: 2, max: 2, names: "<agent> <amount-usd>" },
  examples: ["masques-ledger-client deposit agent-7 25 --token $ADMIN_TOKEN", "masques-ledger-client deposit agent-7 10.50 --key ticket-4411 --json"],
  async run(ctx) {
    const [agent, amountText] = ctx.positionals as [string, string];
    let amount_micro: bigint;
    try {
      amount_micro = parseUsdInput(amountText);
    } catch (e) {
      throw new UsageError(`<amount-usd>: ${(e as Error).message}`);
    }
    if (amount_micro === 0n) throw new UsageError("<amount-usd>: must be greater than 0");
    const railText = ctx.str("rail")?.toLowerCase();
    if (railText !== undefined && !(RAILS as readonly string[]).includes(railText)) {
      throw new UsageError(`--rail: expected one of ${RAILS.join(", ")}, got ${JSON.stringify(railText)}`);
    }
    const rail = railText as RailName | undefined;
    const key = ctx.str("key") ?? newIdempotencyKey();
    const client = await ctx.client();
    const req = { to: { agent_id: agent }, amount_micro, ...(rail ? { rail } : {}) };
    let res;
    try {
      try {
        res = await client.deposit(req, { idempotency_key: key });
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e;
        ctx.note(`Opening a prepaid wallet for ${agent}…`);
        await client.openAgentWallet({ agent_id: agent, mode: "prepaid" });
        res = await client.deposit(req, { idempotency_key: key });
      }
    } catch (e) {
      if (e instanceof MasquesError && e.kind === "outage") {
        throw new MasquesError({
          message: e.message,
          hint: `The deposit may or may not have been applied. Re-run with --key ${key} to finish it without crediting twice.`,
          kind: "outage",
          grpc_code: e.grpc_code,
          ...(e.request_id ? { request_id: e.request_id } : {}),
        });
      }
      throw e;
    }
    const wallet = await client.getAccount({ agent_id: agent });
    const available = wallet.balance?.availableMicro ?? 0n;
    return {
      human: [
        `✓ Deposited ${formatUsd(amount_micro)} to ${agent}${rail ? ` via ${rail}` : " (manual)"}`,
        `  wallet available: ${formatUsd(available)}`,
        `  key: ${key}   transfer: ${res.transfer.transferId}`,
      ],
      json: { agent, idempotency_key: key, transfer: transferJson(res.transfer), wallet_available: { micro: available.toString() } },
    };
  },
});
