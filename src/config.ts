/**
 * Daemon configuration: ONE zod schema over the environment, validated at start-up.
 *
 * To add a variable: add one entry to `vars` below (schema with its default, a one-line doc and
 * an example). It then appears in the parsed `Config`, in `masques-ledger serve --help` and must
 * also be added to .env.example. Empty strings count as unset (convenient with .env files).
 * Error messages always name the variable.
 */
import path from "node:path";
import { z } from "zod";

/** A `host:port` listen address (`[::1]:port` for IPv6). */
export interface ListenAddr {
  host: string;
  port: number;
  /** As given, e.g. "127.0.0.1:50051". */
  text: string;
}

const listenAddr = z.string().transform((text, ctx): ListenAddr => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    ctx.addIssue({ code: "custom", message: `expected host:port (e.g. 127.0.0.1:50051), got "${text}"` });
    return z.NEVER;
  }
  return { host: (m[1] ?? m[2]) as string, port, text };
});

const boolFlag = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");

const uint = (what: string) =>
  z.string().regex(/^\d+$/, `expected a non-negative integer (${what})`).transform(Number);

/** A micro-USD amount in the API's range (0..2^63-1), as a bigint. */
/** A non-negative decimal rate (e.g. "2000", "0.5"). */
const rate = (what: string) =>
  z.string().regex(/^\d{1,9}(\.\d{1,9})?$/, `expected a non-negative decimal number (${what})`).transform(Number);

const microAmount = z
  .string()
  .regex(/^\d{1,19}$/, "expected a non-negative integer amount of micro-USD")
  .transform((t) => BigInt(t))
  .refine((n) => n <= (1n << 63n) - 1n, "must be <= 9223372036854775807");

/** Documentation of one variable (for `serve --help`, the README and .env.example). */
export interface VarDoc {
  doc: string;
  /** Default shown in help ("" = unset / derived, explained in `doc`). */
  default: string;
}

function v<T extends z.ZodType>(schema: T, doc: string, def = ""): { schema: T; doc: VarDoc } {
  return { schema, doc: { doc, default: def } };
}

const vars = {
  // ---- daemon platform -------------------------------------------------------------------
  MASQUES_GRPC_ADDR: v(
    listenAddr.default({ host: "127.0.0.1", port: 50051, text: "127.0.0.1:50051" }),
    "Native gRPC (HTTP/2) listen address: reflection v1/v1alpha and grpc.health.v1 live here. Port 0 = any free port.",
    "127.0.0.1:50051",
  ),
  MASQUES_HTTP_ADDR: v(
    listenAddr.default({ host: "127.0.0.1", port: 8080, text: "127.0.0.1:8080" }),
    "Connect, gRPC-Web and JSON over HTTP/1.1 and HTTP/2 (h2c) listen address. Port 0 = any free port.",
    "127.0.0.1:8080",
  ),
  MASQUES_DATA_DIR: v(
    z.string().default("./data"),
    "Directory holding all local state (embedded ledger, dev JWT keys, analytics).",
    "./data",
  ),
  LEDGER: v(
    z.enum(["embedded", "tigerbeetle"]).default("embedded"),
    "Ledger backend: the in-process embedded engine, or a TigerBeetle cluster (TB_ADDRESSES).",
    "embedded",
  ),
  LEDGER_DATA_DIR: v(
    z.string().optional(),
    "Embedded engine data directory (default: $MASQUES_DATA_DIR/ledger).",
  ),
  LEDGER_ACCEPT_DATA_LOSS: v(
    z.string().optional(),
    "Unset in normal operation. When the embedded ledger refuses to start because acknowledged data may be lost (a damaged or missing log segment, a missing ledger), the refusal prints the exact value that accepts that one loss; restart once with it (logged at error level), then unset it. ADR 0011.",
  ),
  TB_ADDRESSES: v(
    z.string().optional(),
    "Comma-separated TigerBeetle replica addresses (host:port or port); required when LEDGER=tigerbeetle.",
  ),
  TB_CLUSTER_ID: v(
    z.string().regex(/^\d+$/, "expected a decimal 128-bit cluster id").transform(BigInt).default(0n),
    "TigerBeetle cluster id (decimal).",
    "0",
  ),
  MASQUES_JWT_PUBLIC_KEYS: v(
    z.string().optional(),
    "Public keys verifying bearer JWTs (EdDSA/ES256): a JWKS JSON document ({\"keys\":[...]}) or one or more SPKI PEM blocks. Unset on a loopback address = dev key pair in $MASQUES_DATA_DIR/keys.",
  ),
  MASQUES_JWT_PUBLIC_KEYS_FILE: v(
    z.string().optional(),
    "Path of a file with the same content as MASQUES_JWT_PUBLIC_KEYS (JWKS or PEM), e.g. a mounted secret. Used when MASQUES_JWT_PUBLIC_KEYS is unset.",
  ),
  MASQUES_JWT_ISSUER: v(z.string().min(1).default("masques-ledger"), "Required `iss` claim of bearer JWTs.", "masques-ledger"),
  MASQUES_JWT_AUDIENCE: v(z.string().min(1).default("masques-ledger"), "Required `aud` claim of bearer JWTs.", "masques-ledger"),
  MASQUES_CORS_ORIGINS: v(
    z
      .string()
      .transform((text) => text.split(",").map((o) => o.trim()).filter(Boolean))
      .pipe(z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, "expected origins like https://app.example.com (scheme://host[:port], comma-separated)")))
      .default([]),
    "Browser origins allowed to call the HTTP port (Connect / gRPC-Web) cross-origin, comma-separated. Unset = no CORS headers (same-origin and non-browser clients only).",
  ),
  MASQUES_LOG_LEVEL: v(
    z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
    "Log level (JSON lines on stdout).",
    "info",
  ),
  MASQUES_SHUTDOWN_GRACE_S: v(
    uint("seconds").default(10),
    "On SIGINT/SIGTERM: seconds to let in-flight calls finish before they are cancelled.",
    "10",
  ),
  MASQUES_COALESCE: v(
    boolFlag.default(true),
    "Merge concurrent ledger requests into batches of at most 8189 events (true/false).",
    "true",
  ),
  // ---- benchmarking and debugging (issue 20, ADR 0123, src/telemetry/profiler.ts) ------------
  MASQUES_CPU_PROFILE_DIR: v(
    z.string().min(1).optional(),
    "Bench/debug switch, unset in production: when set, SIGUSR2 starts a CPU profile of the daemon's main thread and the next SIGUSR2 writes it to this directory as daemon-<pid>-<n>.cpuprofile (`npm run bench` sets it for its per-call CPU split). Unset = no SIGUSR2 handler (the signal's default ends the process).",
  ),
  // ---- transport limits (issue 12 "Hostile load", docs/adr/0006-transport-limits.md) --------
  MASQUES_MAX_CONNECTIONS: v(
    uint("connections").pipe(z.number().min(1)).default(1024),
    "Open connections accepted per listening port; further connections are closed at once (on the HTTP port a `GET /healthz` still answers).",
    "1024",
  ),
  MASQUES_MAX_STREAMS_PER_CONNECTION: v(
    uint("streams").pipe(z.number().min(1).max(1_000_000)).default(100),
    "Concurrent HTTP/2 streams (calls) per connection on both ports; more are refused with REFUSED_STREAM.",
    "100",
  ),
  MASQUES_IDLE_TIMEOUT_S: v(
    uint("seconds").pipe(z.number().min(1)).default(60),
    "A connection with no call in flight (HTTP/2: no frame at all on the HTTP port) is closed after this many seconds.",
    "60",
  ),
  MASQUES_HEADER_TIMEOUT_S: v(
    uint("seconds").pipe(z.number().min(1)).default(10),
    "A new connection must send its first request headers within this many seconds, and every request its complete message within 3x this time; otherwise it is closed.",
    "10",
  ),
  MASQUES_MAX_MESSAGE_BYTES: v(
    uint("bytes").pipe(z.number().min(1024).max(2 ** 31 - 1)).default(4 * 1024 * 1024),
    "Largest request message accepted on either port, in bytes (RESOURCE_EXHAUSTED beyond it).",
    "4194304",
  ),
  MASQUES_MAX_METADATA_BYTES: v(
    uint("bytes").pipe(z.number().min(1024).max(1024 * 1024)).default(16 * 1024),
    "Largest request header block (gRPC metadata, HTTP headers) accepted on either port, in bytes.",
    "16384",
  ),
  MASQUES_MAX_ECHO_CHARS: v(
    uint("characters").pipe(z.number().min(16).max(65_536)).default(256),
    "Longest request value the daemon repeats back in an error (message, ErrorInfo metadata, field violations) or a log line; longer values are cut and marked.",
    "256",
  ),
  // ---- analytics: CDC streamer ledger -> ClickHouse (issue 5, src/streamer) ----------------
  STREAMER_ENABLED: v(
    boolFlag.default(true),
    "Run the CDC streamer (ledger -> ClickHouse) inside `serve` (true/false). `masques-ledger stream` runs it standalone.",
    "true",
  ),
  CLICKHOUSE_URL: v(
    z.string().url().optional(),
    "ClickHouse server HTTP(S) URL (e.g. http://localhost:8123). Unset = embedded chDB on disk at CHDB_PATH.",
  ),
  CLICKHOUSE_USER: v(z.string().optional(), "ClickHouse user for CLICKHOUSE_URL (default: the server's `default`)."),
  CLICKHOUSE_PASSWORD: v(z.string().optional(), "ClickHouse password for CLICKHOUSE_URL."),
  CLICKHOUSE_DATABASE: v(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "expected a ClickHouse identifier").default("masques"),
    "ClickHouse database holding the analytics tables (created by the migrations in sql/).",
    "masques",
  ),
  CHDB_PATH: v(
    z.string().optional(),
    "Embedded chDB data directory (default: $MASQUES_DATA_DIR/chdb). One process at a time.",
  ),
  STREAM_BATCH: v(
    uint("events").refine((n) => n >= 1 && n <= 8189, "expected 1..8189").default(8189),
    "Events per ledger read by the streamer (1..8189).",
    "8189",
  ),
  STREAM_POLL_MS: v(
    uint("milliseconds").refine((n) => n >= 1, "expected >= 1").default(200),
    "Streamer poll interval when caught up (ms).",
    "200",
  ),
  RECONCILE_INTERVAL_S: v(
    uint("seconds").default(3600),
    "Inside `serve` (with the streamer): reconcile the ledger against ClickHouse every this many seconds, pausing the streamer while it compares; 0 = only on request (AdminService.RunReconciliation, `masques-ledger reconcile`).",
    "3600",
  ),
  // ---- analytics recovery (issue 18, ADR 0119) -----------------------------------------------
  STREAMER_RETRY_MIN_MS: v(
    uint("milliseconds").pipe(z.number().min(10).max(600_000)).default(1_000),
    "Inside `serve`: first delay before retrying to start the streamer (open + migrate ClickHouse) after it failed; doubles per failed attempt up to STREAMER_RETRY_MAX_MS (ms).",
    "1000",
  ),
  STREAMER_RETRY_MAX_MS: v(
    uint("milliseconds").pipe(z.number().min(10).max(3_600_000)).default(60_000),
    "Inside `serve`: longest delay between attempts to start the streamer (ms); attempts go on until ClickHouse answers or the daemon stops.",
    "60000",
  ),
  // ---- telemetry in and out (issue 18, src/telemetry, docs/telemetry.md) --------------------
  OTLP_MAX_BODY_BYTES: v(
    uint("bytes").pipe(z.number().min(1024).max(64 * 1024 * 1024)).default(4 * 1024 * 1024),
    "Largest OTLP/HTTP request body accepted on /v1/logs and /v1/metrics, in bytes, both as sent and after gzip decompression (413 past it).",
    "4194304",
  ),
  OTLP_MAX_LOG_RECORDS: v(
    uint("records").pipe(z.number().min(1).max(100_000)).default(10_000),
    "Most log records one OTLP export may carry (413 past it).",
    "10000",
  ),
  OTLP_DOFF_GRACE_MS: v(
    uint("milliseconds").pipe(z.number().max(120_000)).default(6_000),
    "Doff of a session metered from OTLP (Don with claude_session_id) settles this long after the Doff request, so events stamped before the Doff that the exporter still batches are billed (Claude Code exports logs every 5 s).",
    "6000",
  ),
  MASQUES_METRICS_PUBLIC: v(
    boolFlag.default(false),
    "Serve GET /metrics (Prometheus text) without a token on a non-loopback MASQUES_HTTP_ADDR. Default: loopback needs no token; elsewhere an admin token is required.",
    "false",
  ),
  MASQUES_METRICS_OTLP_ENDPOINT: v(
    z.string().url().optional(),
    "Push the daemon's own metrics over OTLP/HTTP (JSON) to this URL (e.g. http://collector:4318/v1/metrics). Unset = Prometheus text at /metrics only.",
  ),
  MASQUES_METRICS_EXPORT_INTERVAL_MS: v(
    uint("milliseconds").pipe(z.number().min(1000)).default(60_000),
    "Interval of the OTLP metrics push (MASQUES_METRICS_OTLP_ENDPOINT).",
    "60000",
  ),
  // ---- control-plane database (issue 10, src/controlplane) ---------------------------------
  DATABASE_URL: v(
    z
      .string()
      .regex(/^postgres(ql)?:\/\/\S+$/, "expected a PostgreSQL connection URL (postgres://user:password@host:port/database)")
      .optional(),
    "PostgreSQL server holding the control plane (price books, and later rail transactions, quotes, revenue rules, audit log). Unset = embedded PGlite on disk at CONTROLPLANE_DATA_DIR. Money never lives there: the ledger decides.",
  ),
  DATABASE_POOL_MAX: v(
    uint("connections").pipe(z.number().min(1).max(100, "must be <= 100 connections")).default(10),
    "Most connections this daemon opens to DATABASE_URL (1..100).",
    "10",
  ),
  CONTROLPLANE_DATA_DIR: v(
    z.string().optional(),
    "Embedded PGlite control-plane directory when DATABASE_URL is unset (default: $MASQUES_DATA_DIR/controlplane). One process at a time.",
  ),
  // ---- sessions (SessionService, issue 4) ---------------------------------------------------
  MASQUES_DIR: v(
    z.string().default("./masques"),
    "Directory of masque YAML files (the catalog with author and pricing); re-read on change without a restart. An invalid file is reported and skipped.",
    "./masques",
  ),
  PLATFORM_FEE_BPS: v(
    uint("basis points").pipe(z.number().max(10_000, "must be <= 10000 basis points")).default(1500),
    "Platform fee of the first platform-wide revenue rule, created at the daemon's first start (basis points of the charge, 1500 = 15%; rounds down, the remainder goes to the author). Afterwards revenue rules decide (AdminService); a change here is ignored.",
    "1500",
  ),
  BILLING_MODE: v(
    z.enum(["shadow", "soft", "live"]).default("live"),
    "Session billing: shadow (compute and record, hold nothing), soft (overrun charged as agent debt), live (never above the hold).",
    "live",
  ),
  SESSION_MAX_S: v(
    uint("seconds").pipe(z.number().min(1).max(4_294_967_295)).default(86_400),
    "Maximum session length: the timeout of the Don hold; the ledger voids an unsettled hold after it.",
    "86400",
  ),
  SESSION_IDLE_S: v(
    uint("seconds").pipe(z.number().min(1)).default(900),
    "A session with no heartbeat or usage for this long is finalized by the reaper at its accrued price.",
    "900",
  ),
  SESSION_REAPER_INTERVAL_MS: v(
    uint("milliseconds").pipe(z.number().min(10)).default(5_000),
    "How often the session reaper looks for idle sessions and sessions near their maximum length. At most SESSION_MAX_S x 1000 / 6 (the reaper settles sessions 3 intervals before their hold's timeout).",
    "5000",
  ),
  // ---- governance: revenue rules and the audit log (AdminService, issue 16, ADR 0100-0102) --
  REVENUE_RULE_COOLING_S: v(
    uint("seconds").default(172_800),
    "Cooling period of an approved revenue rule before it activates by itself (s; 48 h by default). Emergency activation skips it.",
    "172800",
  ),
  GOVERNANCE_TICK_MS: v(
    uint("milliseconds").pipe(z.number().min(10).max(3_600_000)).default(1_000),
    "How often the daemon activates revenue rules whose cooling is over and checks whether the audit log's head is due for anchoring.",
    "1000",
  ),
  AUDIT_ANCHOR_INTERVAL_S: v(
    uint("seconds").pipe(z.number().max(86_400)).default(60),
    "Write the audit log's head into the ledger (a zero-amount anchor transfer) at most this often when it changed (s); 0 = at every governance tick.",
    "60",
  ),
  // ---- settlement: author payouts (SettlementService, issue 13, docs/adr/0086) -------------
  SETTLEMENT_BASE_CHAIN_ID: v(
    uint("EVM chain id").pipe(z.number().min(1).max(Number.MAX_SAFE_INTEGER)).default(8453),
    "EVM chain id of the Base rail (8453 Base mainnet, 84532 Base Sepolia, 31337 anvil): named in ownership challenges and checked on deposit reports. Must equal the Base adapter's BASE_CHAIN_ID.",
    "8453",
  ),
  SETTLEMENT_BASE_FINALITY_DEPTH: v(
    uint("blocks").pipe(z.number().min(1).max(10_000)).default(12),
    "Confirmations (the including block counts as 1) a Base payout must have when the adapter completes it. Must equal the Base adapter's BASE_FINALITY_DEPTH.",
    "12",
  ),
  PAYOUT_FIXED_FEE_MICRO: v(
    z.string().regex(/^\d{1,19}$/, "expected micro-USD as a non-negative integer").transform(BigInt).default(100_000n),
    "Fixed fee per payout, micro-USD, paid by the author (it funds the rail's network fee, ADR 0085); shown in every quote.",
    "100000",
  ),
  PAYOUT_FEE_BPS: v(
    uint("basis points").pipe(z.number().max(10_000, "must be <= 10000 basis points")).default(0),
    "Proportional payout fee in basis points of the amount (rounded up to a whole micro-USD), added to PAYOUT_FIXED_FEE_MICRO.",
    "0",
  ),
  PAYOUT_MIN_NET_MICRO: v(
    z.string().regex(/^\d{1,19}$/, "expected micro-USD as an integer").transform(BigInt).pipe(z.bigint().min(1n, "must be >= 1")).default(1_000_000n),
    "Smallest net payout accepted (after the fee), micro-USD.",
    "1000000",
  ),
  PAYOUT_QUOTE_TTL_S: v(
    uint("seconds").pipe(z.number().min(1).max(86_400)).default(300),
    "How long a payout quote can be confirmed (ConfirmPayout), in seconds; an expired quote is refused (QUOTE_EXPIRED).",
    "300",
  ),
  PAYOUT_DESTINATION_COOLING_S: v(
    uint("seconds").pipe(z.number().max(30 * 86_400)).default(86_400),
    "Cooling period of a CHANGED payout destination, in seconds: until then payouts go to the previous address, and the author is notified (a settlement outbox event, ADR 0089). The first destination is active at once.",
    "86400",
  ),
  PAYOUT_LEASE_S: v(
    uint("seconds").pipe(z.number().min(1)).default(300),
    "Default lease of a payout claimed by a rail adapter (ClaimPayouts lease_s = 0), in seconds; an expired lease returns the payout to the queue.",
    "300",
  ),
  PAYOUT_LEASE_MAX_S: v(
    uint("seconds").pipe(z.number().min(1)).default(3_600),
    "Longest lease a rail adapter may ask for in ClaimPayouts, in seconds.",
    "3600",
  ),
  // ---- settlement: Solana rail, service side (issue 14, docs/adr/0091) ---------------------
  SETTLEMENT_SOLANA_CHAIN_ID: v(
    z
      .string()
      .regex(/^solana:[1-9A-HJ-NP-Za-km-z]{32}$/, 'expected a CAIP-2 Solana chain id "solana:<first 32 base58 characters of the genesis hash>"')
      .optional(),
    "CAIP-2 chain id of the Solana rail (mainnet solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp, devnet solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1). Unset = the Solana rail is not enabled on this daemon. Checked on deposit reports; must be the Solana adapter's cluster.",
  ),
  SETTLEMENT_SOLANA_CLUSTER: v(
    z.string().regex(/^[a-z0-9-]{1,32}$/, "expected 1-32 chars of [a-z0-9-]").default("mainnet-beta"),
    "Solana cluster name written into ownership challenges (mainnet-beta, devnet, localnet).",
    "mainnet-beta",
  ),
  SETTLEMENT_SOLANA_FINALITY_DEPTH: v(
    uint("confirmations").pipe(z.number().min(1).max(10_000)).default(32),
    "Confirmations (slots on top of the including one, as getSignatureStatuses counts them; finalized counts as this depth) a Solana payout or deposit must have before it is completed or credited. Must match the Solana adapter's required commitment.",
    "32",
  ),
  PAYOUT_SOLANA_ACCOUNT_RENT_FEE_MICRO: v(
    z.string().regex(/^\d{1,19}$/, "expected micro-USD as a non-negative integer").transform(BigInt).default(500_000n),
    "Fee, micro-USD, added to a Solana payout's quote for the rent of the destination's USDC token account when the platform has not yet paid that destination; posted only if the payout created the account, otherwise returned to the author (ADR 0091).",
    "500000",
  ),
  OWNERSHIP_CHALLENGE_TTL_S: v(
    uint("seconds").pipe(z.number().min(1).max(86_400)).default(900),
    "How long an ownership challenge (CreateDestinationChallenge) can be signed and used, in seconds.",
    "900",
  ),
  // ---- webhooks: signed notifications (issue 16, docs/adr/0105) ---------------------------
  WEBHOOK_DISPATCH_ENABLED: v(
    boolFlag.default(true),
    "Deliver queued webhooks from this daemon (true/false). Events are always queued; several daemons may dispatch from one database.",
    "true",
  ),
  WEBHOOK_POLL_MS: v(
    uint("milliseconds").pipe(z.number().min(10).max(60_000)).default(1_000),
    "How often the webhook dispatcher looks for due deliveries (ms).",
    "1000",
  ),
  WEBHOOK_CONCURRENCY: v(
    uint("requests").pipe(z.number().min(1).max(256)).default(8),
    "Most webhook requests in flight from this daemon at once (1..256); a slow endpoint holds one slot at most WEBHOOK_TIMEOUT_MS.",
    "8",
  ),
  WEBHOOK_TIMEOUT_MS: v(
    uint("milliseconds").pipe(z.number().min(100).max(60_000)).default(10_000),
    "Whole-attempt timeout of one webhook request (connect, send, answer), ms; then the attempt fails and is retried.",
    "10000",
  ),
  WEBHOOK_MAX_ATTEMPTS: v(
    uint("attempts").pipe(z.number().min(1).max(30)).default(8),
    "Attempts per delivery before it is dead-lettered (redeliver on demand with WebhookService.RedeliverWebhook).",
    "8",
  ),
  WEBHOOK_BACKOFF_BASE_MS: v(
    uint("milliseconds").pipe(z.number().min(1)).default(5_000),
    "Delay before the 2nd attempt; each later delay doubles (exponential backoff), capped at WEBHOOK_BACKOFF_MAX_MS.",
    "5000",
  ),
  WEBHOOK_BACKOFF_MAX_MS: v(
    uint("milliseconds").pipe(z.number().min(1)).default(36_000_000),
    "Longest delay between two attempts of one delivery (ms; default 10 h).",
    "36000000",
  ),
  WEBHOOK_ALLOW_PRIVATE_NETWORK: v(
    boolFlag.default(false),
    "LOCAL DEVELOPMENT ONLY: let author endpoints resolve to loopback, private or link-local addresses (an admin can also allow it per endpoint).",
    "false",
  ),
  WEBHOOK_ENDPOINTS_PER_OWNER_MAX: v(
    uint("endpoints").pipe(z.number().min(1).max(1_000)).default(20),
    "Most enabled webhook endpoints one author (or one admin) may register.",
    "20",
  ),
  // ---- live catalog (issue 16, docs/adr/0107, 0031) ----------------------------------------
  CATALOG_PRICE_NOTICE_S: v(
    uint("seconds").pipe(z.number().max(365 * 86_400)).default(604_800),
    "Notice period of a published price change, in seconds: a new price applies to sessions donned this long after it was published (default 7 days); the first version of a masque applies at once.",
    "604800",
  ),
  CATALOG_RESCAN_MS: v(
    uint("milliseconds").pipe(z.number().min(50).max(3_600_000)).default(30_000),
    "MASQUES_DIR is watched for changes (fs.watch) and also rescanned this often (ms), so a missed event is caught; a changed file applies without a restart.",
    "30000",
  ),
  // ---- limits: spending caps, peer transfers, refunds (issue 17, docs/adr/0110-0113) --------
  SPEND_DAILY_CAP_MICRO: v(
    microAmount.optional(),
    "Default daily spending cap of an agent (micro-USD per UTC day: Don holds, peer transfers, soft-mode debt), applied when the agent's limits are first used; unset = no cap. Admins and the agent (lower only) change it per agent.",
  ),
  SPEND_SESSION_CAP_MICRO: v(
    microAmount.optional(),
    "Default per-session spending cap of an agent (micro-USD): a session's hold and charge never pass it; unset = no cap.",
  ),
  PEER_TRANSFER_MAX_MICRO: v(microAmount.default(100_000_000n), "Largest single peer transfer (TransferFunds), micro-USD (seed 004: 100 USD).", "100000000"),
  PEER_DAILY_VOLUME_MICRO: v(
    microAmount.default(500_000_000n),
    "Peer-transfer volume a sender may send per UTC day, micro-USD (seed 004: 500 USD).",
    "500000000",
  ),
  REFUND_AUTHOR_WINDOW_S: v(
    uint("seconds").default(604_800),
    "How long after a session settled its masque's author may refund it (admins always may), seconds; 0 = authors never.",
    "604800",
  ),
  // ---- settlement: Lightning rail, msat ledger and conversion (issue 15, docs/adr/0094) ----------
  LIGHTNING_RATE_MSAT_PER_USD: v(
    z.string().regex(/^(\d{1,14})(\.\d{1,6})?$/, "expected msat per USD as a decimal with at most 6 fraction digits, e.g. 1052631.578947").optional(),
    "Operator-set conversion rate for the Lightning rail, millisatoshis per 1 USD (the default rate provider; no network call). Unset = Lightning payouts and deposit invoices are not enabled. Recorded with every conversion.",
    "",
  ),
  LIGHTNING_RATE_SOURCE: v(
    z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, "expected 1-64 characters of [A-Za-z0-9._:-]").default("operator"),
    "Name recorded as the source of LIGHTNING_RATE_MSAT_PER_USD in every quote and conversion.",
    "operator",
  ),
  LIGHTNING_NETWORK: v(
    z.enum(["mainnet", "testnet", "testnet4", "signet", "regtest", "simnet"]).default("mainnet"),
    "Bitcoin network of the Lightning rail: payout invoices of another network are refused, and deposits are keyed by its genesis hash. Must equal the adapter's LND_NETWORK.",
    "mainnet",
  ),
  LIGHTNING_QUOTE_TTL_S: v(
    uint("seconds").pipe(z.number().min(60).max(86_400)).default(900),
    "How long a Lightning deposit invoice (and its quoted rate) can be paid, in seconds; after it nothing is credited.",
    "900",
  ),
  LIGHTNING_MIN_INVOICE_REMAINING_S: v(
    uint("seconds").pipe(z.number().max(86_400)).default(60),
    "A payout invoice must stay valid at least this long after ConfirmPayout (judged by the daemon's clock, not the node's block time).",
    "60",
  ),
  // ---- dashboard (issue 19, docs/adr/0121) -------------------------------------------------
  MASQUES_UI_ENABLED: v(
    boolFlag.default(true),
    "Serve the web dashboard at /ui/ on the HTTP port (true/false). It calls the same API with the user's bearer token; the one-click dev login exists only on a loopback daemon using its dev keys.",
    "true",
  ),
  MASQUES_UI_DIR: v(
    z.string().min(1).optional(),
    "Directory of the built dashboard (index.html + assets/). Default: ui/dist in the installation (built by `npm install` / `npm run build:ui`).",
  ),
  // ---- hot path: per-principal rate limits (issue 17 rate limits, src/server/rate-limit.ts) ----
  RATE_LIMIT_ENABLED: v(boolFlag.default(true), "Per-principal token-bucket rate limits on every RPC except health and reflection (over the limit: RESOURCE_EXHAUSTED with retry-after; HTTP 429 on the JSON port).", "true"),
  RATE_LIMIT_READ_PER_S: v(rate("calls per second").default(2_000), "Read calls (Get*, List*, Verify*) one principal may make per second, sustained; 0 = unlimited.", "2000"),
  RATE_LIMIT_READ_BURST: v(uint("calls").pipe(z.number().min(1)).default(4_000), "Read calls one principal may make at once above the sustained rate (bucket size).", "4000"),
  RATE_LIMIT_WRITE_PER_S: v(rate("calls per second").default(2_000), "Other non-admin calls (Don, RecordUsage, Doff, transfers, …) one principal may make per second, sustained; 0 = unlimited.", "2000"),
  RATE_LIMIT_WRITE_BURST: v(uint("calls").pipe(z.number().min(1)).default(4_000), "Write calls one principal may make at once above the sustained rate (bucket size).", "4000"),
  RATE_LIMIT_ADMIN_PER_S: v(rate("calls per second").default(100), "AdminService calls one principal may make per second, sustained; 0 = unlimited.", "100"),
  RATE_LIMIT_ADMIN_BURST: v(uint("calls").pipe(z.number().min(1)).default(200), "AdminService calls one principal may make at once above the sustained rate (bucket size).", "200"),
} as const;

type Vars = typeof vars;

export const configSchema = z.object(
  Object.fromEntries(Object.entries(vars).map(([k, e]) => [k, e.schema])) as {
    [K in keyof Vars]: Vars[K]["schema"];
  },
);

export type Config = z.output<typeof configSchema> & {
  /** Resolved absolute data directories. */
  readonly dataDir: string;
  readonly ledgerDataDir: string;
  /** Embedded PGlite control-plane directory (used when DATABASE_URL is unset). */
  readonly controlplaneDataDir: string;
};

export const configDocs: Readonly<Record<string, VarDoc>> = Object.fromEntries(
  Object.entries(vars).map(([k, e]) => [k, e.doc]),
);

export class ConfigError extends Error {
  constructor(readonly issues: { variable: string; message: string }[]) {
    super(
      "invalid configuration:\n" + issues.map((i) => `  ${i.variable}: ${i.message}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

/**
 * ADR 0033/0037: with a daemon up, no session may be lost to its hold's ledger timeout. The
 * reaper settles a session once it is within its margin of the timeout; the margin is at least
 * 3 reaper intervals (src/services/sessions/reaper.ts reapMarginNs), so at least two passes fall
 * inside it. That margin must leave a session at least half its maximum length:
 * 3 x SESSION_REAPER_INTERVAL_MS <= SESSION_MAX_S / 2. Returns the violated rule, or null.
 */
export function sessionReaperRule(max_s: number, interval_ms: number): string | null {
  if (3 * interval_ms <= (max_s * 1000) / 2) return null;
  return (
    `3 x ${interval_ms} ms (the reaper settles a session 3 intervals before its hold's timeout, so that ` +
    `no session expires while the daemon is up; ADR 0033) must be at most half of SESSION_MAX_S ` +
    `(${max_s} s): use SESSION_REAPER_INTERVAL_MS <= ${Math.floor((max_s * 1000) / 6)} or a larger SESSION_MAX_S`
  );
}

/** Parse and validate the environment. Throws ConfigError naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, string> = {};
  for (const k of Object.keys(vars)) {
    const value = env[k];
    if (value !== undefined && value.trim() !== "") input[k] = value.trim();
  }
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({
        variable: String(i.path[0] ?? "(environment)"),
        message: i.message,
      })),
    );
  }
  const c = parsed.data;
  const cross: { variable: string; message: string }[] = [];
  if (c.LEDGER === "tigerbeetle" && !c.TB_ADDRESSES) {
    cross.push({ variable: "TB_ADDRESSES", message: "required when LEDGER=tigerbeetle" });
  }
  const reaperRule = sessionReaperRule(c.SESSION_MAX_S, c.SESSION_REAPER_INTERVAL_MS);
  if (reaperRule !== null) cross.push({ variable: "SESSION_REAPER_INTERVAL_MS", message: reaperRule });
  if (c.PAYOUT_LEASE_S > c.PAYOUT_LEASE_MAX_S) {
    cross.push({ variable: "PAYOUT_LEASE_S", message: `must be <= PAYOUT_LEASE_MAX_S (${c.PAYOUT_LEASE_MAX_S})` });
  }
  if (cross.length > 0) throw new ConfigError(cross);
  const dataDir = path.resolve(c.MASQUES_DATA_DIR);
  return {
    ...c,
    dataDir,
    ledgerDataDir: path.resolve(c.LEDGER_DATA_DIR ?? path.join(dataDir, "ledger")),
    controlplaneDataDir: path.resolve(c.CONTROLPLANE_DATA_DIR ?? path.join(dataDir, "controlplane")),
  };
}

/** Is this listen host only reachable from this machine? */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === "::ffff:127.0.0.1";
}

/** The environment section of `serve --help`. */
export function configHelp(): string {
  const lines: string[] = ["Environment variables:"];
  for (const [k, d] of Object.entries(configDocs)) {
    lines.push(`  ${k}${d.default ? ` (default: ${d.default})` : ""}`);
    lines.push(`      ${d.doc}`);
  }
  return lines.join("\n");
}
