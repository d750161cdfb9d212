/**
 * Protobuf binary decoding of request messages by generated code, for the native gRPC port's hot
 * requests (issue 20, docs/adr/0131-request-decoder.md): the mirror of src/server/binary-encoder.ts.
 *
 * protobuf-es v2's `fromBinary` compiles a reader per field, but per message it still walks a
 * generic `create()` (a loop over a property list), reads every tag as a fresh `[fieldNo,
 * wireType]` array, finds the field's reader in a Map, and makes a new BigInt for every 64-bit
 * value. A RecordUsageRequest of 500 events pays that 500 times. Here each message type gets one
 * generated function (`new Function`, built once from the descriptor, straight-line code): an
 * object literal with the zero values in protobuf-es's shape, then a `switch` on the whole tag
 * (field number and wire type) with the field's read inlined; 64-bit values below 2^14 come from
 * a table of shared BigInts (BigInts are immutable, so sharing is invisible).
 *
 * Contract: `decodeMessage(desc, bytes)` returns a message equal to `fromBinary(desc, bytes)`
 * (same fields, values, `$unknown` records, JS types; `bytes` fields and unknown-field data are
 * views of the input, as protobuf-es's are), or throws what `fromBinary` throws. The generated
 * code takes only the plain path: canonical-length varints, the wire type the field declares
 * (or packed / unpacked for repeated numbers), each read inside its enclosing message, valid
 * UTF-8. Anything else — malformed or truncated input, a wrong wire type, groups, a repeated
 * singular message field (a merge), nesting past 64, a non-UTF-8 string — and any message type
 * it does not plan (maps, delimited encoding, proto2 / editions files, google.protobuf wrapper
 * and Struct types, 64-bit fields as strings, closed enums) is handed to protobuf-es unchanged,
 * so the answer is protobuf-es's. tests/server/binary-decoder.test.ts compares the two on random
 * messages of every type of the API, with unknown fields, packed and unpacked numbers, default
 * values, 64-bit extremes, non-canonical and truncated encodings.
 */
import { isUtf8 } from "node:buffer";
import { fromBinary, ScalarType, type DescField, type DescMessage, type MessageShape } from "@bufbuild/protobuf";

/** Thrown inside the decoder for anything it leaves to protobuf-es (caught in decodeMessage). */
const UNSUPPORTED = Symbol("unsupported");

/** google.protobuf messages with no special local representation in protobuf-es. */
const PLAIN_WKT = new Set(["google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.Empty", "google.protobuf.FieldMask"]);

/** Deepest nesting decoded here (protobuf-es allows 100; deeper input goes to it). */
const MAX_DEPTH = 64;

/** Shared BigInts for 64-bit values below 2^14 (one- and two-byte varints): about 16k entries. */
const SMALL_BIGINT_LIMIT = 1 << 14;
const SMALL_BIGINTS: readonly bigint[] = Array.from({ length: SMALL_BIGINT_LIMIT }, (_, i) => BigInt(i));

/** Read state of one decode: the input, a Buffer view of it, the position. */
interface Cursor {
  /** The input as given (sub-arrays for `bytes` fields and unknown fields are taken from it). */
  readonly b: Uint8Array;
  /** The same memory as a Buffer (strings, fixed-width reads). */
  readonly s: Buffer;
  p: number;
}

/** Varint as an unsigned 32-bit number (protobuf-es `uint32()`: low 32 bits of at most 10 bytes). */
function u32(c: Cursor, end: number): number {
  const b = c.b;
  let p = c.p;
  let r = 0;
  for (let i = 0; i < 10; i++) {
    if (p >= end) throw UNSUPPORTED;
    const x = b[p++]!;
    if (i < 4) r |= (x & 0x7f) << (7 * i);
    else if (i === 4) r |= (x & 0x0f) << 28;
    if (x < 0x80) {
      c.p = p;
      return r >>> 0;
    }
  }
  throw UNSUPPORTED;
}

/** Varint as an unsigned 64-bit value, before the sign rules: a number below 2^49, else a bigint mod 2^64. */
function raw64(c: Cursor, end: number): number | bigint {
  const b = c.b;
  let p = c.p;
  let n = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    if (p >= end) throw UNSUPPORTED;
    const x = b[p++]!;
    n += (x & 0x7f) * scale;
    if (x < 0x80) {
      c.p = p;
      return n;
    }
    scale *= 128;
  }
  let v = BigInt(n);
  for (let shift = 49n; shift < 70n; shift += 7n) {
    if (p >= end) throw UNSUPPORTED;
    const x = b[p++]!;
    v |= BigInt(x & 0x7f) << shift;
    if (x < 0x80) {
      c.p = p;
      return BigInt.asUintN(64, v);
    }
  }
  throw UNSUPPORTED; // more than 10 bytes
}

function u64(c: Cursor, end: number): bigint {
  const r = raw64(c, end);
  if (typeof r === "bigint") return r;
  return r < SMALL_BIGINT_LIMIT ? SMALL_BIGINTS[r]! : BigInt(r);
}

function i64(c: Cursor, end: number): bigint {
  const r = raw64(c, end);
  if (typeof r === "bigint") return BigInt.asIntN(64, r);
  return r < SMALL_BIGINT_LIMIT ? SMALL_BIGINTS[r]! : BigInt(r);
}

function s64(c: Cursor, end: number): bigint {
  const r = raw64(c, end);
  if (typeof r === "bigint") return (r >> 1n) ^ -(r & 1n);
  const h = Math.floor(r / 2);
  if (r % 2 === 0) return h < SMALL_BIGINT_LIMIT ? SMALL_BIGINTS[h]! : BigInt(h);
  return -BigInt(h + 1);
}

function bool(c: Cursor, end: number): boolean {
  const r = raw64(c, end);
  return typeof r === "bigint" ? r !== 0n : r !== 0;
}

function fixedAt(c: Cursor, end: number, width: number): number {
  const p = c.p;
  if (p + width > end) throw UNSUPPORTED;
  c.p = p + width;
  return p;
}

/** Length-delimited payload: [start, end) of its bytes, inside the enclosing message. */
function delimited(c: Cursor, end: number): number {
  const len = u32(c, end);
  const e = c.p + len;
  if (e > end) throw UNSUPPORTED;
  return e;
}

const utf8Lenient = new TextDecoder("utf-8", { ignoreBOM: true });

/** A string field: ASCII straight from the bytes; other text checked as UTF-8 when the field asks (else U+FFFD, as TextDecoder). */
function str(c: Cursor, end: number, strict: boolean): string {
  const e = delimited(c, end);
  const start = c.p;
  const b = c.b;
  c.p = e;
  for (let i = start; i < e; i++) {
    if (b[i]! > 0x7f) {
      if (!strict) return utf8Lenient.decode(b.subarray(start, e));
      if (!isUtf8(b.subarray(start, e))) throw UNSUPPORTED; // protobuf-es names the error
      return c.s.toString("utf8", start, e);
    }
  }
  return c.s.toString("latin1", start, e);
}

function bytes(c: Cursor, end: number): Uint8Array {
  const e = delimited(c, end);
  const start = c.p;
  c.p = e;
  return c.b.subarray(start, e);
}

/** Tag of two to five bytes (protobuf-es refuses more, or a fifth byte above 0x0f). */
function tag(c: Cursor, end: number): number {
  const b = c.b;
  let p = c.p;
  let r = 0;
  for (let i = 0; i < 5; i++) {
    if (p >= end) throw UNSUPPORTED;
    const x = b[p++]!;
    if (i === 4) {
      if (x > 0x0f) throw UNSUPPORTED;
      r |= x << 28;
    } else r |= (x & 0x7f) << (7 * i);
    if (x < 0x80) {
      c.p = p;
      return r >>> 0;
    }
  }
  throw UNSUPPORTED;
}

/** An unknown field after its tag: skipped, returned as protobuf-es records it. Groups are left to protobuf-es. */
function unknown(c: Cursor, end: number, t: number): { no: number; wireType: number; data: Uint8Array } {
  const no = t >>> 3;
  const wireType = t & 7;
  if (no === 0) throw UNSUPPORTED;
  const start = c.p;
  switch (wireType) {
    case 0:
      raw64(c, end);
      break;
    case 1:
      fixedAt(c, end, 8);
      break;
    case 2:
      c.p = delimited(c, end);
      break;
    case 5:
      fixedAt(c, end, 4);
      break;
    default:
      throw UNSUPPORTED;
  }
  return { no, wireType, data: c.b.subarray(start, c.p) };
}

const HELPERS = { u32, u64, i64, s64, bool, fixedAt, delimited, str, bytes, tag, unknown, B: SMALL_BIGINTS };

/** How a value is read. */
const enum K {
  Int32 = 1, // int32 and enum
  Uint32,
  Sint32,
  Int64,
  Uint64,
  Sint64,
  Bool,
  Fixed32,
  Sfixed32,
  Float,
  Fixed64,
  Sfixed64,
  Double,
  String,
  Bytes,
  Message,
}

interface FieldPlan {
  readonly no: number;
  readonly localName: string;
  readonly kind: K;
  readonly repeated: boolean;
  readonly oneof: string | undefined;
  /** UTF-8 validation (protobuf-es `utf8Validation`: strict decoding). */
  readonly strict: boolean;
  /** Present in a zero message (implicit presence scalars and enums: their zero value). */
  readonly zero: "none" | "list" | "value";
  msg: MessagePlan | undefined;
}

interface MessagePlan {
  readonly id: number;
  readonly typeName: string;
  readonly fields: FieldPlan[];
  /** Members in declaration order, as `create()` lays out a zero message. */
  readonly members: ({ oneof: string } | { field: FieldPlan })[];
}

const plans = new WeakMap<DescMessage, MessagePlan | null>();
let nextPlanId = 0;

function kindOf(t: ScalarType): K {
  switch (t) {
    case ScalarType.INT32:
      return K.Int32;
    case ScalarType.UINT32:
      return K.Uint32;
    case ScalarType.SINT32:
      return K.Sint32;
    case ScalarType.INT64:
      return K.Int64;
    case ScalarType.UINT64:
      return K.Uint64;
    case ScalarType.SINT64:
      return K.Sint64;
    case ScalarType.BOOL:
      return K.Bool;
    case ScalarType.FIXED32:
      return K.Fixed32;
    case ScalarType.SFIXED32:
      return K.Sfixed32;
    case ScalarType.FLOAT:
      return K.Float;
    case ScalarType.FIXED64:
      return K.Fixed64;
    case ScalarType.SFIXED64:
      return K.Sfixed64;
    case ScalarType.DOUBLE:
      return K.Double;
    case ScalarType.STRING:
      return K.String;
    case ScalarType.BYTES:
      return K.Bytes;
  }
}

/** Wire type of a value kind (0 varint, 1 64-bit, 2 length-delimited, 5 32-bit). */
function wireTypeOf(k: K): number {
  switch (k) {
    case K.Fixed64:
    case K.Sfixed64:
    case K.Double:
      return 1;
    case K.String:
    case K.Bytes:
    case K.Message:
      return 2;
    case K.Fixed32:
    case K.Sfixed32:
    case K.Float:
      return 5;
    default:
      return 0;
  }
}

/** The plan of a message type, or null when protobuf-es must decode it (see the module doc). */
function planOf(desc: DescMessage): MessagePlan | null {
  const known = plans.get(desc);
  if (known !== undefined) return known;
  const supported = desc.file.edition === 999 /* EDITION_PROTO3 */ && (!desc.typeName.startsWith("google.protobuf.") || PLAIN_WKT.has(desc.typeName));
  if (!supported) {
    plans.set(desc, null);
    return null;
  }
  const plan: MessagePlan = { id: nextPlanId++, typeName: desc.typeName, fields: [], members: [] };
  plans.set(desc, plan); // before the fields: recursive types find this plan
  const byField = new Map<DescField, FieldPlan>();
  for (const f of desc.fields) {
    const fp = fieldPlan(f);
    if (fp === null) {
      plans.set(desc, null);
      return null;
    }
    plan.fields.push(fp);
    byField.set(f, fp);
  }
  for (const m of desc.members) plan.members.push(m.kind === "oneof" ? { oneof: m.localName } : { field: byField.get(m)! });
  return plan;
}

function fieldPlan(f: DescField): FieldPlan | null {
  const oneof = f.oneof?.localName;
  const base = { no: f.number, localName: f.localName, oneof, strict: f.utf8Validation };
  const implicit = f.presence === 2; /* IMPLICIT */
  switch (f.fieldKind) {
    case "map":
      return null;
    case "scalar":
      if (f.longAsString) return null;
      return { ...base, kind: kindOf(f.scalar), repeated: false, zero: implicit && !oneof ? "value" : "none", msg: undefined };
    case "enum":
      if (!f.enum.open || f.enum.values[0]?.number !== 0) return null;
      return { ...base, kind: K.Int32, repeated: false, zero: implicit && !oneof ? "value" : "none", msg: undefined };
    case "message": {
      if (f.delimitedEncoding) return null;
      const msg = planOf(f.message);
      if (msg === null) return null;
      return { ...base, kind: K.Message, repeated: false, zero: "none", msg };
    }
    case "list": {
      if (f.listKind === "message") {
        if (f.delimitedEncoding) return null;
        const msg = planOf(f.message);
        if (msg === null) return null;
        return { ...base, kind: K.Message, repeated: true, zero: "list", msg };
      }
      if (f.listKind === "enum") {
        if (!f.enum.open) return null;
        return { ...base, kind: K.Int32, repeated: true, zero: "list", msg: undefined };
      }
      if (f.longAsString) return null;
      return { ...base, kind: kindOf(f.scalar), repeated: true, zero: "list", msg: undefined };
    }
  }
}

/** Expression of the zero value protobuf-es's `create()` gives an implicit-presence field. */
function zeroCode(f: FieldPlan): string {
  switch (f.kind) {
    case K.Int64:
    case K.Uint64:
    case K.Sint64:
    case K.Fixed64:
    case K.Sfixed64:
      return "0n";
    case K.Bool:
      return "false";
    case K.String:
      return `""`;
    case K.Bytes:
      return "Z"; // create() shares one zero Uint8Array per field too
    default:
      return "0";
  }
}

/** Expression reading one value of kind `k` at c.p (the tag read already). */
function readCode(f: FieldPlan): string {
  switch (f.kind) {
    case K.Int32:
      return `((x = b[c.p]) < 128 ? (c.p++, x) : H.u32(c, end) | 0)`;
    case K.Uint32:
      return `((x = b[c.p]) < 128 ? (c.p++, x) : H.u32(c, end))`;
    case K.Sint32:
      return `((x = H.u32(c, end)) >>> 1) ^ -(x & 1)`;
    case K.Int64:
      return `((x = b[c.p]) < 128 ? (c.p++, H.B[x]) : H.i64(c, end))`;
    case K.Uint64:
      return `((x = b[c.p]) < 128 ? (c.p++, H.B[x]) : H.u64(c, end))`;
    case K.Sint64:
      return `H.s64(c, end)`;
    case K.Bool:
      return `((x = b[c.p]) < 128 ? (c.p++, x !== 0) : H.bool(c, end))`;
    case K.Fixed32:
      return `c.s.readUInt32LE(H.fixedAt(c, end, 4))`;
    case K.Sfixed32:
      return `c.s.readInt32LE(H.fixedAt(c, end, 4))`;
    case K.Float:
      return `c.s.readFloatLE(H.fixedAt(c, end, 4))`;
    case K.Fixed64:
      return `c.s.readBigUInt64LE(H.fixedAt(c, end, 8))`;
    case K.Sfixed64:
      return `c.s.readBigInt64LE(H.fixedAt(c, end, 8))`;
    case K.Double:
      return `c.s.readDoubleLE(H.fixedAt(c, end, 8))`;
    case K.String:
      return `H.str(c, end, ${f.strict})`;
    case K.Bytes:
      return `H.bytes(c, end)`;
    case K.Message:
      return `(e = H.delimited(c, end), D[${f.msg!.id}](c, e, depth + 1))`;
  }
}

/** Source of the decode function of one message type: (c, end, depth) => message, leaving c.p = end. */
function decodeSource(plan: MessagePlan): string {
  const props = [`$typeName: ${JSON.stringify(plan.typeName)}`];
  for (const m of plan.members) {
    if ("oneof" in m) props.push(`${JSON.stringify(m.oneof)}: { case: undefined }`);
    else if (m.field.zero === "list") props.push(`${JSON.stringify(m.field.localName)}: []`);
    else if (m.field.zero === "value") props.push(`${JSON.stringify(m.field.localName)}: ${zeroCode(m.field)}`);
  }
  const lines = [
    `if (depth > ${MAX_DEPTH}) throw U;`,
    `const b = c.b;`,
    `const m = { ${props.join(", ")} };`,
    `let t, x, e, u;`,
    `while (c.p < end) {`,
    `t = b[c.p]; if (t < 128) c.p++; else t = H.tag(c, end);`,
    `switch (t) {`,
  ];
  for (const f of plan.fields) {
    const name = JSON.stringify(f.localName);
    const wt = wireTypeOf(f.kind);
    const tagOf = (w: number) => f.no * 8 + w;
    if (f.repeated) {
      lines.push(`case ${tagOf(wt)}: m[${name}].push(${readCode(f)}); break;`);
      if (wt !== 2) {
        // packed: a run of values inside one length-delimited record
        lines.push(`case ${tagOf(2)}: { const pe = H.delimited(c, end); const a = m[${name}]; { const end = pe; while (c.p < end) a.push(${readCode(f)}); if (c.p !== end) throw U; } break; }`);
      }
    } else if (f.oneof !== undefined) {
      const oneof = JSON.stringify(f.oneof);
      const merge = f.kind === K.Message ? `if (m[${oneof}].case === ${name}) throw U; ` : "";
      lines.push(`case ${tagOf(wt)}: ${merge}m[${oneof}] = { case: ${name}, value: ${readCode(f)} }; break;`);
    } else {
      const merge = f.kind === K.Message ? `if (m[${name}] !== undefined) throw U; ` : "";
      lines.push(`case ${tagOf(wt)}: ${merge}m[${name}] = ${readCode(f)}; break;`);
    }
  }
  // A known field number with another wire type: protobuf-es reads it anyway (its own way).
  const knownNumbers = [...new Set(plan.fields.map((f) => f.no))];
  const knownCheck = knownNumbers.length > 0 ? `switch (t >>> 3) { ${knownNumbers.map((n) => `case ${n}:`).join(" ")} throw U; } ` : "";
  lines.push(`default: ${knownCheck}(u === undefined ? (u = []) : u).push(H.unknown(c, end, t));`);
  lines.push(`}`, `}`);
  // A value read past the end of its message (protobuf-es reads on, into the enclosing one).
  lines.push(`if (c.p !== end) throw U;`);
  lines.push(`if (u !== undefined) m.$unknown = u;`);
  lines.push(`return m;`);
  return lines.join("\n");
}

type DecodeFn = (c: Cursor, end: number, depth: number) => unknown;
/** Generated functions by plan id (late-bound, so recursive types resolve). */
const D: DecodeFn[] = [];
const ZERO_BYTES = new Uint8Array(0);

/**
 * Generate the plan's function (and those of the messages it contains). The source is built only
 * from descriptor data (field names as JSON string literals, numbers), never from input bytes.
 */
function generate(plan: MessagePlan): void {
  if (D[plan.id] !== undefined) return;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- see the function's doc
  const make = new Function("H", "U", "D", "Z", `return function decode_${plan.typeName.replace(/\W/g, "_")}(c, end, depth) {\n${decodeSource(plan)}\n};`) as (
    h: typeof HELPERS,
    u: symbol,
    d: DecodeFn[],
    z: Uint8Array,
  ) => DecodeFn;
  D[plan.id] = make(HELPERS, UNSUPPORTED, D, ZERO_BYTES);
  for (const f of plan.fields) if (f.msg) generate(f.msg);
}

function cursorOf(bytes: Uint8Array): Cursor {
  const s = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { b: bytes, s, p: 0 };
}

/**
 * The generated decoder's result, or undefined where it hands the input to protobuf-es (a type
 * it does not plan, or input off its plain path). For tests and decodeMessage.
 */
export function decodeWithoutProtobufEs<Desc extends DescMessage>(desc: Desc, bytes: Uint8Array): MessageShape<Desc> | undefined {
  const plan = planOf(desc);
  if (plan === null) return undefined;
  if (D[plan.id] === undefined) generate(plan);
  try {
    return D[plan.id]!(cursorOf(bytes), bytes.byteLength, 0) as MessageShape<Desc>;
  } catch (err) {
    if (err === UNSUPPORTED) return undefined;
    throw err;
  }
}

/**
 * Decode protobuf binary `bytes` as a message of type `desc`: a message equal to
 * `fromBinary(desc, bytes)`'s. Throws what protobuf-es throws for input it refuses (such input is
 * handed to it).
 */
export function decodeMessage<Desc extends DescMessage>(desc: Desc, bytes: Uint8Array): MessageShape<Desc> {
  return decodeWithoutProtobufEs(desc, bytes) ?? fromBinary(desc, bytes);
}

/** A deserializer for one message type (grpc-js `requestDeserialize`), generated once here. */
export function messageDecoder<Desc extends DescMessage>(desc: Desc): (bytes: Uint8Array) => MessageShape<Desc> {
  const plan = planOf(desc);
  if (plan) generate(plan);
  return (bytes) => decodeMessage(desc, bytes);
}

/** Whether `desc` is decoded here (on the plain path) rather than handed to protobuf-es. */
export function decodedWithoutProtobufEs(desc: DescMessage): boolean {
  return planOf(desc) !== null;
}
