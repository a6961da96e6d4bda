/**
 * The Kinesis calls the producer makes, as an interface, and the default client that
 * implements it: the AWS SDK, loaded with a dynamic `import()` only when a producer needs
 * it and none was injected, supplies region, credentials and endpoint, and the requests go
 * out through the direct transport (`_direct_client.ts`) or the SDK itself. Tests and
 * custom transports pass their own.
 *
 * @module
 */

import { ErrorCodes } from "./error_codes.ts";
import { holdingFetch } from "./_holding_fetch.ts";
import {
  DirectKinesisClient,
  type DirectKinesisClientOptions,
  type SdkEndpointConfig,
} from "./_direct_client.ts";

/** One entry of a PutRecords request. */
export interface PutRecordsRequestEntry {
  /**
   * The Kinesis record's bytes, valid until the call's promise settles: the producer then
   * reuses an aggregate's memory, so a client that keeps them past that copies them.
   */
  Data: Uint8Array;
  /** The Kinesis record's partition key. */
  PartitionKey: string;
  /** Routes the entry by this decimal hash key instead of the partition key's MD5. */
  ExplicitHashKey?: string;
}

/**
 * A PutRecords request. The producer sets exactly one of `StreamName` and `StreamARN`: the
 * ARN when the record's stream was given as one.
 */
export interface PutRecordsInput {
  /** The stream's name. */
  StreamName?: string;
  /** The stream's ARN, `arn:aws:kinesis:<region>:<account>:stream/<name>`. */
  StreamARN?: string;
  /** Up to 500 entries. */
  Records: PutRecordsRequestEntry[];
}

/** One entry of a PutRecords response, aligned with the request's entries. */
export interface PutRecordsResultEntry {
  /** Set when the entry was stored. */
  SequenceNumber?: string | undefined;
  /** The shard that stored the entry. */
  ShardId?: string | undefined;
  /** Set when the entry failed. */
  ErrorCode?: string | undefined;
  /** The failure's message. */
  ErrorMessage?: string | undefined;
}

/** A PutRecords response. */
export interface PutRecordsOutput {
  /** How many entries failed. */
  FailedRecordCount?: number | undefined;
  /** One result per request entry, in order. */
  Records?: PutRecordsResultEntry[] | undefined;
}

/** A ListShards request: either the first page (stream and filter) or a later one. */
export interface ListShardsInput {
  /** The stream's name (first page only, unless the stream was given by ARN). */
  StreamName?: string;
  /** The stream's ARN (first page only, when the stream was given by ARN). */
  StreamARN?: string;
  /** The token from the previous page (later pages only). */
  NextToken?: string;
  /** Page size. */
  MaxResults?: number;
  /** Which shards to list; the producer asks for the open ones (`AT_LATEST`). */
  ShardFilter?: { Type: "AT_LATEST" };
}

/** One shard of a ListShards response. */
export interface ListedShard {
  /** `shardId-000000000000`. */
  ShardId?: string | undefined;
  /** The shard's inclusive hash key range, in decimal. */
  HashKeyRange?:
    | { StartingHashKey?: string | undefined; EndingHashKey?: string | undefined }
    | undefined;
  /** Set with an ending sequence number when the shard is closed. */
  SequenceNumberRange?: { EndingSequenceNumber?: string | undefined } | undefined;
}

/** A ListShards response. */
export interface ListShardsOutput {
  /** The page's shards. */
  Shards?: ListedShard[] | undefined;
  /** Set when there are more pages. */
  NextToken?: string | undefined;
}

/** A DescribeStreamSummary request: the stream by name or by ARN. */
export interface DescribeStreamSummaryInput {
  /** The stream's name. */
  StreamName?: string;
  /** The stream's ARN. */
  StreamARN?: string;
}

/** The part of a DescribeStreamSummary response the producer reads. */
export interface DescribeStreamSummaryOutput {
  /** The stream's summary. */
  StreamDescriptionSummary?: {
    /** The stream's name. */
    StreamName?: string | undefined;
    /** The stream's ARN. */
    StreamARN?: string | undefined;
    /** The largest record the stream takes, in KiB; absent means 1024 (1 MiB). */
    MaxRecordSizeInKiB?: number | undefined;
  } | undefined;
}

/** Options passed with every call. */
export interface KinesisCallOptions {
  /** Aborts the call (request timeout, or the producer closing). */
  signal: AbortSignal;
}

/** The transport the producer uses. */
export interface KinesisClient {
  /**
   * Sends one PutRecords request.
   *
   * @param input The request.
   * @param options The abort signal.
   * @returns The response; throws for a request-level failure.
   */
  putRecords(input: PutRecordsInput, options: KinesisCallOptions): Promise<PutRecordsOutput>;
  /**
   * Lists one page of shards.
   *
   * @param input The request.
   * @param options The abort signal.
   * @returns The page; throws on failure.
   */
  listShards(input: ListShardsInput, options: KinesisCallOptions): Promise<ListShardsOutput>;
  /**
   * Describes a stream; optional. The producer calls it once per stream when
   * `maxRecordSize` is `"stream"`, to read the stream's `MaxRecordSizeInKiB`.
   *
   * @param input The request.
   * @param options The abort signal.
   * @returns The summary; throws on failure.
   */
  describeStreamSummary?(
    input: DescribeStreamSummaryInput,
    options: KinesisCallOptions,
  ): Promise<DescribeStreamSummaryOutput>;
  /** Releases connections; called once when the producer closes. */
  close?(): void | Promise<void>;
}

/** Credentials for the default client; omitted means the SDK's default provider chain. */
export interface KinesisCredentials {
  /** The access key id. */
  accessKeyId: string;
  /** The secret access key. */
  secretAccessKey: string;
  /** The session token of temporary credentials. */
  sessionToken?: string;
}

/**
 * How the default client speaks to Kinesis: `"direct"` writes each request itself and signs
 * it with Web Crypto; `"sdk"` sends it through `@aws-sdk/client-kinesis`. Both take the
 * region, credentials and endpoint from the SDK.
 */
export type KinesisTransport = "direct" | "sdk";

/** How to build the default, SDK-based client. */
export interface DefaultKinesisClientOptions {
  /** AWS region; the SDK's chain when omitted. */
  region?: string | undefined;
  /** Endpoint URL, e.g. a local emulator. */
  endpoint?: string | undefined;
  /** Static credentials or an SDK credential provider function. */
  credentials?: KinesisCredentials | (() => Promise<KinesisCredentials>) | undefined;
  /** The transport. @default {"direct"} */
  transport?: KinesisTransport | undefined;
}

/** An error reduced to what the retrier and the results need. */
export interface DescribedError {
  /** The Kinesis error code, or one of the producer's own codes. */
  code: string;
  /** A message safe to show: never contains credentials. */
  message: string;
}

// Names of the runtime's own error classes: a client that throws one of these failed in
// transport (connection refused or reset, DNS, an abort), not with a Kinesis error code.
const TRANSPORT_ERROR_NAMES: ReadonlySet<string> = new Set([
  "Error",
  "TypeError",
  "AbortError",
  "TimeoutError",
  "DOMException",
  "SyntaxError",
  "RangeError",
  "FetchError",
]);

/**
 * Reduces anything a client threw to a code and a message. A service error (the SDK's
 * exceptions, or any error a custom client names after a Kinesis error code) keeps its
 * name as the code; anything else is a `NetworkError`.
 *
 * @param error What was thrown.
 * @param timedOut Whether the producer aborted the call because it took too long.
 * @returns The code and message.
 */
export function describeError(error: unknown, timedOut: boolean): DescribedError {
  if (timedOut) {
    return { code: ErrorCodes.requestTimeout, message: "PutRecords request timed out" };
  }
  if (typeof error !== "object" || error === null) {
    return { code: ErrorCodes.networkError, message: String(error) };
  }
  const { name, message, cause, $metadata } = error as {
    name?: unknown;
    message?: unknown;
    cause?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  const text = typeof message === "string" ? message : String(error);
  // The SDK names an HTTP 413 "Unknown"; the endpoint refused the body's size, and sending
  // the same body again cannot help (kinesalite answers 413 above about 6 MiB).
  if ($metadata?.httpStatusCode === 413) {
    return {
      code: ErrorCodes.requestTooLarge,
      message: "The endpoint refused the request's size (HTTP 413)",
    };
  }
  if (typeof name === "string" && name !== "" && !TRANSPORT_ERROR_NAMES.has(name)) {
    return { code: name, message: text };
  }
  // Deno's fetch says only "fetch failed" and keeps the detail in `cause`.
  return { code: ErrorCodes.networkError, message: withCause(text, cause) };
}

function withCause(message: string, cause: unknown): string {
  if (!(cause instanceof Error) || cause.message === "" || message.includes(cause.message)) {
    return message;
  }
  return `${message}: ${cause.message}`;
}

/**
 * What is wrong with a static credentials object, or `undefined` when its shape is right.
 * Names fields, never their values.
 *
 * @param value A candidate credentials object.
 * @returns The problem, or `undefined`.
 */
export function credentialsProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) {
    return `got ${value === null ? "null" : typeof value}`;
  }
  const { accessKeyId, secretAccessKey, sessionToken } = value as Record<string, unknown>;
  if (typeof accessKeyId !== "string" || accessKeyId === "") {
    return "'accessKeyId' is missing or not a non-empty string";
  }
  if (typeof secretAccessKey !== "string" || secretAccessKey === "") {
    return "'secretAccessKey' is missing or not a non-empty string";
  }
  if (sessionToken !== undefined && typeof sessionToken !== "string") {
    return "'sessionToken' is not a string";
  }
  return undefined;
}

/**
 * An error's message without the stack trace some runtimes append to it (Deno's module
 * errors do), so results and logs carry one readable line.
 *
 * @param error What was thrown.
 * @returns The first line of its message.
 */
export function firstLine(error: unknown): string {
  const text = !(error instanceof Error)
    ? String(error)
    : error.name === "Error"
    ? error.message
    : `${error.name}: ${error.message}`;
  const end = text.indexOf("\n");
  return end === -1 ? text : text.slice(0, end);
}

function namedError(code: string, message: string): Error {
  const error = new Error(message);
  error.name = code;
  return error;
}

/**
 * Turns a failure to obtain credentials into a `CredentialsError` (permanent), or a
 * `CredentialsUnavailable` (retried) when the provider marked its error as retryable,
 * as the SDK's own providers do for a metadata service that did not answer.
 */
function credentialsFailure(error: unknown): Error {
  const flags = (typeof error === "object" && error !== null ? error : {}) as {
    $retryable?: unknown;
    retryable?: unknown;
  };
  const recoverable = Boolean(flags.$retryable) || flags.retryable === true;
  const message = error instanceof Error ? error.message.split("\n", 1)[0]! : String(error);
  return namedError(
    recoverable ? ErrorCodes.credentialsUnavailable : ErrorCodes.credentialsError,
    `The credentials could not be resolved: ${message}`,
  );
}

// The SDK packages as Deno finds them without the import map of this repository (a
// script outside the clone, or a project of its own): npm specifiers. Bun and Node
// resolve the bare names from node_modules.
type Sdk = [
  typeof import("@aws-sdk/client-kinesis"),
  typeof import("@smithy/fetch-http-handler"),
];

async function loadSdk(): Promise<Sdk> {
  try {
    return await Promise.all([
      import("@aws-sdk/client-kinesis"),
      import("@smithy/fetch-http-handler"),
    ]);
  } catch (error) {
    try {
      return await Promise.all([
        import("npm:@aws-sdk/client-kinesis@^3.1143.0"),
        import("npm:@smithy/fetch-http-handler@^5.8.1"),
      ]) as Sdk;
    } catch {
      throw error;
    }
  }
}

/**
 * Builds the default client. The AWS SDK (`@aws-sdk/client-kinesis`) supplies the region,
 * the credentials (its provider chain, asked before each call, so it refreshes them as it
 * does for its own calls) and the endpoint (its own rules, per operation and stream ARN).
 * The `"direct"` transport (the default) writes each PutRecords body once and signs it
 * with Web Crypto (src/_direct_client.ts); `"sdk"` sends through the SDK, speaking through
 * Web `fetch` (`@smithy/fetch-http-handler`) with the SDK's own retries off: the producer
 * owns the retry policy. Either way a missing or malformed credential fails as
 * `CredentialsError`, once: later calls fail the same way without asking the provider again.
 *
 * @param options Region, endpoint, credentials and transport.
 * @returns A client for the producer.
 */
export async function createDefaultKinesisClient(
  options: DefaultKinesisClientOptions,
): Promise<KinesisClient> {
  const [sdk, fetchHandler] = await loadSdk();
  // The request timeout is enforced by the producer's abort signal: the handler's own
  // timeout rejects the call but leaves the fetch running.
  const config: Record<string, unknown> = {
    maxAttempts: 1,
    requestHandler: new fetchHandler.FetchHttpHandler({ customFetch: holdingFetch() }),
  };
  if (options.region !== undefined) config.region = options.region;
  if (options.endpoint !== undefined) config.endpoint = options.endpoint;
  if (options.credentials !== undefined) config.credentials = options.credentials;
  const client = new sdk.KinesisClient(config);
  // The SDK resolves the region lazily; resolving it now turns a missing region into one
  // clear, permanent failure instead of a retried error on every call.
  try {
    await client.config.region();
  } catch (error) {
    client.destroy();
    throw error;
  }
  const credentials = checkedCredentials(() => client.config.credentials());
  if (options.transport === "sdk") {
    return {
      async putRecords(input, { signal }) {
        await credentials();
        return resentOnClockSkew(() =>
          client.send(new sdk.PutRecordsCommand(input), { abortSignal: signal })
        );
      },
      async listShards(input, { signal }) {
        await credentials();
        return resentOnClockSkew(() =>
          client.send(new sdk.ListShardsCommand(input), { abortSignal: signal })
        );
      },
      async describeStreamSummary(input, { signal }) {
        await credentials();
        return resentOnClockSkew(() =>
          client.send(new sdk.DescribeStreamSummaryCommand(input), { abortSignal: signal })
        );
      },
      close() {
        client.destroy();
      },
    };
  }
  return new DirectKinesisClient({
    config: client.config as unknown as SdkEndpointConfig,
    instructions: {
      PutRecords: sdk.PutRecordsCommand.getEndpointParameterInstructions(),
      ListShards: sdk.ListShardsCommand.getEndpointParameterInstructions(),
      DescribeStreamSummary: sdk.DescribeStreamSummaryCommand.getEndpointParameterInstructions(),
    } as DirectKinesisClientOptions["instructions"],
    credentials,
    fetch: holdingFetch(),
    onClose: () => client.destroy(),
  });
}

/**
 * Sends once more when the SDK corrected its clock by the refusal's `Date`: its retry
 * strategy would, but with `maxAttempts: 1` it only marks the error. A signature refused as
 * expired is otherwise permanent (src/error_codes.ts); the direct transport does the same.
 */
async function resentOnClockSkew<T>(send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    const { $metadata } = (error ?? {}) as { $metadata?: { clockSkewCorrected?: unknown } };
    if ($metadata?.clockSkewCorrected !== true) throw error;
  }
  return send();
}

/**
 * Wraps the SDK's credential provider: each call asks it (it caches and refreshes) and
 * checks what it gave. A permanent failure is kept and thrown again without asking.
 */
function checkedCredentials(
  provide: () => Promise<unknown>,
): () => Promise<KinesisCredentials & { accountId?: string }> {
  let failed: Error | undefined;
  return async () => {
    if (failed !== undefined) throw failed;
    let resolved: unknown;
    try {
      resolved = await provide();
    } catch (error) {
      const failure = credentialsFailure(error);
      if (failure.name === ErrorCodes.credentialsError) failed = failure;
      throw failure;
    }
    const problem = credentialsProblem(resolved);
    if (problem !== undefined) {
      failed = namedError(
        ErrorCodes.credentialsError,
        `The resolved credentials are not valid: ${problem}`,
      );
      throw failed;
    }
    return resolved as KinesisCredentials & { accountId?: string };
  };
}
