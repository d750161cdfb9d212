/**
 * Protobuf binary encoding of reply messages in one pass over a pre-sized Buffer, for the native
 * gRPC port's hot replies (issue 20, docs/adr/0128-reply-encoding-and-slim-sessions.md).
 *
 * protobuf-es v2 (`toBinary`) already compiles a writer per message type, but it writes through
 * a growable BinaryWriter: every nested message (a Session carries four Timestamps and a Usage)
 * forks and joins a chunk list, every string goes through TextEncoder into its own array, 64-bit
 * integers are split by a generic routine, and the result is concatenated and then copied into
 * the Buffer grpc-js wants. Here a message is measured first (nested lengths and string byte
 * lengths remembered in pre-order), then written once into `Buffer.allocUnsafe(size)`.
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

type AnyMsg = Record<string, unknown>;

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
  readonly typeName: string;
  readonly fields: FieldPlan[];
}

/** Thrown inside the encoder for anything it leaves to protobuf-es (caught in encodeMessage). */
const UNSUPPORTED = Symbol("unsupported");

/** google.protobuf messages with no special local representation in protobuf-es. */
const PLAIN_WKT = new Set(["google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.Empty", "google.protobuf.FieldMask"]);

const plans = new WeakMap<DescMessage, MessagePlan | null>();

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
  const plan: MessagePlan = { typeName: desc.typeName, fields: [] };
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
  lens: number[];
  at: number;
}

const TWO_POW_32 = 4294967296;

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

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const UINT64_MAX = 0xffffffffffffffffn;
const INT64_MIN = -0x8000000000000000n;
const INT64_MAX = 0x7fffffffffffffffn;

function int32(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) throw UNSUPPORTED;
  return v;
}
function uint32(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= TWO_POW_32) throw UNSUPPORTED;
  return v;
}
function int64(v: unknown): bigint {
  if (typeof v !== "bigint" || v < INT64_MIN || v > INT64_MAX) throw UNSUPPORTED;
  return v;
}
function uint64(v: unknown): bigint {
  if (typeof v !== "bigint" || v < 0n || v > UINT64_MAX) throw UNSUPPORTED;
  return v;
}
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

/** Size of one value without its tag (messages and strings: their length prefix included). */
function valueSize(f: FieldPlan, v: unknown, sc: Scratch): number {
  switch (f.kind) {
    case K.Int32: {
      const x = int32(v);
      return x >= 0 ? varintSize(x) : 10;
    }
    case K.Uint32:
      return varintSize(uint32(v));
    case K.Sint32: {
      const x = int32(v);
      return varintSize(x >= 0 ? x * 2 : -x * 2 - 1);
    }
    case K.Int64: {
      const x = int64(v);
      return x >= 0n ? varint64Size(x) : 10;
    }
    case K.Uint64:
      return varint64Size(uint64(v));
    case K.Sint64:
      return varint64Size(zigzag64(int64(v)));
    case K.Bool:
      if (typeof v !== "boolean") throw UNSUPPORTED;
      return 1;
    case K.Fixed32:
      uint32(v);
      return 4;
    case K.Sfixed32:
      int32(v);
      return 4;
    case K.Float:
      if (typeof v !== "number") throw UNSUPPORTED;
      return 4;
    case K.Fixed64:
      uint64(v);
      return 8;
    case K.Sfixed64:
      int64(v);
      return 8;
    case K.Double:
      if (typeof v !== "number") throw UNSUPPORTED;
      return 8;
    case K.String: {
      if (typeof v !== "string") throw UNSUPPORTED;
      const n = utf8Length(v);
      sc.lens.push(n);
      return varintSize(n) + n;
    }
    case K.Bytes:
      if (!(v instanceof Uint8Array)) throw UNSUPPORTED;
      return varintSize(v.byteLength) + v.byteLength;
    case K.Message: {
      const slot = sc.lens.length;
      sc.lens.push(0);
      const n = messageSize(f.msg!, v, sc);
      sc.lens[slot] = n;
      return varintSize(n) + n;
    }
  }
}

function writeValue(f: FieldPlan, v: unknown, buf: Buffer, pos: number, sc: Scratch): number {
  switch (f.kind) {
    case K.Int32: {
      const x = v as number;
      return x >= 0 ? writeVarint(buf, pos, x) : writeVarint64(buf, pos, BigInt.asUintN(64, BigInt(x)));
    }
    case K.Uint32:
      return writeVarint(buf, pos, v as number);
    case K.Sint32: {
      const x = v as number;
      return writeVarint(buf, pos, x >= 0 ? x * 2 : -x * 2 - 1);
    }
    case K.Int64: {
      const x = v as bigint;
      return writeVarint64(buf, pos, x >= 0n ? x : BigInt.asUintN(64, x));
    }
    case K.Uint64:
      return writeVarint64(buf, pos, v as bigint);
    case K.Sint64:
      return writeVarint64(buf, pos, zigzag64(v as bigint));
    case K.Bool:
      buf[pos] = v ? 1 : 0;
      return pos + 1;
    case K.Fixed32:
      return buf.writeUInt32LE(v as number, pos);
    case K.Sfixed32:
      return buf.writeInt32LE(v as number, pos);
    case K.Float:
      return buf.writeFloatLE(v as number, pos);
    case K.Fixed64:
      return buf.writeBigUInt64LE(v as bigint, pos);
    case K.Sfixed64:
      return buf.writeBigInt64LE(v as bigint, pos);
    case K.Double:
      return buf.writeDoubleLE(v as number, pos);
    case K.String: {
      const s = v as string;
      const n = sc.lens[sc.at++]!;
      pos = writeVarint(buf, pos, n);
      if (n === s.length) {
        for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i); // ASCII
        return pos + n;
      }
      return pos + buf.write(s, pos, n, "utf8");
    }
    case K.Bytes: {
      const b = v as Uint8Array;
      pos = writeVarint(buf, pos, b.byteLength);
      buf.set(b, pos);
      return pos + b.byteLength;
    }
    case K.Message: {
      const n = sc.lens[sc.at++]!;
      pos = writeVarint(buf, pos, n);
      const end = writeMessage(f.msg!, v as AnyMsg, buf, pos, sc);
      if (end !== pos + n) throw new Error(`binary-encoder: ${f.msg!.typeName} wrote ${end - pos} bytes, measured ${n}`);
      return end;
    }
  }
}

/** The value a singular field writes, or undefined when it is not written (protobuf-es's rules). */
function presentValue(f: FieldPlan, m: AnyMsg): unknown {
  if (f.oneof !== undefined) {
    const o = m[f.oneof] as { case?: unknown; value?: unknown } | undefined;
    return o !== undefined && o !== null && o.case === f.localName ? o.value : undefined;
  }
  const v = m[f.localName];
  if (v === undefined || f.explicit) return v;
  // Implicit presence: the zero value is not written.
  switch (f.kind) {
    case K.Bool:
      return v === false ? undefined : v;
    case K.String:
      return v === "" ? undefined : v;
    case K.Bytes:
      return v instanceof Uint8Array && v.byteLength === 0 ? undefined : v;
    case K.Float:
    case K.Double:
      return Object.is(v, 0) ? undefined : v;
    default:
      if (typeof v === "bigint") return v === 0n ? undefined : v;
      if (typeof v === "number") return v === 0 ? undefined : v;
      // eslint-disable-next-line eqeqeq -- protobuf-es's own test for other values ("0" is zero)
      return v == 0 ? undefined : v;
  }
}

function checkType(plan: MessagePlan, m: unknown): AnyMsg {
  if (typeof m !== "object" || m === null) throw UNSUPPORTED;
  const t = (m as AnyMsg).$typeName;
  if (t !== undefined && t !== plan.typeName) throw UNSUPPORTED;
  return m as AnyMsg;
}

interface UnknownField {
  no: number;
  wireType: number;
  data: Uint8Array;
}

function unknownOf(m: AnyMsg): UnknownField[] | undefined {
  const u = m.$unknown;
  if (u === undefined) return undefined;
  if (!Array.isArray(u)) throw UNSUPPORTED;
  return u as UnknownField[];
}

function messageSize(plan: MessagePlan, raw: unknown, sc: Scratch): number {
  const m = checkType(plan, raw);
  let n = 0;
  for (const f of plan.fields) {
    if (f.shape === Shape.Single) {
      const v = presentValue(f, m);
      if (v !== undefined) n += f.tag.length + valueSize(f, v, sc);
      continue;
    }
    const list = m[f.localName];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw UNSUPPORTED;
    if (list.length === 0) continue;
    if (f.shape === Shape.Repeated) {
      for (const v of list) n += f.tag.length + valueSize(f, v, sc);
    } else {
      const slot = sc.lens.length;
      sc.lens.push(0);
      let body = 0;
      for (const v of list) body += valueSize(f, v, sc);
      sc.lens[slot] = body;
      n += f.tag.length + varintSize(body) + body;
    }
  }
  const unknown = unknownOf(m);
  if (unknown) for (const u of unknown) n += varintSize(u.no * 8 + u.wireType) + u.data.byteLength;
  return n;
}

function writeTag(f: FieldPlan, buf: Buffer, pos: number): number {
  const t = f.tag;
  for (let i = 0; i < t.length; i++) buf[pos + i] = t[i]!;
  return pos + t.length;
}

function writeMessage(plan: MessagePlan, m: AnyMsg, buf: Buffer, pos: number, sc: Scratch): number {
  for (const f of plan.fields) {
    if (f.shape === Shape.Single) {
      const v = presentValue(f, m);
      if (v !== undefined) pos = writeValue(f, v, buf, writeTag(f, buf, pos), sc);
      continue;
    }
    const list = m[f.localName] as unknown[] | undefined;
    if (list === undefined || list.length === 0) continue;
    if (f.shape === Shape.Repeated) {
      for (const v of list) pos = writeValue(f, v, buf, writeTag(f, buf, pos), sc);
    } else {
      pos = writeVarint(buf, writeTag(f, buf, pos), sc.lens[sc.at++]!);
      for (const v of list) pos = writeValue(f, v, buf, pos, sc);
    }
  }
  const unknown = m.$unknown as UnknownField[] | undefined;
  if (unknown) {
    for (const u of unknown) {
      pos = writeVarint(buf, pos, u.no * 8 + u.wireType);
      buf.set(u.data, pos);
      pos += u.data.byteLength;
    }
  }
  return pos;
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
  const sc: Scratch = { lens: [], at: 0 };
  let size: number;
  try {
    size = messageSize(plan, m, sc);
  } catch (err) {
    if (err === UNSUPPORTED) return fallback(desc, m);
    throw err;
  }
  const buf = Buffer.allocUnsafe(size);
  const end = writeMessage(plan, m as AnyMsg, buf, 0, sc);
  if (end !== size) throw new Error(`binary-encoder: ${plan.typeName} wrote ${end} bytes, measured ${size}`);
  return buf;
}

/** A serializer for one message type (grpc-js `responseSerialize`). */
export function messageEncoder(desc: DescMessage): (m: MessageShape<DescMessage> | Record<string, unknown>) => Buffer {
  planOf(desc); // compile once, at registration
  return (m) => encodeMessage(desc, m);
}

/** Whether `desc` is encoded here rather than handed to protobuf-es (tests check the hot replies). */
export function encodedWithoutProtobufEs(desc: DescMessage): boolean {
  return planOf(desc) !== null;
}
