/**
 * Every control-plane migration, in order. A new migration takes the next free number when it
 * is committed; numbers are never reused, renumbered or edited (ADR 0070).
 */
import type { ControlPlaneMigration } from "../migrations.js";
import { m0001 } from "./0001_price_books.js";
import { m0002 } from "./0002_import_pricebooks_jsonl.js";
import { m0003 } from "./0003_settlement_payouts.js";
import { m0004 } from "./0004_settlement_deposits.js";
import { m0012 } from "./0012_otlp_telemetry.js";

export const MIGRATIONS: readonly ControlPlaneMigration[] = [m0001, m0002, m0003, m0004, m0012];
