/**
 * PROTOTYPE for the benchmarks: a {@linkcode KinesisClient} that speaks the AWS CBOR
 * protocol (`application/x-amz-cbor-1.1`) over `fetch`, with the body codec of
 * `bench/cbor_wire.ts` and SigV4 over Web Crypto. It is the CBOR twin of
 * `bench/lean_kinesis_client.ts` (same scope: `PutRecords` and `ListShards`, no retries,
 * errors named by their Kinesis code), so the two can be compared call for call.
 *
 * The signing steps repeat those of `bench/lean_kinesis_client.ts`, whose signer is private
 * and signs its JSON content type only; once the transport in `src/` takes the content type
 * as a parameter this file keeps only the CBOR body handling.
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
import { CBOR_CONTENT_TYPE, decodeCbor, encodeCbor, encodePutRecordsCbor } from "./cbor_wire.ts";

/** Options for {@linkcode CborKinesisClient}. */
export interface CborKinesisClientOptions {
  /** AWS region, e.g. `us-east-1`. */
  region: string;
  /** Endpoint URL; defaults to `https://kinesis.<region>.amazonaws.com`. */
  endpoint?: string | undefined;
  /** Static credentials, or a function that resolves them (called per request). */
  credentials: KinesisCredentials | (() => Promise<KinesisCredentials>);
}

const SERVICE = "kinesis";
const TARGET_PREFIX = "Kinesis_20131202.";
const UTF8 = new TextEncoder();

function hex(bytes: ArrayBuffer): string {
  const view = new Uint8Array(bytes);
  let s = "";
  for (let i = 0; i < view.length; i++) s += view[i]!.toString(16).padStart(2, "0");
  return s;
}

async function sha256Hex(data: Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
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

/**
 * The Kinesis error code of a failed call: the body's `__type` (after any `#`), else the
 * `x-amzn-ErrorType` header (before any `:`), else a code from the HTTP status.
 */
function errorOf(response: Response, body: Uint8Array): Error {
  let fields: { __type?: unknown; message?: unknown; Message?: unknown } = {};
  const type = response.headers.get("content-type") ?? "";
  try {
    const parsed = type.includes("cbor")
      ? decodeCbor(body)
      : JSON.parse(new TextDecoder().decode(body));
    if (typeof parsed === "object" && parsed !== null) fields = parsed;
  } catch {
    // An XML or empty error body: the header and the status still name it.
  }
  const header = response.headers.get("x-amzn-errortype");
  let code = response.status >= 500 ? "InternalFailure" : "UnknownError";
  if (typeof fields.__type === "string") code = fields.__type.slice(fields.__type.indexOf("#") + 1);
  else if (header !== null) code = header.split(":")[0]!;
  const message = fields.message ?? fields.Message;
  const error = new Error(
    typeof message === "string" && message !== "" ? message : `${code} (HTTP ${response.status})`,
  );
  error.name = code;
  return error;
}

/** The CBOR client. See the module documentation. */
export class CborKinesisClient implements KinesisClient {
  readonly #url: URL;
  readonly #region: string;
  readonly #credentials: CborKinesisClientOptions["credentials"];
  #signingKey: { secret: string; date: string; key: ArrayBuffer } | undefined;

  /**
   * Creates a client; nothing is sent until the first call.
   *
   * @param options Region, endpoint and credentials.
   */
  constructor(options: CborKinesisClientOptions) {
    this.#region = options.region;
    this.#url = new URL(options.endpoint ?? `https://kinesis.${options.region}.amazonaws.com`);
    this.#credentials = options.credentials;
  }

  /** Sends one PutRecords request. */
  async putRecords(input: PutRecordsInput, options: KinesisCallOptions): Promise<PutRecordsOutput> {
    return await this.#call("PutRecords", encodePutRecordsCbor(input), options.signal);
  }

  /** Lists one page of shards. */
  async listShards(input: ListShardsInput, options: KinesisCallOptions): Promise<ListShardsOutput> {
    return await this.#call("ListShards", encodeCbor({ ...input }), options.signal);
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
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (!response.ok) throw errorOf(response, bytes);
    return decodeCbor(bytes) as T;
  }

  async #sign(operation: string, body: Uint8Array): Promise<Headers> {
    const credentials = typeof this.#credentials === "function"
      ? await this.#credentials()
      : this.#credentials;
    const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
    const date = amzDate.slice(0, 8);
    const target = TARGET_PREFIX + operation;
    const token = credentials.sessionToken;
    const canonicalHeaders =
      `content-type:${CBOR_CONTENT_TYPE}\nhost:${this.#url.host}\nx-amz-date:${amzDate}\n` +
      (token === undefined ? "" : `x-amz-security-token:${token}\n`) +
      `x-amz-target:${target}\n`;
    const signedHeaders = "content-type;host;x-amz-date;" +
      (token === undefined ? "" : "x-amz-security-token;") + "x-amz-target";
    const canonicalRequest =
      `POST\n${this.#url.pathname}\n\n${canonicalHeaders}\n${signedHeaders}\n` +
      await sha256Hex(body);
    const scope = `${date}/${this.#region}/${SERVICE}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${await sha256Hex(
      UTF8.encode(canonicalRequest),
    )}`;
    const signature = hex(
      await hmac(await this.#key(credentials.secretAccessKey, date), stringToSign),
    );
    const headers = new Headers({
      "content-type": CBOR_CONTENT_TYPE,
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
