/**
 * PROTOTYPE, not wired into the producer: the body codec of the AWS CBOR protocol
 * (`application/x-amz-cbor-1.1`, the format the AWS SDK for Java uses for Kinesis by default),
 * written with Web APIs only so it can move into `src/` unchanged.
 *
 * Why: in AWS JSON 1.1 every record's data travels as base64 text, a third larger than the
 * data, and the body must be written as text. In CBOR the data is a byte string: the request
 * body is the records' bytes plus a few bytes of framing per entry, copied with
 * `Uint8Array.prototype.set`. `bench/cbor_probe.ts` measures it against the JSON writer of
 * `bench/lean_kinesis_client.ts` and against `@smithy/core`'s `cbor` serializer, and
 * `bench/results/2026-12-01-cbor.md` holds the figures.
 *
 * What it covers (RFC 8949): the writer emits definite lengths only, the shortest header for
 * each length, integers, float64 for other numbers, text, byte strings, arrays, maps and the
 * simple values; the reader takes everything a Kinesis endpoint answers with, including
 * indefinite-length strings, arrays and maps, tags (their content is returned), half, single
 * and double floats. 64-bit integers beyond 2^53 read as a rounded `number`.
 *
 * @module
 */
import type { PutRecordsInput } from "../src/kinesis_client.ts";

/** The content type of the AWS CBOR protocol. */
export const CBOR_CONTENT_TYPE = "application/x-amz-cbor-1.1";

const MAJOR_UNSIGNED = 0;
const MAJOR_NEGATIVE = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const FALSE = 0xf4;
const TRUE = 0xf5;
const NULL = 0xf6;
const UNDEFINED = 0xf7;
const FLOAT64 = 0xfb;
const BREAK = 0xff;
const INDEFINITE = 31;
// Below this many bytes a loop copies faster than `set()`'s call.
const SET_MIN = 32;
// Map keys at most this long are looked up in a small cache of keys already read: a
// response repeats a handful of them hundreds of times, and a key read from the cache is
// the engine's internalized string, which property stores take without hashing it again.
const SHORT_TEXT_MAX = 24;
const SHORT_TEXT_SLOTS = 1024;
// Other ASCII text (shard ids, sequence numbers) is cut out of the whole body decoded once
// as Latin-1 (the same characters as ASCII below 0x80): one native call per body instead of
// one per string, each of which costs several times what `JSON.parse` spends on a string.
// Only for bodies up to this size: a request full of record data is not worth the text.
const WHOLE_TEXT_MAX = 1 << 20;
// Nesting the reader follows before it gives up, so a hostile body cannot exhaust the stack.
const MAX_DEPTH = 64;

const UTF8 = new TextEncoder();
const UTF8_DECODER = new TextDecoder();
const LATIN1_DECODER = new TextDecoder("latin1");

/** Thrown by {@linkcode decodeCbor} for a body that is not well-formed CBOR. */
export class CborDecodeError extends Error {
  /** Byte offset where decoding failed. */
  readonly offset: number;

  /**
   * Creates the error; the message gets the offset appended.
   *
   * @param message What is wrong.
   * @param offset Where in the body.
   */
  constructor(message: string, offset: number) {
    super(`${message} at byte ${offset}`);
    this.name = "CborDecodeError";
    this.offset = offset;
  }
}

/** Bytes of the header that announces `n` (a length, count or integer). */
function headerSize(n: number): number {
  if (n < 24) return 1;
  if (n < 0x100) return 2;
  if (n < 0x10000) return 3;
  if (n < 0x100000000) return 5;
  return 9;
}

function writeUint32(out: Uint8Array, p: number, n: number): void {
  out[p] = n >>> 24;
  out[p + 1] = (n >>> 16) & 0xff;
  out[p + 2] = (n >>> 8) & 0xff;
  out[p + 3] = n & 0xff;
}

function writeHeader(out: Uint8Array, p: number, major: number, n: number): number {
  const type = major << 5;
  if (n < 24) {
    out[p] = type | n;
    return p + 1;
  }
  if (n < 0x100) {
    out[p] = type | 24;
    out[p + 1] = n;
    return p + 2;
  }
  if (n < 0x10000) {
    out[p] = type | 25;
    out[p + 1] = n >>> 8;
    out[p + 2] = n & 0xff;
    return p + 3;
  }
  if (n < 0x100000000) {
    out[p] = type | 26;
    writeUint32(out, p + 1, n);
    return p + 5;
  }
  out[p] = type | 27;
  writeUint32(out, p + 1, Math.floor(n / 0x100000000));
  writeUint32(out, p + 5, n % 0x100000000);
  return p + 9;
}

/** UTF-8 length of `s`; a lone surrogate counts 3 bytes, as `TextEncoder` writes U+FFFD. */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        n += 2;
        i++;
      } else {
        n += 2;
      }
    } else {
      n += 2;
    }
  }
  return n;
}

/** Writes `s` as a CBOR text string of `length` UTF-8 bytes. */
function writeText(out: Uint8Array, p: number, s: string, length: number): number {
  p = writeHeader(out, p, MAJOR_TEXT, length);
  if (length === s.length) {
    for (let i = 0; i < length; i++) out[p + i] = s.charCodeAt(i);
  } else {
    UTF8.encodeInto(s, out.subarray(p, p + length));
  }
  return p + length;
}

function writeData(out: Uint8Array, p: number, data: Uint8Array): number {
  const length = data.length;
  p = writeHeader(out, p, MAJOR_BYTES, length);
  if (length < SET_MIN) {
    for (let i = 0; i < length; i++) out[p + i] = data[i]!;
  } else {
    out.set(data, p);
  }
  return p + length;
}

/** A map key, pre-encoded as a CBOR text string. */
function key(name: string): Uint8Array {
  const out = new Uint8Array(headerSize(name.length) + name.length);
  writeText(out, 0, name, name.length);
  return out;
}

const KEY_STREAM_NAME = key("StreamName");
const KEY_STREAM_ARN = key("StreamARN");
const KEY_RECORDS = key("Records");
const KEY_DATA = key("Data");
const KEY_PARTITION_KEY = key("PartitionKey");
const KEY_EXPLICIT_HASH_KEY = key("ExplicitHashKey");

function writeKey(out: Uint8Array, p: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) out[p + i] = bytes[i]!;
  return p + bytes.length;
}

/**
 * Writes a PutRecords request body in CBOR, once, into a buffer of exactly its size:
 * `{StreamName|StreamARN: text, Records: [{Data: bytes, PartitionKey: text,
 * ExplicitHashKey?: text}, …]}`. The record data is copied as is (no base64).
 *
 * @param input The request, as the producer builds it (validated before it gets here).
 * @returns The body.
 * @throws {TypeError} When the input names no stream.
 *
 * @example One record
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCbor, encodePutRecordsCbor } from "./cbor_wire.ts";
 *
 * const body = encodePutRecordsCbor({
 *   StreamName: "orders",
 *   Records: [{ Data: Uint8Array.of(1, 2, 3), PartitionKey: "k" }],
 * });
 * assert.deepEqual(decodeCbor(body), {
 *   StreamName: "orders",
 *   Records: [{ Data: Uint8Array.of(1, 2, 3), PartitionKey: "k" }],
 * });
 * ```
 */
export function encodePutRecordsCbor(input: PutRecordsInput): Uint8Array {
  const { StreamName: name, StreamARN: arn, Records: records } = input;
  if (name === undefined && arn === undefined) {
    throw new TypeError("Cannot encode PutRecords as it names no stream: set 'StreamName'");
  }
  const count = records.length;
  // Every string's UTF-8 length is needed twice (size, then header); keys are short, so the
  // lengths are kept in one typed array instead of encoding the keys up front.
  const keyLengths = new Uint32Array(count);
  const nameLength = name === undefined ? 0 : utf8Length(name);
  const arnLength = arn === undefined ? 0 : utf8Length(arn);
  let size = 1 + headerSize(count) + KEY_RECORDS.length;
  if (name !== undefined) size += KEY_STREAM_NAME.length + headerSize(nameLength) + nameLength;
  if (arn !== undefined) size += KEY_STREAM_ARN.length + headerSize(arnLength) + arnLength;
  for (let i = 0; i < count; i++) {
    const entry = records[i]!;
    const dataLength = entry.Data.length;
    const keyLength = utf8Length(entry.PartitionKey);
    keyLengths[i] = keyLength;
    size += 1 + KEY_DATA.length + headerSize(dataLength) + dataLength +
      KEY_PARTITION_KEY.length + headerSize(keyLength) + keyLength;
    const hashKey = entry.ExplicitHashKey;
    // A decimal string of digits, checked by the producer: one byte per character.
    if (hashKey !== undefined) {
      size += KEY_EXPLICIT_HASH_KEY.length + headerSize(hashKey.length) + hashKey.length;
    }
  }
  const out = new Uint8Array(size);
  let p = writeHeader(
    out,
    0,
    MAJOR_MAP,
    1 + (name === undefined ? 0 : 1) + (arn === undefined ? 0 : 1),
  );
  if (name !== undefined) {
    p = writeKey(out, p, KEY_STREAM_NAME);
    p = writeText(out, p, name, nameLength);
  }
  if (arn !== undefined) {
    p = writeKey(out, p, KEY_STREAM_ARN);
    p = writeText(out, p, arn, arnLength);
  }
  p = writeKey(out, p, KEY_RECORDS);
  p = writeHeader(out, p, MAJOR_ARRAY, count);
  for (let i = 0; i < count; i++) {
    const entry = records[i]!;
    const hashKey = entry.ExplicitHashKey;
    out[p++] = (MAJOR_MAP << 5) | (hashKey === undefined ? 2 : 3);
    p = writeKey(out, p, KEY_DATA);
    p = writeData(out, p, entry.Data);
    p = writeKey(out, p, KEY_PARTITION_KEY);
    p = writeText(out, p, entry.PartitionKey, keyLengths[i]!);
    if (hashKey !== undefined) {
      p = writeKey(out, p, KEY_EXPLICIT_HASH_KEY);
      p = writeText(out, p, hashKey, hashKey.length);
    }
  }
  if (p !== size) throw new RangeError(`PutRecords body size mismatch: ${p} of ${size}`);
  return out;
}

/** A value {@linkcode encodeCbor} writes. */
export type CborValue =
  | string
  | number
  | boolean
  | null
  | undefined
  | Uint8Array
  | readonly CborValue[]
  | { readonly [key: string]: CborValue };

function isSafeInteger(n: number): boolean {
  return Number.isInteger(n) && Math.abs(n) <= Number.MAX_SAFE_INTEGER;
}

function sizeOf(value: CborValue, depth: number): number {
  if (depth > MAX_DEPTH) throw new RangeError(`CBOR value nested deeper than ${MAX_DEPTH}`);
  if (typeof value === "string") {
    const length = utf8Length(value);
    return headerSize(length) + length;
  }
  if (typeof value === "number") {
    return isSafeInteger(value) ? headerSize(value < 0 ? -1 - value : value) : 9;
  }
  if (typeof value === "boolean" || value === null || value === undefined) return 1;
  if (value instanceof Uint8Array) return headerSize(value.length) + value.length;
  if (Array.isArray(value)) {
    let size = headerSize(value.length);
    for (const item of value as readonly CborValue[]) size += sizeOf(item, depth + 1);
    return size;
  }
  let size = 0;
  let count = 0;
  for (const [name, item] of Object.entries(value)) {
    if (item === undefined) continue;
    count++;
    size += sizeOf(name, depth) + sizeOf(item, depth + 1);
  }
  return headerSize(count) + size;
}

function writeValue(out: Uint8Array, p: number, value: CborValue): number {
  if (typeof value === "string") return writeText(out, p, value, utf8Length(value));
  if (typeof value === "number") {
    if (isSafeInteger(value)) {
      return value < 0
        ? writeHeader(out, p, MAJOR_NEGATIVE, -1 - value)
        : writeHeader(out, p, MAJOR_UNSIGNED, value);
    }
    out[p] = FLOAT64;
    new DataView(out.buffer, out.byteOffset + p + 1, 8).setFloat64(0, value);
    return p + 9;
  }
  if (typeof value === "boolean") {
    out[p] = value ? TRUE : FALSE;
    return p + 1;
  }
  if (value === null || value === undefined) {
    out[p] = value === null ? NULL : UNDEFINED;
    return p + 1;
  }
  if (value instanceof Uint8Array) return writeData(out, p, value);
  if (Array.isArray(value)) {
    p = writeHeader(out, p, MAJOR_ARRAY, value.length);
    for (const item of value as readonly CborValue[]) p = writeValue(out, p, item);
    return p;
  }
  const entries = Object.entries(value).filter(([, item]) => item !== undefined);
  p = writeHeader(out, p, MAJOR_MAP, entries.length);
  for (const [name, item] of entries) {
    p = writeValue(out, p, name);
    p = writeValue(out, p, item);
  }
  return p;
}

/**
 * Writes any small request or response body (ListShards input, a responder's answer) in
 * CBOR, into a buffer of exactly its size. Map members that are `undefined` are left out.
 *
 * @param value Strings, numbers, booleans, `null`, byte arrays, arrays and plain objects.
 * @returns The body.
 * @throws {RangeError} When the value nests deeper than 64 levels.
 *
 * @example A ListShards request
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCbor, encodeCbor } from "./cbor_wire.ts";
 *
 * const body = encodeCbor({ StreamName: "orders", MaxResults: 1000, NextToken: undefined });
 * assert.deepEqual(decodeCbor(body), { StreamName: "orders", MaxResults: 1000 });
 * ```
 */
export function encodeCbor(value: CborValue): Uint8Array {
  const size = sizeOf(value, 0);
  const out = new Uint8Array(size);
  const end = writeValue(out, 0, value);
  if (end !== size) throw new RangeError(`CBOR body size mismatch: ${end} of ${size}`);
  return out;
}

const shortTextBytes: (Uint8Array | undefined)[] = new Array(SHORT_TEXT_SLOTS);
const shortTexts: string[] = new Array(SHORT_TEXT_SLOTS).fill("");

/** The text of `length` (at most `SHORT_TEXT_MAX`) bytes at `start`, from the cache if seen. */
function shortText(bytes: Uint8Array, start: number, length: number): string {
  if (length === 0) return "";
  // Keys differ in length, first or last letter: enough to pick a slot; the bytes decide.
  const slot = (length * 131 + bytes[start]! * 31 + bytes[start + length - 1]!) &
    (SHORT_TEXT_SLOTS - 1);
  const cached = shortTextBytes[slot];
  if (cached !== undefined && cached.length === length) {
    let i = 0;
    while (i < length && cached[i] === bytes[start + i]) i++;
    if (i === length) return shortTexts[slot]!;
  }
  const copy = bytes.slice(start, start + length);
  let text = "";
  for (let i = 0; i < length; i++) {
    const c = copy[i]!;
    if (c >= 0x80) {
      text = UTF8_DECODER.decode(copy);
      break;
    }
    text += String.fromCharCode(c);
  }
  // A property name is stored internalized; reading it back gives the engine's canonical
  // copy, which later property stores with this key find without hashing it again.
  text = Object.keys({ [text]: 0 })[0] ?? text;
  shortTextBytes[slot] = copy;
  shortTexts[slot] = text;
  return text;
}

/** The reader's position in one body. */
class Reader {
  readonly bytes: Uint8Array;
  p = 0;
  /** The whole body as one-byte text, made when the first long ASCII text is read. */
  #whole: string | undefined;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  fail(message: string): never {
    throw new CborDecodeError(message, this.p);
  }

  need(n: number): void {
    if (this.p + n > this.bytes.length) this.fail("Truncated CBOR body");
  }

  /** The argument of a head whose additional information is `info` (not 31). */
  argument(info: number): number {
    const b = this.bytes;
    if (info < 24) return info;
    const p = this.p;
    switch (info) {
      case 24:
        this.need(1);
        this.p = p + 1;
        return b[p]!;
      case 25:
        this.need(2);
        this.p = p + 2;
        return (b[p]! << 8) | b[p + 1]!;
      case 26:
        this.need(4);
        this.p = p + 4;
        return ((b[p]! << 24) >>> 0) + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
      case 27: {
        this.need(8);
        this.p = p + 8;
        const high = ((b[p]! << 24) >>> 0) + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
        const low = ((b[p + 4]! << 24) >>> 0) +
          ((b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!);
        return high * 0x100000000 + low;
      }
      default:
        return this.fail(`Reserved additional information ${info}`);
    }
  }

  /** Text of `length` bytes; `isKey` for a map key, which goes through the key cache. */
  text(length: number, isKey: boolean): string {
    this.need(length);
    const b = this.bytes;
    const start = this.p;
    const end = start + length;
    this.p = end;
    if (isKey && length <= SHORT_TEXT_MAX) return shortText(b, start, length);
    if (b.length <= WHOLE_TEXT_MAX) {
      let i = start;
      while (i < end && b[i]! < 0x80) i++;
      if (i === end) {
        this.#whole ??= LATIN1_DECODER.decode(b);
        return this.#whole.slice(start, end);
      }
    }
    return UTF8_DECODER.decode(b.subarray(start, end));
  }

  /** The chunks of an indefinite-length string, joined. */
  chunks(major: number): string | Uint8Array {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      this.need(1);
      const head = this.bytes[this.p++]!;
      if (head === BREAK) break;
      if (head >> 5 !== major || (head & 31) === INDEFINITE) this.fail("Bad string chunk");
      const length = this.argument(head & 31);
      this.need(length);
      parts.push(this.bytes.subarray(this.p, this.p + length));
      this.p += length;
      total += length;
    }
    const joined = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      joined.set(part, offset);
      offset += part.length;
    }
    return major === MAJOR_TEXT ? UTF8_DECODER.decode(joined) : joined;
  }

  float(info: number): number {
    const b = this.bytes;
    const p = this.p;
    if (info === 25) {
      this.need(2);
      this.p = p + 2;
      const half = (b[p]! << 8) | b[p + 1]!;
      const exponent = (half >> 10) & 31;
      const fraction = half & 1023;
      const sign = half & 0x8000 ? -1 : 1;
      if (exponent === 0) return sign * fraction * 2 ** -24;
      if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN;
      return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
    }
    const size = info === 26 ? 4 : 8;
    this.need(size);
    this.p = p + size;
    const view = new DataView(b.buffer, b.byteOffset + p, size);
    return size === 4 ? view.getFloat32(0) : view.getFloat64(0);
  }

  value(depth: number): unknown {
    if (depth > MAX_DEPTH) this.fail(`Nested deeper than ${MAX_DEPTH}`);
    this.need(1);
    const head = this.bytes[this.p++]!;
    const major = head >> 5;
    const info = head & 31;
    if (info === INDEFINITE) return this.indefinite(major, depth);
    switch (major) {
      case MAJOR_UNSIGNED:
        return this.argument(info);
      case MAJOR_NEGATIVE:
        return -1 - this.argument(info);
      case MAJOR_BYTES: {
        const length = this.argument(info);
        this.need(length);
        const start = this.p;
        this.p = start + length;
        return this.bytes.subarray(start, start + length);
      }
      case MAJOR_TEXT:
        return this.text(this.argument(info), false);
      case MAJOR_ARRAY: {
        const count = this.argument(info);
        // Each item takes at least one byte: a count beyond the rest is a lie.
        this.need(count);
        const items = new Array<unknown>(count);
        for (let i = 0; i < count; i++) items[i] = this.value(depth + 1);
        return items;
      }
      case MAJOR_MAP: {
        const count = this.argument(info);
        this.need(count * 2);
        const map: Record<string, unknown> = {};
        for (let i = 0; i < count; i++) this.member(map, depth);
        return map;
      }
      case MAJOR_TAG:
        this.argument(info);
        return this.value(depth + 1);
      default:
        return this.simple(info);
    }
  }

  indefinite(major: number, depth: number): unknown {
    switch (major) {
      case MAJOR_BYTES:
      case MAJOR_TEXT:
        return this.chunks(major);
      case MAJOR_ARRAY: {
        const items: unknown[] = [];
        while (!this.atBreak()) items.push(this.value(depth + 1));
        return items;
      }
      case MAJOR_MAP: {
        const map: Record<string, unknown> = {};
        while (!this.atBreak()) this.member(map, depth);
        return map;
      }
      default:
        return this.fail(`Indefinite length on major type ${major}`);
    }
  }

  atBreak(): boolean {
    this.need(1);
    if (this.bytes[this.p] !== BREAK) return false;
    this.p++;
    return true;
  }

  /** Reads one key and value into `map`; a `null` value reads as absent, as the SDK reads it. */
  member(map: Record<string, unknown>, depth: number): void {
    this.need(1);
    const head = this.bytes[this.p]!;
    let name: unknown;
    if (head >> 5 === MAJOR_TEXT && (head & 31) !== INDEFINITE) {
      this.p++;
      name = this.text(this.argument(head & 31), true);
    } else {
      name = this.value(depth + 1);
    }
    if (typeof name !== "string") this.fail("Map key is not text");
    const item = this.value(depth + 1);
    if (item !== null && item !== undefined) map[name] = item;
  }

  simple(info: number): unknown {
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 25:
      case 26:
      case 27:
        return this.float(info);
      default:
        return this.fail(`Unsupported simple value ${info}`);
    }
  }
}

/**
 * Reads one CBOR body (a PutRecords or ListShards response, an error body) into plain
 * values: maps as objects, byte strings as views into `bytes` (no copy), tags as their
 * content. A map member whose value is `null` is left out, as the AWS SDK reads it.
 *
 * @param bytes The body.
 * @returns The value.
 * @throws {CborDecodeError} When the body is not well-formed CBOR, or has bytes after the value.
 *
 * @example An error body
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCbor, encodeCbor } from "./cbor_wire.ts";
 *
 * const body = encodeCbor({ __type: "ResourceNotFoundException", message: "No stream" });
 * assert.deepEqual(decodeCbor(body), { __type: "ResourceNotFoundException", message: "No stream" });
 * ```
 */
export function decodeCbor(bytes: Uint8Array): unknown {
  const reader = new Reader(bytes);
  const value = reader.value(0);
  if (reader.p !== bytes.length) reader.fail("Bytes after the CBOR value");
  return value;
}
