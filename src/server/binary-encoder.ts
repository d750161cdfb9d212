/**
 * Protobuf binary encoding of reply messages in one pass over a pre-sized Buffer, for the native
 * gRPC port's hot replies (issue 20, docs/adr/0128-reply-encoding-and-slim-sessions.md).
 *
 * protobuf-es v2 (`toBinary`) already compiles a writer per message type, but it writes through
 * a growable BinaryWriter: every nested message (a Session carries four Timestamps and a Usage)
 * forks and joins a chunk list, every string goes through TextEncoder into its own array, 64-bit
 * integers are split by a generic routine, and the result is concatenated and then copied into
 * the Buffer grpc-js wants. Here each message type gets two generated functions (`new Function`,
 * built once from the descriptor: straight-line code per field with constant property names):
 * one measures the message (nested lengths and string byte lengths remembered in pre-order), the
 * other writes it once into `Buffer.allocUnsafe(size)`. bench/replies.ts measures the difference
 * (a Don reply: about half the CPU of create + toBinary; a 500-result RecordUsage reply: a third).
 *
 * Contract: `encodeMessage(desc, m)` returns exactly the bytes `toBinary(desc, create(desc, m))`
 * returns, for a message or an init shape (fields left out are their zero value). Anything this
 * encoder does not handle — map fields, group (delimited) encoding, proto2 / editions files,
 * google.protobuf wrapper/Struct types, a value of the wrong JS type, a message of another type —
 * is handed to protobuf-es unchanged, so its result (or its error) is exactly protobuf-es's.
 * tests/server/binary-encoder.test.ts compares the bytes with toBinary for every message type of
 * the API on random values.
 */
import { create, isMessage, ScalarType, toBinary, type DescField, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";

/** How a value is written (the scalar types of protobuf, plus a nested message). */
const enum K {
  Int32 = 1, // int32 and enum: varint, negative values sign-extended to 10 bytes
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

/** Shape of a field on the wire. */
const enum Shape {
  Single = 1,
  Repeated, // one tag per element (unpacked scalars, strings, bytes, messages)
  Packed, // one length-delimited run of the elements
}

interface FieldPlan {
  readonly localName: string;
  /** The field's tag bytes (field number and wire type, as a varint). */
  readonly tag: Uint8Array;
  readonly kind: K;
  readonly shape: Shape;
  /** Local name of the oneof the field belongs to (written whenever selected, even zero). */
  readonly oneof: string | undefined;
  /** Explicit presence (proto3 `optional`, message fields): written whenever set, even zero. */
  readonly explicit: boolean;
  /** Nested message plan (kind Message). Filled after construction (recursive types). */
  msg: MessagePlan | undefined;
}

interface MessagePlan {
  /** Index of its generated functions in S and W. */
  readonly id: number;
  readonly typeName: string;
  readonly fields: FieldPlan[];
}

/** Thrown inside the encoder for anything it leaves to protobuf-es (caught in encodeMessage). */
const UNSUPPORTED = Symbol("unsupported");

/** google.protobuf messages with no special local representation in protobuf-es. */
const PLAIN_WKT = new Set(["google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.Empty", "google.protobuf.FieldMask"]);

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

function tagBytes(fieldNo: number, wireType: number): Uint8Array {
  let v = fieldNo * 8 + wireType;
  const out: number[] = [];
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/** The plan of a message type, or null when protobuf-es must encode it (see the module doc). */
function planOf(desc: DescMessage): MessagePlan | null {
  const known = plans.get(desc);
  if (known !== undefined) return known;
  const supported = desc.file.edition === 999 /* EDITION_PROTO3 */ && (!desc.typeName.startsWith("google.protobuf.") || PLAIN_WKT.has(desc.typeName));
  if (!supported) {
    plans.set(desc, null);
    return null;
  }
  const plan: MessagePlan = { id: nextPlanId++, typeName: desc.typeName, fields: [] };
  plans.set(desc, plan); // before the fields: recursive types find this plan
  const sorted = desc.fields.concat().sort((a, b) => a.number - b.number);
  for (const f of sorted) {
    const fp = fieldPlan(f);
    if (fp === null) {
      plans.set(desc, null);
      return null;
    }
    plan.fields.push(fp);
  }
  return plan;
}

function fieldPlan(f: DescField): FieldPlan | null {
  const base = { localName: f.localName, oneof: f.oneof?.localName, explicit: f.presence !== 2 /* IMPLICIT */ };
  switch (f.fieldKind) {
    case "map":
      return null;
    case "scalar":
    case "enum": {
      const kind = f.fieldKind === "enum" ? K.Int32 : kindOf(f.scalar);
      if (f.fieldKind === "scalar" && f.longAsString) return null;
      if (f.fieldKind === "enum" && f.enum.values[0]?.number !== 0) return null;
      return { ...base, kind, shape: Shape.Single, tag: tagBytes(f.number, wireTypeOf(kind)), msg: undefined };
    }
    case "message": {
      if (f.delimitedEncoding) return null;
      const msg = planOf(f.message);
      if (msg === null) return null;
      return { ...base, kind: K.Message, shape: Shape.Single, tag: tagBytes(f.number, 2), msg };
    }
    case "list": {
      if (f.listKind === "message") {
        if (f.delimitedEncoding) return null;
        const msg = planOf(f.message);
        if (msg === null) return null;
        return { ...base, kind: K.Message, shape: Shape.Repeated, tag: tagBytes(f.number, 2), msg };
      }
      const kind = f.listKind === "enum" ? K.Int32 : kindOf(f.scalar);
      if (f.listKind === "scalar" && f.longAsString) return null;
      if (f.packed) return { ...base, kind, shape: Shape.Packed, tag: tagBytes(f.number, 2), msg: undefined };
      return { ...base, kind, shape: Shape.Repeated, tag: tagBytes(f.number, wireTypeOf(kind)), msg: undefined };
    }
  }
}

/** Per-encode scratch: lengths measured in the size pass, read back in order by the write pass. */
interface Scratch {
  L: number[];
  at: number;
}

function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  if (n < 0x800000000) return 5;
  if (n < 0x40000000000) return 6;
  if (n < 0x2000000000000) return 7;
  return 8; // < 2^56 (callers pass at most 2^53)
}

function varint64Size(v: bigint): number {
  if (v <= 0x1fffffffffffffn) return varintSize(Number(v));
  let n = 1;
  while (v > 0x7fn) {
    v >>= 7n;
    n++;
  }
  return n;
}

/** Non-negative integer below 2^53. */
function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80; // ToInt32 is modular: the low 7 bits are exact below 2^53
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

function writeVarint64(buf: Buffer, pos: number, v: bigint): number {
  if (v <= 0x1fffffffffffffn) return writeVarint(buf, pos, Number(v));
  while (v > 0x7fn) {
    buf[pos++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  buf[pos++] = Number(v);
  return pos;
}

const UINT64_MAX = 0xffffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;
const INT64_MAX = 0x7fffffffffffffffn;

function zigzag64(v: bigint): bigint {
  return v >= 0n ? v << 1n : (-v << 1n) - 1n;
}

/** UTF-8 byte length of a JS string, lone surrogates counted as U+FFFD (3 bytes) like TextEncoder. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

const HELPERS = {
  vs: varintSize,
  vs64: varint64Size,
  wv: writeVarint,
  wv64: writeVarint64,
  zz: zigzag64,
  u8: utf8Length,
};

/** Statement checking `v` (the field's value) and adding its size without the tag to `n`. */
function sizeCode(f: FieldPlan): string {
  switch (f.kind) {
    case K.Int32:
      return `if (typeof v !== "number" || (v | 0) !== v) throw U; n += v >= 0 ? H.vs(v) : 10;`;
    case K.Uint32:
      return `if (typeof v !== "number" || (v >>> 0) !== v) throw U; n += H.vs(v);`;
    case K.Sint32:
      return `if (typeof v !== "number" || (v | 0) !== v) throw U; n += H.vs(v >= 0 ? v * 2 : -v * 2 - 1);`;
    case K.Int64:
      return `if (typeof v !== "bigint" || v < ${INT64_MIN}n || v > ${INT64_MAX}n) throw U; n += v >= 0n ? H.vs64(v) : 10;`;
    case K.Uint64:
      return `if (typeof v !== "bigint" || v < 0n || v > ${UINT64_MAX}n) throw U; n += H.vs64(v);`;
    case K.Sint64:
      return `if (typeof v !== "bigint" || v < ${INT64_MIN}n || v > ${INT64_MAX}n) throw U; n += H.vs64(H.zz(v));`;
    case K.Bool:
      return `if (typeof v !== "boolean") throw U; n += 1;`;
    case K.Fixed32:
      return `if (typeof v !== "number" || (v >>> 0) !== v) throw U; n += 4;`;
    case K.Sfixed32:
      return `if (typeof v !== "number" || (v | 0) !== v) throw U; n += 4;`;
    case K.Float:
      return `if (typeof v !== "number") throw U; n += 4;`;
    case K.Fixed64:
      return `if (typeof v !== "bigint" || v < 0n || v > ${UINT64_MAX}n) throw U; n += 8;`;
    case K.Sfixed64:
      return `if (typeof v !== "bigint" || v < ${INT64_MIN}n || v > ${INT64_MAX}n) throw U; n += 8;`;
    case K.Double:
      return `if (typeof v !== "number") throw U; n += 8;`;
    case K.String:
      return `if (typeof v !== "string") throw U; l = H.u8(v); sc.L.push(l); n += H.vs(l) + l;`;
    case K.Bytes:
      return `if (!(v instanceof Uint8Array)) throw U; n += H.vs(v.byteLength) + v.byteLength;`;
    case K.Message:
      return `s = sc.L.length; sc.L.push(0); l = S[${f.msg!.id}](v, sc); sc.L[s] = l; n += H.vs(l) + l;`;
  }
}

/** Statement writing `v` without its tag at `pos` (checked by sizeCode already). */
function writeCode(f: FieldPlan): string {
  switch (f.kind) {
    case K.Int32:
      return `pos = v >= 0 ? H.wv(buf, pos, v) : H.wv64(buf, pos, BigInt.asUintN(64, BigInt(v)));`;
    case K.Uint32:
      return `pos = H.wv(buf, pos, v);`;
    case K.Sint32:
      return `pos = H.wv(buf, pos, v >= 0 ? v * 2 : -v * 2 - 1);`;
    case K.Int64:
      return `pos = H.wv64(buf, pos, v >= 0n ? v : BigInt.asUintN(64, v));`;
    case K.Uint64:
      return `pos = H.wv64(buf, pos, v);`;
    case K.Sint64:
      return `pos = H.wv64(buf, pos, H.zz(v));`;
    case K.Bool:
      return `buf[pos++] = v ? 1 : 0;`;
    case K.Fixed32:
      return `pos = buf.writeUInt32LE(v, pos);`;
    case K.Sfixed32:
      return `pos = buf.writeInt32LE(v, pos);`;
    case K.Float:
      return `pos = buf.writeFloatLE(v, pos);`;
    case K.Fixed64:
      return `pos = buf.writeBigUInt64LE(v, pos);`;
    case K.Sfixed64:
      return `pos = buf.writeBigInt64LE(v, pos);`;
    case K.Double:
      return `pos = buf.writeDoubleLE(v, pos);`;
    case K.String:
      return `l = sc.L[sc.at++]; pos = H.wv(buf, pos, l); if (l === v.length) { for (let i = 0; i < l; i++) buf[pos + i] = v.charCodeAt(i); pos += l; } else pos += buf.write(v, pos, l, "utf8");`;
    case K.Bytes:
      return `pos = H.wv(buf, pos, v.byteLength); buf.set(v, pos); pos += v.byteLength;`;
    case K.Message:
      return `l = sc.L[sc.at++]; pos = H.wv(buf, pos, l); pos = W[${f.msg!.id}](v, buf, pos, sc);`;
  }
}

/** Condition under which a singular field's value `v` is written (protobuf-es's presence rules). */
function presentCode(f: FieldPlan): string {
  if (f.oneof !== undefined || f.explicit) return "v !== undefined";
  switch (f.kind) {
    case K.Bool:
      return `v !== undefined && v !== false`;
    case K.String:
      return `v !== undefined && v !== ""`;
    case K.Bytes:
      return `v !== undefined && !(v instanceof Uint8Array && v.byteLength === 0)`;
    case K.Float:
    case K.Double:
      return `v !== undefined && !Object.is(v, 0)`;
    case K.Int64:
    case K.Uint64:
    case K.Sint64:
    case K.Fixed64:
    case K.Sfixed64:
      return `v !== undefined && (typeof v === "bigint" ? v !== 0n : v != 0)`;
    default:
      return `v !== undefined && (typeof v === "number" ? v !== 0 : v != 0)`;
  }
}

function tagCode(f: FieldPlan): string {
  return Array.from(f.tag, (b) => `buf[pos++] = ${b};`).join(" ");
}

function loadCode(f: FieldPlan): string {
  if (f.oneof === undefined) return `v = m[${JSON.stringify(f.localName)}];`;
  return `o = m[${JSON.stringify(f.oneof)}]; v = o !== undefined && o !== null && o.case === ${JSON.stringify(f.localName)} ? o.value : undefined;`;
}

/** Source of the size function of one message type: (m, sc) => bytes, pushing lengths to sc.L. */
function sizeSource(plan: MessagePlan): string {
  const lines = [
    `if (typeof m !== "object" || m === null) throw U;`,
    `const t = m.$typeName; if (t !== undefined && t !== ${JSON.stringify(plan.typeName)}) throw U;`,
    `let n = 0, v, o, l, s, a, b;`,
  ];
  for (const f of plan.fields) {
    const T = f.tag.length;
    if (f.shape === Shape.Single) {
      lines.push(`${loadCode(f)} if (${presentCode(f)}) { n += ${T}; ${sizeCode(f)} }`);
    } else {
      lines.push(`a = m[${JSON.stringify(f.localName)}]; if (a !== undefined) { if (!Array.isArray(a)) throw U;`);
      if (f.shape === Shape.Repeated) lines.push(`for (let i = 0; i < a.length; i++) { v = a[i]; n += ${T}; ${sizeCode(f)} } }`);
      else lines.push(`if (a.length > 0) { s = sc.L.length; sc.L.push(0); b = n; for (let i = 0; i < a.length; i++) { v = a[i]; ${sizeCode(f)} } b = n - b; sc.L[s] = b; n += ${T} + H.vs(b); } }`);
    }
  }
  lines.push(`a = m.$unknown; if (a !== undefined) { if (!Array.isArray(a)) throw U; for (let i = 0; i < a.length; i++) { v = a[i]; n += H.vs(v.no * 8 + v.wireType) + v.data.byteLength; } }`);
  lines.push(`return n;`);
  return lines.join("\n");
}

/** Source of the write function of one message type: (m, buf, pos, sc) => end position. */
function writeSource(plan: MessagePlan): string {
  const lines = [`let v, o, l, a;`];
  for (const f of plan.fields) {
    if (f.shape === Shape.Single) {
      lines.push(`${loadCode(f)} if (${presentCode(f)}) { ${tagCode(f)} ${writeCode(f)} }`);
    } else if (f.shape === Shape.Repeated) {
      lines.push(`a = m[${JSON.stringify(f.localName)}]; if (a !== undefined) for (let i = 0; i < a.length; i++) { v = a[i]; ${tagCode(f)} ${writeCode(f)} }`);
    } else {
      lines.push(`a = m[${JSON.stringify(f.localName)}]; if (a !== undefined && a.length > 0) { ${tagCode(f)} pos = H.wv(buf, pos, sc.L[sc.at++]); for (let i = 0; i < a.length; i++) { v = a[i]; ${writeCode(f)} } }`);
  }
  }
  lines.push(`a = m.$unknown; if (a !== undefined) for (let i = 0; i < a.length; i++) { v = a[i]; pos = H.wv(buf, pos, v.no * 8 + v.wireType); buf.set(v.data, pos); pos += v.data.byteLength; }`);
  lines.push(`return pos;`);
  return lines.join("\n");
}

type SizeFn = (m: unknown, sc: Scratch) => number;
type WriteFn = (m: unknown, buf: Buffer, pos: number, sc: Scratch) => number;
/** Generated functions by plan id (late-bound, so recursive types resolve). */
const S: SizeFn[] = [];
const W: WriteFn[] = [];

/**
 * Generate the plan's two functions (and those of the messages it contains): straight-line code
 * per field, constant property names, no descriptor walk per call. The source is built only from
 * descriptor data (field names as JSON string literals, numbers), never from message values.
 */
function generate(plan: MessagePlan): void {
  if (S[plan.id] !== undefined) return;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- see the function's doc
  const make = (params: string, body: string) => new Function("H", "U", "S", "W", `return function (${params}) {\n${body}\n};`) as (h: typeof HELPERS, u: symbol, s: SizeFn[], w: WriteFn[]) => unknown;
  S[plan.id] = make("m, sc", sizeSource(plan))(HELPERS, UNSUPPORTED, S, W) as SizeFn;
  W[plan.id] = make("m, buf, pos, sc", writeSource(plan))(HELPERS, UNSUPPORTED, S, W) as WriteFn;
  for (const f of plan.fields) if (f.msg) generate(f.msg);
}

function fallback(desc: DescMessage, m: unknown): Buffer {
  // A message (of this type or another: toBinary refuses the latter) goes to protobuf-es as it is.
  const msg = isMessage(m) ? m : create(desc, m as MessageInitShape<DescMessage>);
  const bytes = toBinary(desc, msg);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Encode `m` (a message of type `desc` or an init shape of it) to protobuf binary: the same bytes
 * as `toBinary(desc, create(desc, m))`, in a Buffer. Throws what protobuf-es throws for values it
 * refuses (they are handed to it).
 */
export function encodeMessage(desc: DescMessage, m: MessageShape<DescMessage> | Record<string, unknown>): Buffer {
  const plan = planOf(desc);
  if (plan === null) return fallback(desc, m);
  if (S[plan.id] === undefined) generate(plan);
  const sc: Scratch = { L: [], at: 0 };
  let size: number;
  try {
    size = S[plan.id]!(m, sc);
  } catch (err) {
    if (err === UNSUPPORTED) return fallback(desc, m);
    throw err;
  }
  const buf = Buffer.allocUnsafe(size);
  const end = W[plan.id]!(m, buf, 0, sc);
  if (end !== size) throw new Error(`binary-encoder: ${plan.typeName} wrote ${end} bytes, measured ${size}`);
  return buf;
}

/** A serializer for one message type (grpc-js `responseSerialize`). */
export function messageEncoder(desc: DescMessage): (m: MessageShape<DescMessage> | Record<string, unknown>) => Buffer {
  const plan = planOf(desc); // compile once, at registration
  if (plan) generate(plan);
  return (m) => encodeMessage(desc, m);
}

/** Whether `desc` is encoded here rather than handed to protobuf-es (tests check the hot replies). */
export function encodedWithoutProtobufEs(desc: DescMessage): boolean {
  return planOf(desc) !== null;
}
