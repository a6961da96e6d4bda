// The direct transport: the Kinesis calls the producer makes, in AWS JSON 1.1 over `fetch`,
// signed by src/_sigv4.ts. The AWS SDK client stays the source of the region, the
// credentials (its provider chain, asked before every call) and the endpoint (its own rules,
// with the parameters its commands pass); what this file replaces is the SDK's request
// pipeline: its serializer writes every PutRecords body through strings and copies, and its
// signer hashes a copy again (docs/performance.md, "The direct transport"). Errors take the
// shapes the SDK gives them, so describeError() in src/kinesis_client.ts reads both alike.

import type {
  DescribeStreamSummaryInput,
  DescribeStreamSummaryOutput,
  KinesisCallOptions,
  KinesisClient,
  ListShardsInput,
  ListShardsOutput,
  PutRecordsInput,
  PutRecordsOutput,
} from "./kinesis_client.ts";
import { encodePutRecordsJson } from "./_put_records_json.ts";
import { type SigningCredentials, type SigningRequest, SigV4Signer } from "./_sigv4.ts";

const UTF8 = new TextEncoder();
const CONTENT_TYPE = "application/x-amz-json-1.1";
const TARGET_PREFIX = "Kinesis_20131202.";
// The clock follows the server's `Date` once they differ by this much, as the SDK long did
// (3.1143 follows every `Date`); within it, AWS accepts the signing time.
const CLOCK_SKEW_MS = 300_000;
// The codes a signing time too far from the server's is refused with: once the refusal's
// `Date` has corrected the clock, the SDK's retry strategy signs and sends again
// (@smithy/core's clock skew codes). Kinesis says `InvalidSignatureException`,
// "Signature expired"; the refused request was not applied, so sending it again is safe.
const CLOCK_SKEW_CODES: ReadonlySet<string> = new Set([
  "AccessDeniedException",
  "AuthFailure",
  "InvalidSignatureException",
  "RequestExpired",
  "RequestInTheFuture",
  "RequestTimeTooSkewed",
  "SignatureDoesNotMatch",
]);

/** The operations this transport sends. */
export type DirectOperation = "PutRecords" | "ListShards" | "DescribeStreamSummary";

/** How the SDK fills one endpoint rule parameter (`@smithy/types` EndpointParameterInstruction). */
export type EndpointInstruction =
  | { type: "builtInParams" | "clientContextParams"; name: string }
  | { type: "staticContextParams"; value: unknown }
  | { type: "contextParams"; name: string }
  | { type: "operationContextParams"; get(input: unknown): unknown };

/** What an SDK endpoint provider returns, as far as it is read here. */
interface ResolvedEndpoint {
  url: URL;
  properties?: { authSchemes?: { signingRegion?: string; signingName?: string }[] } | undefined;
}

/** The part of the SDK client's resolved configuration this transport reads. */
export interface SdkEndpointConfig {
  /** The endpoint rules, called with one operation's parameters. */
  endpointProvider(params: Record<string, unknown>): ResolvedEndpoint;
  /** The region; resolved already by createDefaultKinesisClient. */
  region: () => Promise<string>;
  /** Set when the caller (or the environment) named the endpoint. */
  isCustomEndpoint?: boolean;
  /** Skips `AWS_ENDPOINT_URL_KINESIS` and the shared config's endpoint. */
  ignoreConfiguredEndpointUrls?: boolean;
  /** The endpoint from `AWS_ENDPOINT_URL_KINESIS` or the shared config, if any. */
  serviceConfiguredEndpoint?: () => Promise<string | undefined>;
  /** The signing name when the endpoint rules name none. */
  defaultSigningName?: string;
  /** Every other built-in parameter, by its config name (`useFipsEndpoint`, `endpoint`…). */
  [name: string]: unknown;
}

/** Options for {@linkcode DirectKinesisClient}. */
export interface DirectKinesisClientOptions {
  /** The SDK client's `config`. */
  config: SdkEndpointConfig;
  /** Each operation's endpoint parameter instructions, from its SDK command class. */
  instructions: Record<DirectOperation, Record<string, EndpointInstruction>>;
  /** Resolves (and checks) the credentials before each call. */
  credentials: () => Promise<SigningCredentials & { accountId?: string | undefined }>;
  /** Called once by close(). */
  onClose?: () => void;
  /** The `fetch` to send with. */
  fetch: typeof fetch;
  /** Wall-clock milliseconds, for the signing time. @default {Date.now} */
  now?: () => number;
}

/** Kinesis over `fetch` with a body written once and signed once; see the module comment. */
export class DirectKinesisClient implements KinesisClient {
  readonly #options: DirectKinesisClientOptions;
  readonly #signer = new SigV4Signer();
  readonly #now: () => number;
  #builtIns: Promise<Record<string, unknown>> | undefined;
  #clockOffsetMs = 0;

  /**
   * Creates the client; nothing is sent until the first call.
   *
   * @param options The SDK's configuration, credentials and `fetch`.
   */
  constructor(options: DirectKinesisClientOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Sends one PutRecords request.
   *
   * @param input The request.
   * @param options The abort signal.
   * @returns The response.
   */
  putRecords(input: PutRecordsInput, options: KinesisCallOptions): Promise<PutRecordsOutput> {
    return this.#call("PutRecords", input, encodePutRecordsJson(input), options.signal);
  }

  /**
   * Lists one page of shards.
   *
   * @param input The request.
   * @param options The abort signal.
   * @returns The page.
   */
  listShards(input: ListShardsInput, options: KinesisCallOptions): Promise<ListShardsOutput> {
    return this.#call("ListShards", input, UTF8.encode(JSON.stringify(input)), options.signal);
  }

  /**
   * Describes a stream.
   *
   * @param input The request.
   * @param options The abort signal.
   * @returns The summary.
   */
  describeStreamSummary(
    input: DescribeStreamSummaryInput,
    options: KinesisCallOptions,
  ): Promise<DescribeStreamSummaryOutput> {
    const body = UTF8.encode(JSON.stringify(input));
    return this.#call("DescribeStreamSummary", input, body, options.signal);
  }

  /** Releases the SDK client. */
  close(): void {
    this.#options.onClose?.();
  }

  async #call<T>(
    operation: DirectOperation,
    input: object,
    body: Uint8Array,
    signal: AbortSignal,
  ): Promise<T> {
    const credentials = await this.#options.credentials();
    const endpoint = await this.#endpoint(operation, input, credentials.accountId);
    const scheme = endpoint.properties?.authSchemes?.[0];
    const request: Omit<SigningRequest, "date"> = {
      url: endpoint.url,
      headers: { "content-type": CONTENT_TYPE, "x-amz-target": TARGET_PREFIX + operation },
      body,
      credentials,
      region: scheme?.signingRegion ?? await this.#options.config.region(),
      service: scheme?.signingName ?? this.#options.config.defaultSigningName ?? "kinesis",
    };
    const first = await this.#send(request, signal);
    try {
      return read<T>(first.response, first.text);
    } catch (error) {
      if (!first.clockCorrected || !CLOCK_SKEW_CODES.has((error as Error).name)) throw error;
    }
    const again = await this.#send(request, signal);
    return read<T>(again.response, again.text);
  }

  /** Signs by the corrected clock, sends, and follows the answer's `Date`. */
  async #send(
    request: Omit<SigningRequest, "date">,
    signal: AbortSignal,
  ): Promise<{ response: Response; text: string; clockCorrected: boolean }> {
    const date = new Date(this.#now() + this.#clockOffsetMs);
    const headers = await this.#signer.sign({ ...request, date });
    const response = await this.#options.fetch(request.url, {
      method: "POST",
      headers,
      body: request.body as Uint8Array<ArrayBuffer>,
      signal,
    });
    const text = await response.text();
    const clockCorrected = this.#followServerClock(response.headers.get("date"));
    return { response, text, clockCorrected };
  }

  /** The endpoint the SDK's own rules choose for this call. */
  async #endpoint(
    operation: DirectOperation,
    input: object,
    accountId: string | undefined,
  ): Promise<ResolvedEndpoint> {
    const params: Record<string, unknown> = { ...await this.#resolveBuiltIns() };
    for (const [name, instruction] of Object.entries(this.#options.instructions[operation])) {
      switch (instruction.type) {
        case "staticContextParams":
          params[name] = instruction.value;
          break;
        case "contextParams":
          params[name] = (input as Record<string, unknown>)[instruction.name];
          break;
        case "operationContextParams":
          params[name] = instruction.get(input);
          break;
        default:
          // The SDK reads the account id from the credentials of each call.
          if (name === "AccountId") params[name] = accountId;
      }
    }
    const endpoint = this.#options.config.endpointProvider(params);
    // The SDK's AWS JSON 1.1 serializer sends to the endpoint's path with a slash at its end:
    // `https://host/prefix` is sent to `/prefix/`.
    if (endpoint.url.pathname.endsWith("/")) return endpoint;
    const url = new URL(endpoint.url);
    url.pathname += "/";
    return { ...endpoint, url };
  }

  /** The client-wide parameters (region, FIPS, dual stack, a custom endpoint), once. */
  #resolveBuiltIns(): Promise<Record<string, unknown>> {
    this.#builtIns ??= resolveBuiltIns(this.#options.config, this.#options.instructions);
    return this.#builtIns;
  }

  /** Whether the answer's `Date` moved the signing clock. */
  #followServerClock(date: string | null): boolean {
    if (date === null) return false;
    const server = Date.parse(date);
    if (Number.isNaN(server)) return false;
    const now = this.#now();
    if (Math.abs(server - (now + this.#clockOffsetMs)) < CLOCK_SKEW_MS) return false;
    this.#clockOffsetMs = server - now;
    return true;
  }
}

/** An answer's body as the call's output, or the error the SDK would throw for it. */
function read<T>(response: Response, text: string): T {
  // An empty body is an empty object, as the SDK reads it: a bare 500 is `Unknown`.
  let parsed: unknown = {};
  try {
    if (text !== "") parsed = JSON.parse(text);
  } catch (error) {
    // As the SDK does: a body that is not JSON is a SyntaxError, whatever the status,
    // so it reads as a transport failure and is retried.
    throw withStatus(error as Error, response.status);
  }
  // Kinesis writes no nulls; the walk runs only for answers that may hold one.
  if (response.ok) return (text.includes("null") ? withoutNulls(parsed) : parsed) as T;
  throw serviceError(response, parsed);
}

async function resolveBuiltIns(
  config: SdkEndpointConfig,
  instructions: DirectKinesisClientOptions["instructions"],
): Promise<Record<string, unknown>> {
  let custom = config.isCustomEndpoint === true;
  let configured: string | undefined;
  if (!custom && config.ignoreConfiguredEndpointUrls !== true) {
    configured = await config.serviceConfiguredEndpoint?.();
    custom = configured !== undefined;
  }
  const params: Record<string, unknown> = {};
  for (const operation of Object.values(instructions)) {
    for (const [name, instruction] of Object.entries(operation)) {
      if (instruction.type !== "builtInParams" && instruction.type !== "clientContextParams") {
        continue;
      }
      if (name === "AccountId" || name in params) continue;
      if (name === "Endpoint") {
        params[name] = custom
          ? configured ?? endpointUrl(await valueOf(config.endpoint))
          : undefined;
        continue;
      }
      params[name] = await valueOf(config[instruction.name] ?? config[name]);
    }
  }
  return params;
}

async function valueOf(value: unknown): Promise<unknown> {
  return typeof value === "function" ? await (value as () => unknown)() : value;
}

/** A custom endpoint as the SDK passes it to its rules: a URL string. */
function endpointUrl(endpoint: unknown): string | undefined {
  if (typeof endpoint === "string" || endpoint === undefined) return endpoint;
  const { url, protocol, hostname, port, path } = endpoint as {
    url?: URL;
    protocol?: string;
    hostname?: string;
    port?: number;
    path?: string;
  };
  if (url !== undefined) return url.href;
  return `${protocol}//${hostname}${port ? `:${port}` : ""}${path ?? ""}`;
}

/**
 * The answer with every `null` member removed, as the SDK's deserializer leaves them out:
 * some emulators (kinesis-local) write an absent `EndingSequenceNumber` as `null`, and the
 * producer reads absence, not null. A walk costs tens of microseconds for 500 entries where
 * a JSON.parse reviver costs a millisecond.
 */
function withoutNulls(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) withoutNulls(value[i]);
    return value;
  }
  const object = value as Record<string, unknown>;
  for (const key in object) {
    const member = object[key];
    if (member === null) delete object[key];
    else if (typeof member === "object") withoutNulls(member);
  }
  return value;
}

/**
 * An error response as the SDK throws it: `name` is the bare error code, as its AWS JSON
 * 1.1 protocol looks for one: the body's `__type`
 * (`com.amazonaws.kinesis.v20131202#ResourceNotFoundException`), else its `code` in any
 * case, else the `x-amzn-ErrorType` header, and `Unknown` when none is given;
 * `$metadata.httpStatusCode` carries the status, which describeError() reads.
 */
function serviceError(response: Response, body: unknown): Error {
  const fields = (typeof body === "object" && body !== null ? body : {}) as Record<
    string,
    unknown
  >;
  const codeKey = Object.keys(fields).find((key) => key.toLowerCase() === "code");
  const raw = fields.__type ?? (codeKey === undefined ? undefined : fields[codeKey]) ??
    response.headers.get("x-amzn-errortype");
  const code = typeof raw === "string" || typeof raw === "number" ? bareCode(String(raw)) : "";
  const message = fields.message ?? fields.Message;
  const error = new Error(typeof message === "string" ? message : "UnknownError");
  error.name = code === "" ? "Unknown" : code;
  return Object.assign(withStatus(error, response.status), {
    $fault: response.status >= 500 ? "server" : "client",
  });
}

/** `Prefix#Code:detail,more` → `Code`, as the SDK reduces an error type. */
function bareCode(raw: string): string {
  let code = raw.split(",", 1)[0]!.split(":", 1)[0]!;
  const hash = code.indexOf("#");
  if (hash !== -1) code = code.slice(hash + 1);
  return code;
}

function withStatus<E extends Error>(error: E, status: number): E {
  return Object.assign(error, { $metadata: { httpStatusCode: status } });
}
