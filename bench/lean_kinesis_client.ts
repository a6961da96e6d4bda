/**
 * PROTOTYPE, not the producer's default: a lean {@linkcode KinesisClient} that speaks AWS
 * JSON 1.1 over `fetch` with SigV4 signing through Web Crypto. Written with Web APIs only so
 * it could move into `src/` unchanged if the lead agrees; until then it lives here and the
 * benchmark passes it as `kinesisClient`.
 *
 * Why: with the AWS SDK, most of a PutRecords request's cost is the SDK's own — base64 of
 * every blob into a string, a generic schema walk, `JSON.stringify` of a ~7 MB string, its
 * UTF-8 copy, SHA-256 of that copy — and the garbage those strings leave (see
 * docs/performance.md). This client writes the request body once, straight into one
 * `Uint8Array` sized exactly: base64 through `Uint8Array.prototype.toBase64` (native, SIMD
 * in V8 and JavaScriptCore) or a table for short data, partition keys copied as ASCII,
 * JSON escaping only where a key needs it.
 *
 * Scope: `PutRecords` and `ListShards`; static credentials or an async provider; no
 * retries (the producer owns them); errors carry the Kinesis error code as `name`, as the
 * producer's `describeError` expects.
 *
 * @module
 */
import type {
  KinesisCallOptions,
  KinesisClient,
  KinesisCredentials,
  ListShardsInput,
  ListShardsOutput,
  PutRecordsInput,
  PutRecordsOutput,
} from "../src/kinesis_client.ts";

/** Options for {@linkcode LeanKinesisClient}. */
export interface LeanKinesisClientOptions {
  /** AWS region, e.g. `us-east-1`. */
  region: string;
  /** Endpoint URL; defaults to `https://kinesis.<region>.amazonaws.com`. */
  endpoint?: string | undefined;
  /** Static credentials, or a function that resolves them (called per request; cache it). */
  credentials: KinesisCredentials | (() => Promise<KinesisCredentials>);
}

const SERVICE = "kinesis";
const CONTENT_TYPE = "application/x-amz-json-1.1";
const TARGET_PREFIX = "Kinesis_20131202.";
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const UTF8 = new TextEncoder();
// Shorter data is encoded by the table; the native encoder's call overhead wins above.
const NATIVE_BASE64_MIN = 256;

/** Two base64 characters for every 12-bit value, as two bytes in a little-endian word. */
const PAIRS = new Uint16Array(4096);
for (let i = 0; i < 4096; i++) {
  PAIRS[i] = ALPHABET.charCodeAt(i >> 6) | (ALPHABET.charCodeAt(i & 63) << 8);
}

const hasNativeBase64 =
  typeof (Uint8Array.prototype as { toBase64?: unknown }).toBase64 === "function";

function base64Length(n: number): number {
  return 4 * Math.ceil(n / 3);
}

function writeBase64(data: Uint8Array, out: Uint8Array, p: number): number {
  const length = data.length;
  if (hasNativeBase64 && length >= NATIVE_BASE64_MIN) {
    const text = (data as Uint8Array & { toBase64(): string }).toBase64();
    return p + UTF8.encodeInto(text, out.subarray(p)).written;
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

/** Whether `s` can be written into JSON as its own bytes, quotes aside. */
function isPlainAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

function writeAscii(s: string, out: Uint8Array, p: number): number {
  for (let i = 0; i < s.length; i++) out[p++] = s.charCodeAt(i);
  return p;
}

const OPEN_DATA = UTF8.encode('{"Data":"');
const OPEN_KEY = UTF8.encode('","PartitionKey":');
const OPEN_HASH_KEY = UTF8.encode(',"ExplicitHashKey":"');

function writeBytes(bytes: Uint8Array, out: Uint8Array, p: number): number {
  for (let i = 0; i < bytes.length; i++) out[p++] = bytes[i]!;
  return p;
}

/**
 * The PutRecords body, written once into an exactly sized buffer:
 * `{"StreamName":…,"Records":[{"Data":"…","PartitionKey":"…"(,"ExplicitHashKey":"…")},…]}`.
 */
export function encodePutRecords(input: PutRecordsInput): Uint8Array {
  const records = input.Records;
  const head = UTF8.encode(`{"StreamName":${JSON.stringify(input.StreamName)},"Records":[`);
  // Keys that need escaping are encoded once here and copied below; the rest go as ASCII.
  let escaped: (Uint8Array | undefined)[] | undefined;
  let size = head.length + 2 + Math.max(0, records.length - 1);
  for (let i = 0; i < records.length; i++) {
    const entry = records[i]!;
    size += OPEN_DATA.length + base64Length(entry.Data.length) + OPEN_KEY.length + 1;
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
    if (i > 0) out[p++] = 0x2c;
    p = writeBytes(OPEN_DATA, out, p);
    p = writeBase64(entry.Data, out, p);
    p = writeBytes(OPEN_KEY, out, p);
    const bytes = escaped?.[i];
    if (bytes === undefined) {
      out[p++] = 0x22;
      p = writeAscii(entry.PartitionKey, out, p);
      out[p++] = 0x22;
    } else {
      p = writeBytes(bytes, out, p);
    }
    const hashKey = entry.ExplicitHashKey;
    if (hashKey !== undefined) {
      p = writeBytes(OPEN_HASH_KEY, out, p);
      // A decimal string: digits only, checked by the producer before it got here.
      p = writeAscii(hashKey, out, p);
      out[p++] = 0x22;
    }
    out[p++] = 0x7d;
  }
  out[p++] = 0x5d;
  out[p++] = 0x7d;
  if (p !== size) throw new RangeError(`PutRecords body size mismatch: ${p} of ${size}`);
  return out;
}

function hex(bytes: ArrayBuffer): string {
  const view = new Uint8Array(bytes);
  let s = "";
  for (let i = 0; i < view.length; i++) s += view[i]!.toString(16).padStart(2, "0");
  return s;
}

async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? UTF8.encode(data) : data;
  return hex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

async function hmac(key: ArrayBuffer | Uint8Array, message: string): Promise<ArrayBuffer> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return await crypto.subtle.sign("HMAC", cryptoKey, UTF8.encode(message));
}

/** An error whose `name` is the Kinesis error code, as `describeError` reads it. */
function serviceError(code: string, message: string, status: number): Error {
  const error = new Error(message || `${code} (HTTP ${status})`);
  error.name = code;
  return error;
}

/** The lean client. See the module documentation. */
export class LeanKinesisClient implements KinesisClient {
  readonly #url: URL;
  readonly #region: string;
  readonly #credentials: LeanKinesisClientOptions["credentials"];
  /** The signing key of one (secret, date) pair; it changes once a day. */
  #signingKey: { secret: string; date: string; key: ArrayBuffer } | undefined;

  /**
   * Creates a client; nothing is sent until the first call.
   *
   * @param options Region, endpoint and credentials.
   */
  constructor(options: LeanKinesisClientOptions) {
    this.#region = options.region;
    this.#url = new URL(options.endpoint ?? `https://kinesis.${options.region}.amazonaws.com`);
    this.#credentials = options.credentials;
  }

  /** Sends one PutRecords request. */
  async putRecords(input: PutRecordsInput, options: KinesisCallOptions): Promise<PutRecordsOutput> {
    return await this.#call("PutRecords", encodePutRecords(input), options.signal);
  }

  /** Lists one page of shards. */
  async listShards(input: ListShardsInput, options: KinesisCallOptions): Promise<ListShardsOutput> {
    return await this.#call("ListShards", UTF8.encode(JSON.stringify(input)), options.signal);
  }

  /** Nothing to release: `fetch` owns the connections. */
  close(): void {}

  async #call<T>(operation: string, body: Uint8Array, signal: AbortSignal): Promise<T> {
    const headers = await this.#sign(operation, body);
    const response = await fetch(this.#url, {
      method: "POST",
      headers,
      body: body as Uint8Array<ArrayBuffer>,
      signal,
    });
    const text = await response.text();
    if (response.ok) return JSON.parse(text) as T;
    let code = response.status >= 500 ? "InternalFailure" : "UnknownError";
    let message = "";
    try {
      const parsed = JSON.parse(text) as { __type?: string; message?: string; Message?: string };
      if (typeof parsed.__type === "string") {
        code = parsed.__type.slice(parsed.__type.indexOf("#") + 1);
      }
      message = parsed.message ?? parsed.Message ?? "";
    } catch {
      message = text.slice(0, 200);
    }
    throw serviceError(code, message, response.status);
  }

  async #sign(operation: string, body: Uint8Array): Promise<Headers> {
    const credentials = typeof this.#credentials === "function"
      ? await this.#credentials()
      : this.#credentials;
    const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
    const date = amzDate.slice(0, 8);
    const target = TARGET_PREFIX + operation;
    const host = this.#url.host;
    const payloadHash = await sha256Hex(body);
    const token = credentials.sessionToken;
    const canonicalHeaders = `content-type:${CONTENT_TYPE}\nhost:${host}\nx-amz-date:${amzDate}\n` +
      (token === undefined ? "" : `x-amz-security-token:${token}\n`) +
      `x-amz-target:${target}\n`;
    const signedHeaders = "content-type;host;x-amz-date;" +
      (token === undefined ? "" : "x-amz-security-token;") + "x-amz-target";
    const canonicalRequest =
      `POST\n${this.#url.pathname}\n\n${canonicalHeaders}\n${signedHeaders}\n` +
      payloadHash;
    const scope = `${date}/${this.#region}/${SERVICE}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${await sha256Hex(
      canonicalRequest,
    )}`;
    const signature = hex(
      await hmac(await this.#key(credentials.secretAccessKey, date), stringToSign),
    );
    const headers = new Headers({
      "content-type": CONTENT_TYPE,
      "x-amz-date": amzDate,
      "x-amz-target": target,
      authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, ` +
        `SignedHeaders=${signedHeaders}, Signature=${signature}`,
    });
    if (token !== undefined) headers.set("x-amz-security-token", token);
    return headers;
  }

  async #key(secret: string, date: string): Promise<ArrayBuffer> {
    const cached = this.#signingKey;
    if (cached !== undefined && cached.secret === secret && cached.date === date) return cached.key;
    const dateKey = await hmac(UTF8.encode(`AWS4${secret}`), date);
    const regionKey = await hmac(dateKey, this.#region);
    const serviceKey = await hmac(regionKey, SERVICE);
    const key = await hmac(serviceKey, "aws4_request");
    this.#signingKey = { secret, date, key };
    return key;
  }
}
