/**
 * Typed errors: every failure the SDK returns is a `MasquesError` subclass that says what went
 * wrong (`message`) and what to do about it (`hint`), and classifies itself as the caller's
 * problem (`kind: "user"`) or an outage (`kind: "outage"`), which is what the CLI's exit codes
 * (1 vs 3) and a plugin's "try again later" logic need.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { formatUsd } from "./money.js";

export type ErrorKind = "user" | "outage";

/** Structured facts the daemon attaches to an error (decoded from its error details). */
export interface ErrorFacts {
  /** Machine-readable reason, e.g. "INSUFFICIENT_FUNDS", "UNKNOWN_MASQUE", "IDEMPOTENCY_KEY_REUSED". */
  reason?: string;
  /** Free-form metadata from an ErrorInfo-like detail. */
  metadata?: Record<string, string>;
  /** Field violations from a BadRequest-like detail. */
  field_violations?: Array<{ field: string; description: string }>;
  /** Balance facts for insufficient funds. */
  available_micro?: bigint;
  required_micro?: bigint;
  /** A human hint the daemon chose to send. */
  hint?: string;
}

export interface MasquesErrorInit {
  message: string;
  hint: string;
  kind: ErrorKind;
  grpc_code: Code;
  reason?: string;
  request_id?: string;
  cause?: unknown;
}

export class MasquesError extends Error {
  /** What to do about it, phrased for a person. */
  readonly hint: string;
  readonly kind: ErrorKind;
  /** The gRPC / Connect status code. */
  readonly grpc_code: Code;
  /** Machine-readable reason, when the daemon sent one. */
  readonly reason: string | undefined;
  /** The daemon's request id (from `x-request-id`), to quote in a bug report. */
  readonly request_id: string | undefined;

  constructor(init: MasquesErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.hint = init.hint;
    this.kind = init.kind;
    this.grpc_code = init.grpc_code;
    this.reason = init.reason;
    this.request_id = init.request_id;
  }

  /** Stable snake_case name of the code, e.g. "failed_precondition". */
  get code_name(): string {
    return codeName(this.grpc_code);
  }

  /** Plain-object view for `--json` output and logs (bigints as decimal strings). */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {
      error: this.name,
      code: this.code_name,
      kind: this.kind,
      message: this.message,
      hint: this.hint,
    };
    if (this.reason) out["reason"] = this.reason;
    if (this.request_id) out["request_id"] = this.request_id;
    return out;
  }
}

/** The wallet cannot cover the reservation. Nothing was held or moved. */
export class InsufficientFundsError extends MasquesError {
  readonly available_micro: bigint | undefined;
  readonly required_micro: bigint | undefined;
  constructor(init: Omit<MasquesErrorInit, "kind" | "hint" | "message"> & {
    detail: string;
    available_micro?: bigint;
    required_micro?: bigint;
  }) {
    const avail = init.available_micro;
    const req = init.required_micro;
    const parts: string[] = ["Insufficient funds"];
    if (req !== undefined) parts.push(`: this needs a reservation of ${formatUsd(req)}`);
    if (avail !== undefined) parts.push(`${req !== undefined ? "," : ":"} your available balance is ${formatUsd(avail)}`);
    const shortfall = avail !== undefined && req !== undefined && req > avail ? req - avail : undefined;
    super({
      ...init,
      kind: "user",
      message: `${parts.join("")}. Nothing was charged.`,
      hint:
        shortfall !== undefined
          ? `Add at least ${formatUsd(shortfall)} to your wallet (e.g. \`masques-ledger-client deposit\` by an admin), or lower your --max-spend, then retry.`
          : "Add funds to your wallet or lower your --max-spend, then retry. `masques-ledger-client balance` shows what you have.",
    });
    this.available_micro = avail;
    this.required_micro = req;
  }
  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      ...(this.available_micro !== undefined ? { available_micro: this.available_micro.toString() } : {}),
      ...(this.required_micro !== undefined ? { required_micro: this.required_micro.toString() } : {}),
    };
  }
}

/** A field of the request was rejected. */
export class InvalidArgumentError extends MasquesError {
  readonly field: string | undefined;
  readonly rule: string | undefined;
  constructor(init: Omit<MasquesErrorInit, "kind" | "hint"> & { field?: string; rule?: string; hint?: string }) {
    super({
      ...init,
      kind: "user",
      hint: init.hint ?? (init.field ? `Fix \`${init.field}\`${init.rule ? ` (${init.rule})` : ""} and retry.` : "Fix the request and retry."),
    });
    this.field = init.field;
    this.rule = init.rule;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...(this.field ? { field: this.field } : {}), ...(this.rule ? { rule: this.rule } : {}) };
  }
}

/** The caller is authenticated but not allowed to do this (e.g. another agent's wallet). */
export class PermissionDeniedError extends MasquesError {}
/** No or bad bearer token. */
export class UnauthenticatedError extends MasquesError {}
/** An unknown masque, session or account. */
export class NotFoundError extends MasquesError {}
/** The same idempotency key was used earlier for a different request. */
export class IdempotencyKeyReusedError extends MasquesError {}
/** The operation does not fit the current state (e.g. doff of a cancelled session). */
export class FailedPreconditionError extends MasquesError {}
/** Something already exists with different parameters. */
export class AlreadyExistsError extends MasquesError {}
/** No paid masque session is active in the session file (nothing to doff / report usage for). */
export class NoActiveSessionError extends MasquesError {}
/** Another masque is still donned (or its Don did not finish); doff or cancel it first. */
export class AlreadyDonnedError extends MasquesError {}
/** The daemon could not be reached or is shedding load; safe to retry later. */
export class UnavailableError extends MasquesError {}
/** The call did not finish within its deadline. It may or may not have been applied: retry with the same key. */
export class DeadlineExceededError extends MasquesError {}
/** The daemon failed internally. */
export class InternalError extends MasquesError {}

const CODE_NAMES: Record<number, string> = {
  [Code.Canceled]: "canceled",
  [Code.Unknown]: "unknown",
  [Code.InvalidArgument]: "invalid_argument",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.PermissionDenied]: "permission_denied",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "aborted",
  [Code.OutOfRange]: "out_of_range",
  [Code.Unimplemented]: "unimplemented",
  [Code.Internal]: "internal",
  [Code.Unavailable]: "unavailable",
  [Code.DataLoss]: "data_loss",
  [Code.Unauthenticated]: "unauthenticated",
};

export function codeName(code: Code): string {
  return CODE_NAMES[code] ?? `code_${code}`;
}

const INSUFFICIENT = /insufficient|exceeds_credits|exceeds credits|not enough funds/i;
const KEY_REUSED = /idempotency[_ ]key[_ ]reused|IDEMPOTENCY_KEY_(REUSED|MISMATCH|CONFLICT)/i;

/**
 * Turn anything a Connect call threw into a typed `MasquesError`. `facts` are the structured error
 * details the daemon attached (decoded by the client, see details.ts); the raw message is the
 * fallback when a detail is missing.
 */
export function toMasquesError(err: unknown, facts: ErrorFacts = {}, context: { endpoint?: string; account_owner?: string } = {}): MasquesError {
  if (err instanceof MasquesError) return err;
  const ce = ConnectError.from(err);
  const request_id = ce.metadata.get("x-request-id") ?? undefined;
  const raw = ce.rawMessage || codeName(ce.code);
  const reason = facts.reason ?? facts.metadata?.["reason"];
  const base = { grpc_code: ce.code, reason, request_id, cause: err };
  const serverHint = facts.hint;
  const where = context.endpoint ? ` at ${context.endpoint}` : "";
  // The account as the caller named it (`the wallet of agent "bob"`): the daemon only knows its id.
  const owner = context.account_owner;

  if ((reason && /INSUFFICIENT_FUNDS/i.test(reason)) || (ce.code === Code.FailedPrecondition && INSUFFICIENT.test(raw))) {
    return new InsufficientFundsError({
      ...base,
      detail: raw,
      ...(facts.available_micro !== undefined ? { available_micro: facts.available_micro } : {}),
      ...(facts.required_micro !== undefined ? { required_micro: facts.required_micro } : {}),
    });
  }
  if ((reason && KEY_REUSED.test(reason)) || KEY_REUSED.test(raw)) {
    return new IdempotencyKeyReusedError({
      ...base,
      kind: "user",
      message: `This idempotency key was already used for a different request: ${raw}`,
      hint:
        serverHint ??
        "Use a fresh idempotency key for a new operation; reuse a key only to retry the exact same request.",
    });
  }
  switch (ce.code) {
    case Code.InvalidArgument:
    case Code.OutOfRange: {
      const v = facts.field_violations?.[0];
      const field = v?.field ?? facts.metadata?.["field"];
      const rule = v?.description ?? facts.metadata?.["rule"];
      return new InvalidArgumentError({
        ...base,
        message: field ? `Invalid ${field}: ${rule ?? raw}` : `Invalid request: ${raw}`,
        ...(field ? { field } : {}),
        ...(rule ? { rule } : {}),
        ...(serverHint ? { hint: serverHint } : {}),
      });
    }
    case Code.PermissionDenied:
      return new PermissionDeniedError({
        ...base,
        kind: "user",
        message: owner && /account|wallet|earnings/i.test(raw) ? `Permission denied on ${owner}: ${raw}` : `Permission denied: ${raw}`,
        hint:
          serverHint ??
          "Your token does not allow this. Use a token for the right principal (an agent acts only on its own wallet; deposits need an admin token), e.g. mint one with `masques-ledger token`.",
      });
    case Code.Unauthenticated:
      return new UnauthenticatedError({
        ...base,
        kind: "user",
        message: `Not authenticated: ${raw}`,
        hint: serverHint ?? "Set MASQUES_TOKEN (or pass --token) to a valid bearer token; `masques-ledger token --help` shows how to mint one for local use.",
      });
    case Code.NotFound: {
      const isMasque = reason === "MASQUE_NOT_FOUND" || (!reason && /masque/i.test(raw));
      const isAccount = reason === "ACCOUNT_NOT_FOUND" || (!reason && /account/i.test(raw));
      return new NotFoundError({
        ...base,
        kind: "user",
        message: isMasque
          ? `Unknown masque: ${raw}`
          : isAccount
            ? owner
              ? `No such account: ${owner} does not exist (${raw})`
              : `No such account: ${raw}`
            : `Not found: ${raw}`,
        hint:
          serverHint ??
          (isMasque
            ? "Check the masque name: the daemon's catalog is the YAML files in its MASQUES_DIR (ListMasques / /list show what is installed)."
            : isAccount
              ? "The wallet does not exist yet: it is opened by the first deposit (`masques-ledger-client deposit <agent> <usd>` with an admin token) or by OpenAgentWallet."
              : "Check the id; `masques-ledger-client sessions` lists your sessions."),
      });
    }
    case Code.AlreadyExists:
      return new AlreadyExistsError({ ...base, kind: "user", message: `Already exists: ${raw}`, hint: serverHint ?? "Use a new id, or retry with exactly the same parameters." });
    case Code.FailedPrecondition:
      return new FailedPreconditionError({ ...base, kind: "user", message: raw, hint: serverHint ?? "Check the session's state with `masques-ledger-client sessions`." });
    case Code.DeadlineExceeded:
      return new DeadlineExceededError({
        ...base,
        kind: "outage",
        message: `The daemon${where} did not answer in time (${raw}).`,
        hint: "The operation may or may not have been applied. Retry the same command: it reuses its idempotency key, so nothing is charged twice.",
      });
    case Code.Unavailable:
    case Code.Aborted:
    case Code.Canceled:
    case Code.ResourceExhausted:
      return new UnavailableError({
        ...base,
        kind: "outage",
        message: `The ledger daemon${where} is unavailable (${raw}).`,
        hint: "Check that it is running (`masques-ledger serve`) and that MASQUES_ENDPOINT points at it, then retry; retries are safe and never charge twice.",
      });
    case Code.Unimplemented:
      return new InternalError({
        ...base,
        kind: "outage",
        message: `The daemon${where} does not implement this call (${raw}).`,
        hint: "Upgrade the daemon, or check that MASQUES_ENDPOINT and MASQUES_TRANSPORT point at a masques-ledger daemon.",
      });
    default:
      return new InternalError({
        ...base,
        kind: "outage",
        message: `The daemon${where} failed: ${raw}`,
        hint: `Retry later; if it persists report it${request_id ? ` with request id ${request_id}` : ""}.`,
      });
  }
}
