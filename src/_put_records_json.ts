// The PutRecords request body in AWS JSON 1.1, written once into one exactly sized
// Uint8Array for the direct transport (src/_direct_client.ts). The SDK builds the same JSON
// by base64-encoding every blob into a string, walking a generic schema, stringifying the
// whole request and copying it to UTF-8 (docs/performance.md, "The direct transport"): here
// each entry's base64 is written in place, partition keys that need no JSON escape are
// copied as ASCII, and the rest are escaped by JSON.stringify once.

const UTF8 = new TextEncoder();
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// Shorter data goes through the table below; above this, the native encoder's call and
// its string's copy cost less than the table's loop.
const NATIVE_BASE64_MIN = 256;

/** Two base64 characters for every 12-bit value, as two bytes of a little-endian word. */
const PAIRS = new Uint16Array(4096);
for (let i = 0; i < 4096; i++) {
  PAIRS[i] = ALPHABET.charCodeAt(i >> 6) | (ALPHABET.charCodeAt(i & 63) << 8);
}

type ToBase64 = (this: Uint8Array) => string;
// `Uint8Array.prototype.toBase64` (TC39 base64 proposal): Deno and Bun have it, Node 24 not.
const nativeBase64 = (Uint8Array.prototype as { toBase64?: ToBase64 }).toBase64;

const OPEN_DATA = UTF8.encode('{"Data":"');
const OPEN_KEY = UTF8.encode('","PartitionKey":');
const OPEN_HASH_KEY = UTF8.encode(',"ExplicitHashKey":"');
const QUOTE = 0x22;
const COMMA = 0x2c;

/** The fields of a PutRecords request this writer reads. */
export interface PutRecordsBodyInput {
  /** The stream's name, or undefined when the ARN names it. */
  StreamName?: string | undefined;
  /** The stream's ARN. */
  StreamARN?: string | undefined;
  /** The entries. */
  Records: readonly {
    Data: Uint8Array;
    PartitionKey: string;
    ExplicitHashKey?: string | undefined;
  }[];
}

/**
 * Writes a PutRecords request as AWS JSON 1.1:
 * `{"StreamName":…,"Records":[{"Data":"<base64>","PartitionKey":"…"(,"ExplicitHashKey":"…")},…]}`.
 *
 * @param input The request.
 * @returns The body, sized exactly.
 */
export function encodePutRecordsJson(input: PutRecordsBodyInput): Uint8Array {
  const records = input.Records;
  // JSON.stringify drops the stream field that is undefined.
  const stream = JSON.stringify({ StreamName: input.StreamName, StreamARN: input.StreamARN });
  const head = UTF8.encode(
    `${stream.slice(0, -1)}${stream.length > 2 ? "," : ""}"Records":[`,
  );
  // Keys that need escaping are encoded once here and copied below; the rest go as ASCII.
  let escaped: (Uint8Array | undefined)[] | undefined;
  let size = head.length + 2 + Math.max(0, records.length - 1);
  for (let i = 0; i < records.length; i++) {
    const entry = records[i]!;
    size += OPEN_DATA.length + 4 * Math.ceil(entry.Data.length / 3) + OPEN_KEY.length + 1;
    const key = entry.PartitionKey;
    if (isPlainAscii(key)) {
      size += key.length + 2;
    } else {
      escaped ??= new Array(records.length);
      const bytes = UTF8.encode(JSON.stringify(key));
      escaped[i] = bytes;
      size += bytes.length;
    }
    const hashKey = entry.ExplicitHashKey;
    if (hashKey !== undefined) size += OPEN_HASH_KEY.length + hashKey.length + 1;
  }
  const out = new Uint8Array(size);
  out.set(head, 0);
  let p = head.length;
  for (let i = 0; i < records.length; i++) {
    const entry = records[i]!;
    if (i > 0) out[p++] = COMMA;
    out.set(OPEN_DATA, p);
    p = writeBase64(entry.Data, out, p + OPEN_DATA.length);
    out.set(OPEN_KEY, p);
    p += OPEN_KEY.length;
    const bytes = escaped?.[i];
    if (bytes === undefined) {
      out[p++] = QUOTE;
      p = writeAscii(entry.PartitionKey, out, p);
      out[p++] = QUOTE;
    } else {
      out.set(bytes, p);
      p += bytes.length;
    }
    const hashKey = entry.ExplicitHashKey;
    if (hashKey !== undefined) {
      out.set(OPEN_HASH_KEY, p);
      // Decimal digits only: src/_validate.ts checked it before it got here.
      p = writeAscii(hashKey, out, p + OPEN_HASH_KEY.length);
      out[p++] = QUOTE;
    }
    out[p++] = 0x7d; // }
  }
  out[p++] = 0x5d; // ]
  out[p++] = 0x7d; // }
  if (p !== size) throw new RangeError(`PutRecords body size mismatch: wrote ${p} of ${size}`);
  return out;
}

function writeBase64(data: Uint8Array, out: Uint8Array, p: number): number {
  const length = data.length;
  if (nativeBase64 !== undefined && length >= NATIVE_BASE64_MIN) {
    return p + UTF8.encodeInto(nativeBase64.call(data), out.subarray(p)).written;
  }
  const whole = length - (length % 3);
  let i = 0;
  for (; i < whole; i += 3) {
    const v = (data[i]! << 16) | (data[i + 1]! << 8) | data[i + 2]!;
    const a = PAIRS[v >>> 12]!;
    const b = PAIRS[v & 4095]!;
    out[p] = a & 0xff;
    out[p + 1] = a >>> 8;
    out[p + 2] = b & 0xff;
    out[p + 3] = b >>> 8;
    p += 4;
  }
  const rest = length - whole;
  if (rest > 0) {
    const v = (data[i]! << 16) | (rest === 2 ? data[i + 1]! << 8 : 0);
    out[p] = ALPHABET.charCodeAt(v >>> 18);
    out[p + 1] = ALPHABET.charCodeAt((v >>> 12) & 63);
    out[p + 2] = rest === 2 ? ALPHABET.charCodeAt((v >>> 6) & 63) : 0x3d;
    out[p + 3] = 0x3d;
    p += 4;
  }
  return p;
}

/** Whether `text` goes into JSON as its own bytes, between quotes. */
function isPlainAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === QUOTE || c === 0x5c) return false;
  }
  return true;
}

function writeAscii(text: string, out: Uint8Array, p: number): number {
  for (let i = 0; i < text.length; i++) out[p++] = text.charCodeAt(i);
  return p;
}
