/**
 * PROTOTYPE for the benchmarks: a {@linkcode KinesisClient} that speaks the AWS CBOR
 * protocol (`application/x-amz-cbor-1.1`) over `fetch`, with the body codec of
 * `bench/cbor_wire.ts` and the direct transport's SigV4 signer (`src/_sigv4.ts`). It is the
 * CBOR twin of the JSON direct transport (`src/_direct_client.ts`) for `PutRecords` and
 * `ListShards`, with no retries and errors named by their Kinesis code, so the two can be
 * compared call for call.
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
import { SigV4Signer } from "../src/_sigv4.ts";
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
  readonly #signer = new SigV4Signer();

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

  async #sign(operation: string, body: Uint8Array): Promise<Record<string, string>> {
    const credentials = typeof this.#credentials === "function"
      ? await this.#credentials()
      : this.#credentials;
    return await this.#signer.sign({
      url: this.#url,
      headers: { "content-type": CBOR_CONTENT_TYPE, "x-amz-target": TARGET_PREFIX + operation },
      body,
      credentials,
      region: this.#region,
      service: SERVICE,
      date: new Date(),
    });
  }
}
