/**
 * Settlement's pure core (issue 13; docs/adr/0085-settlement-framework.md): accounts per rail,
 * deterministic ids, payout quotes, ledger plans (hold, post, void, deposit credit) and the
 * forward-only payout state machine. No I/O: services execute these plans.
 */
export * from "./accounts.js";
export * from "./deposits.js";
export * from "./destinations.js";
export * from "./ids.js";
export * from "./plans.js";
export * from "./quote.js";
export * from "./state.js";
