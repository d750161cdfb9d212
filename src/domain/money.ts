/**
 * Money parsing and formatting (bigint micro-USD <-> exact decimal USD strings). The rules live in
 * the client package (clients/sdk/money.ts), which the daemon imports and never the reverse
 * (ADR 0062); this re-export keeps the daemon's imports of `domain/money.js` unchanged.
 */
export { formatMicroAsUsd, MICRO_PER_USD, MoneyParseError, parseUsdToMicro } from "../../clients/sdk/money.js";
