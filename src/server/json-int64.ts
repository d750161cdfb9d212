/**
 * Strict 64-bit integers in JSON requests (issue 11: `"0x10"` deposited 16 micro-USD).
 *
 * protobuf-es reads a JSON string for an int64/uint64 field with `BigInt(text)`, which also
 * accepts hexadecimal, binary and octal prefixes, a leading `+` and surrounding whitespace. The
 * API promises exact canonical decimals, so before protobuf-es sees a parsed JSON request this
 * walks it along the request's descriptor and lists every 64-bit integer that is not one:
 * a string must be `-?(0|[1-9][0-9]*)` (no sign for unsigned fields), a number must be a safe
 * integer (a larger JSON number has already lost digits in JSON.parse). Values outside the
 * field's range are left to protobuf-es, which refuses them.
 *
 * Only fields of the request's own messages are walked; well-known types (google.protobuf.*)
 * are left to protobuf-es. Cost: one pass over the parsed JSON, JSON requests only.
 */
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import type { Violation } from "../services/errors.js";

const SIGNED = /^-?(?:0|[1-9][0-9]*)$/;
const UNSIGNED = /^(?:0|[1-9][0-9]*)$/;

function is64(t: ScalarType): boolean {
  return (
    t === ScalarType.INT64 || t === ScalarType.SINT64 || t === ScalarType.SFIXED64 ||
    t === ScalarType.UINT64 || t === ScalarType.FIXED64
  );
}

function isUnsigned(t: ScalarType): boolean {
  return t === ScalarType.UINT64 || t === ScalarType.FIXED64;
}

const RULE = "must be a decimal integer string without sign prefix, leading zeros or spaces (e.g. \"25000000\")";

function checkScalar(t: ScalarType, value: unknown, path: string, out: Violation[]): void {
  if (!is64(t)) return;
  if (typeof value === "string") {
    if (!(isUnsigned(t) ? UNSIGNED : SIGNED).test(value)) out.push({ field: path, description: RULE });
  } else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      out.push({ field: path, description: `${RULE}; JSON numbers must be integers below 2^53` });
    }
  }
}

function jsonValueOf(obj: Record<string, unknown>, f: DescField): unknown {
  return Object.prototype.hasOwnProperty.call(obj, f.jsonName) ? obj[f.jsonName] : obj[f.name];
}

function walk(desc: DescMessage, json: unknown, prefix: string, out: Violation[], depth: number): void {
  if (depth > 64 || json === null || typeof json !== "object" || Array.isArray(json)) return;
  if (desc.typeName.startsWith("google.protobuf.")) return;
  const obj = json as Record<string, unknown>;
  for (const f of desc.fields) {
    const value = jsonValueOf(obj, f);
    if (value === undefined || value === null) continue;
    const path = prefix + f.name;
    switch (f.fieldKind) {
      case "scalar":
        checkScalar(f.scalar, value, path, out);
        break;
      case "message":
        walk(f.message, value, `${path}.`, out, depth + 1);
        break;
      case "list":
        if (!Array.isArray(value)) break;
        value.forEach((v: unknown, i) => {
          if (f.listKind === "scalar") checkScalar(f.scalar, v, `${path}[${i}]`, out);
          else if (f.listKind === "message") walk(f.message, v, `${path}[${i}].`, out, depth + 1);
        });
        break;
      case "map":
        if (typeof value !== "object" || Array.isArray(value)) break;
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
          checkScalar(f.mapKey, k, `${path}[${JSON.stringify(k)}]`, out);
          if (f.mapKind === "scalar") checkScalar(f.scalar, v, `${path}[${JSON.stringify(k)}]`, out);
          else if (f.mapKind === "message") walk(f.message, v, `${path}[${JSON.stringify(k)}].`, out, depth + 1);
        }
        break;
      case "enum":
        break;
    }
  }
}

/** Every 64-bit integer field of a parsed JSON request that is not a canonical decimal. */
export function nonCanonicalInt64(desc: DescMessage, json: unknown): Violation[] {
  const out: Violation[] = [];
  walk(desc, json, "", out, 0);
  return out;
}
