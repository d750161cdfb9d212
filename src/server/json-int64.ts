/**
 * Field checks on JSON requests before protobuf-es decodes them (issue 11: `"0x10"` deposited
 * 16 micro-USD; api-adversary: `-5`, `"18446744073709551616"`, `7` for a string, an unknown
 * enum name).
 *
 * protobuf-es reads a JSON string for an int64/uint64 field with `BigInt(text)`, which also
 * accepts hexadecimal, binary and octal prefixes, a leading `+` and surrounding whitespace. The
 * API promises exact canonical decimals, so before protobuf-es sees a parsed JSON request this
 * walks it along the request's descriptor and lists every field violation with its path:
 * - a 64-bit integer string must be `-?(0|[1-9][0-9]*)` (no sign for unsigned fields), a number
 *   a safe integer (a larger JSON number has already lost digits in JSON.parse);
 * - every integer must be within its type's range, every string field a JSON string, every
 *   nested message a JSON object and every repeated field a JSON array (protobuf-es refuses
 *   these too, but names only `Type.field`, not the path, and without a BadRequest);
 * - an enum name must be one of the enum's names (protobuf-es, ignoring unknown fields, drops an
 *   unknown name and the call runs as if the field were unset).
 *
 * Only fields of the request's own messages are walked; well-known types (google.protobuf.*)
 * are left to protobuf-es. Cost: one pass over the parsed JSON, JSON requests only.
 */
import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";
import type { Violation } from "../services/errors.js";

const SIGNED = /^-?(?:0|[1-9][0-9]*)$/;
const UNSIGNED = /^(?:0|[1-9][0-9]*)$/;

/** Inclusive range and proto type name of each integer scalar type. */
const INT_RANGE: Partial<Record<ScalarType, { min: bigint; max: bigint; name: string }>> = {
  [ScalarType.INT64]: { min: -(2n ** 63n), max: 2n ** 63n - 1n, name: "int64" },
  [ScalarType.SINT64]: { min: -(2n ** 63n), max: 2n ** 63n - 1n, name: "sint64" },
  [ScalarType.SFIXED64]: { min: -(2n ** 63n), max: 2n ** 63n - 1n, name: "sfixed64" },
  [ScalarType.UINT64]: { min: 0n, max: 2n ** 64n - 1n, name: "uint64" },
  [ScalarType.FIXED64]: { min: 0n, max: 2n ** 64n - 1n, name: "fixed64" },
  [ScalarType.INT32]: { min: -(2n ** 31n), max: 2n ** 31n - 1n, name: "int32" },
  [ScalarType.SINT32]: { min: -(2n ** 31n), max: 2n ** 31n - 1n, name: "sint32" },
  [ScalarType.SFIXED32]: { min: -(2n ** 31n), max: 2n ** 31n - 1n, name: "sfixed32" },
  [ScalarType.UINT32]: { min: 0n, max: 2n ** 32n - 1n, name: "uint32" },
  [ScalarType.FIXED32]: { min: 0n, max: 2n ** 32n - 1n, name: "fixed32" },
};

function is64(t: ScalarType): boolean {
  return (
    t === ScalarType.INT64 || t === ScalarType.SINT64 || t === ScalarType.SFIXED64 ||
    t === ScalarType.UINT64 || t === ScalarType.FIXED64
  );
}

const RULE = "must be a decimal integer string without sign prefix, leading zeros or spaces (e.g. \"25000000\")";

/**
 * One JSON scalar against its field's type: integers (64-bit as canonical decimal strings or
 * safe JSON integers, 32-bit as JSON integers or canonical strings) within the type's range,
 * strings as JSON strings. Other scalar types are left to protobuf-es.
 */
function checkScalar(t: ScalarType, value: unknown, path: string, out: Violation[]): void {
  if (t === ScalarType.STRING) {
    if (typeof value !== "string") out.push({ field: path, description: "must be a JSON string" });
    return;
  }
  const range = INT_RANGE[t];
  if (range === undefined) return;
  const wide = is64(t);
  let n: bigint;
  if (typeof value === "string") {
    if (!(range.min < 0n ? SIGNED : UNSIGNED).test(value)) {
      out.push({ field: path, description: wide ? RULE : `must be a ${range.name} integer` });
      return;
    }
    n = BigInt(value);
  } else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      out.push({ field: path, description: wide ? `${RULE}; JSON numbers must be integers below 2^53` : `must be a ${range.name} integer` });
      return;
    }
    n = BigInt(value);
  } else {
    out.push({ field: path, description: wide ? RULE : `must be a ${range.name} integer` });
    return;
  }
  if (n < range.min || n > range.max) {
    out.push({ field: path, description: `must be between ${range.min} and ${range.max} (${range.name})` });
  }
}

/**
 * An enum given by name must name one of its values: protobuf-es (with unknown fields ignored)
 * would otherwise drop an unknown name and the request would run as if the field were unset.
 * Numbers are left to protobuf-es and the handlers (open enums, checked per field).
 */
function checkEnum(e: DescEnum, value: unknown, path: string, out: Violation[]): void {
  if (typeof value === "number") return;
  if (typeof value === "string" && e.values.some((v) => v.name === value)) return;
  const names = e.values.map((v) => v.name);
  const shown = names.length <= 12 ? names.join(", ") : `${names.slice(0, 12).join(", ")}, ...`;
  out.push({ field: path, description: `must be one of ${shown} (or its number)` });
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
        if (!f.message.typeName.startsWith("google.protobuf.") && (typeof value !== "object" || Array.isArray(value))) {
          out.push({ field: path, description: "must be a JSON object" });
        } else walk(f.message, value, `${path}.`, out, depth + 1);
        break;
      case "list":
        if (!Array.isArray(value)) {
          out.push({ field: path, description: "must be a JSON array" });
          break;
        }
        value.forEach((v: unknown, i) => {
          if (f.listKind === "scalar") checkScalar(f.scalar, v, `${path}[${i}]`, out);
          else if (f.listKind === "enum") checkEnum(f.enum, v, `${path}[${i}]`, out);
          else if (f.listKind === "message") walk(f.message, v, `${path}[${i}].`, out, depth + 1);
        });
        break;
      case "map":
        if (typeof value !== "object" || Array.isArray(value)) {
          out.push({ field: path, description: "must be a JSON object" });
          break;
        }
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
          checkScalar(f.mapKey, k, `${path}[${JSON.stringify(k)}]`, out);
          if (f.mapKind === "scalar") checkScalar(f.scalar, v, `${path}[${JSON.stringify(k)}]`, out);
          else if (f.mapKind === "enum") checkEnum(f.enum, v, `${path}[${JSON.stringify(k)}]`, out);
          else if (f.mapKind === "message") walk(f.message, v, `${path}[${JSON.stringify(k)}].`, out, depth + 1);
        }
        break;
      case "enum":
        if (f.enum.typeName !== "google.protobuf.NullValue") checkEnum(f.enum, value, path, out);
        break;
    }
  }
}

/**
 * Every field of a parsed JSON request whose value protobuf-es would refuse without naming the
 * field path for a BadRequest (wrong JSON type, integer out of range) or accept wrongly (a 64-bit
 * integer that is not a canonical decimal, an unknown enum name), as field violations.
 */
export function jsonFieldViolations(desc: DescMessage, json: unknown): Violation[] {
  const out: Violation[] = [];
  walk(desc, json, "", out, 0);
  return out;
}
