/**
 * Every control-plane migration, in order. A new migration takes the next free number when it
 * is committed; numbers are never reused, renumbered or edited (ADR 0070).
 */
import type { ControlPlaneMigration } from "../migrations.js";
import { m0001 } from "./0001_price_books.js";
import { m0002 } from "./0002_import_pricebooks_jsonl.js";
import { m0003 } from "./0003_settlement_payouts.js";
import { m0004 } from "./0004_settlement_deposits.js";
import { m0005 } from "./0005_settlement_deposit_review.js";
import { m0006 } from "./0006_governance.js";
import { m0007 } from "./0007_webhooks.js";
import { m0008 } from "./0008_catalog_versions.js";
import { m0009 } from "./0009_limits.js";
import { m0010 } from "./0010_lightning.js";
import { m0011 } from "./0011_otlp_telemetry.js";
import { m0012 } from "./0012_payout_rail_facts.js";

export const MIGRATIONS: readonly ControlPlaneMigration[] = [m0001, m0002, m0003, m0004, m0005, m0006, m0007, m0008, m0009, m0010, m0011, m0012];
