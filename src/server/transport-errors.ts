/**
 * The last step every error takes before it leaves the daemon, on every transport:
 *
 * - it carries a `masques.ledger.v1.ErrorInfo` (common.proto: every error does), added with the
 *   status code's name as `reason` when the layer that raised it (authentication, transport
 *   limits, routing, decoding) did not add one;
 * - no request-derived text in it is longer than MASQUES_MAX_ECHO_CHARS: the message is cut at
 *   four times that, every string inside its details (ErrorInfo metadata, field violations, ...)
 *   at that. An unbounded echo made a 13 MB error from a 3.9 MB masque name, and over native
 *   gRPC it never arrived (grpc-message and grpc-status-details-bin are HTTP/2 headers, which
 *   clients cap at 8-16 KiB).
 *
 * Services keep building their errors with src/services/errors.ts; this module only completes
 * and bounds them, so it applies to errors from any layer without the layer knowing.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, FieldViolationSchema } from "../../clients/gen/masques/ledger/v1/common_pb.js";
import { boundEcho } from "./limits.js";

/** Code.InvalidArgument -> "INVALID_ARGUMENT" (the ErrorInfo reason of transport errors). */
export function reasonOf(code: Code): string {
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

function hasErrorInfo(err: ConnectError): boolean {
  for (const d of err.details) {
    if ("desc" in d ? d.desc.typeName === ErrorInfoSchema.typeName : d.type === ErrorInfoSchema.typeName) return true;
  }
  return false;
}

/** A transport-level error with its ErrorInfo (and a BadRequest when fields are named). */
export function transportError(
  code: Code,
  message: string,
  violations: readonly { field: string; description: string }[] = [],
  reason = reasonOf(code),
): ConnectError {
  const details: ConstructorParameters<typeof ConnectError>[3] = [
    { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, metadata: {} }) },
  ];
  if (violations.length > 0) {
    details.push({
      desc: BadRequestSchema,
      value: create(BadRequestSchema, { fieldViolations: violations.map((v) => create(FieldViolationSchema, v)) }),
    });
  }
  return new ConnectError(message, code, undefined, details);
}

const MAX_ITEMS = 64;

/** Bound every string reachable in a detail message (in place; returns whether one was cut). */
function boundStrings(value: unknown, max: number, depth = 0): boolean {
  if (depth > 8 || value === null || typeof value !== "object" || value instanceof Uint8Array) return false;
  let cut = false;
  const obj = value as Record<string, unknown>;
  if (Array.isArray(obj)) {
    if (obj.length > MAX_ITEMS) {
      obj.length = MAX_ITEMS;
      cut = true;
    }
    for (let i = 0; i < obj.length; i++) {
      const v: unknown = obj[i];
      if (typeof v === "string" && v.length > max) {
        obj[i] = boundEcho(v, max);
        cut = true;
      } else if (boundStrings(v, max, depth + 1)) cut = true;
    }
    return cut;
  }
  let n = 0;
  for (const key of Object.keys(obj)) {
    if (key.startsWith("$")) continue;
    if (++n > MAX_ITEMS * 4) {
      delete obj[key];
      cut = true;
      continue;
    }
    const v = obj[key];
    if (typeof v === "string" && v.length > max) {
      obj[key] = boundEcho(v, max);
      cut = true;
    } else if (key.length > max) {
      delete obj[key];
      obj[boundEcho(key, max)] = v;
      cut = true;
    } else if (boundStrings(v, max, depth + 1)) cut = true;
  }
  return cut;
}

/**
 * The error as it may leave the daemon: bounded (see module doc) and with an ErrorInfo.
 * Returns the same object when nothing had to change (the common case: no allocation).
 */
export function finalError(err: ConnectError, maxEchoChars: number): ConnectError {
  const maxMessage = maxEchoChars * 4;
  let changed = err.rawMessage.length > maxMessage;
  for (const d of err.details) {
    if (boundStrings("desc" in d ? d.value : d.debug, maxEchoChars)) changed = true;
  }
  const info = hasErrorInfo(err);
  if (!changed && info) return err;
  const details = [...err.details];
  if (!info) details.unshift({ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: reasonOf(err.code), metadata: {} }) });
  const out = new ConnectError(boundEcho(err.rawMessage, maxMessage), err.code, err.metadata, undefined, err.cause);
  out.details.push(...details);
  return out;
}
