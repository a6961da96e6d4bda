/**
 * The two Kinesis calls the producer makes, as an interface. By default the AWS SDK
 * implements it, loaded with a dynamic `import()` only when a producer needs it and none
 * was injected; tests and custom transports pass their own.
 *
 * @module
 */

import { ErrorCodes } from "./error_codes.ts";

/** One entry of a PutRecords request. */
export interface PutRecordsRequestEntry {
  /** The Kinesis record's bytes. */
  Data: Uint8Array;
  /** The Kinesis record's partition key. */
  PartitionKey: string;
  /** Routes the entry by this decimal hash key instead of the partition key's MD5. */
  ExplicitHashKey?: string;
}

/** A PutRecords request. */
export interface PutRecordsInput {
  /** The stream. */
  StreamName: string;
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
  /** The stream (first page only). */
  StreamName?: string;
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

/** How to build the default, SDK-based client. */
export interface DefaultKinesisClientOptions {
  /** AWS region; the SDK's chain when omitted. */
  region?: string | undefined;
  /** Endpoint URL, e.g. a local emulator. */
  endpoint?: string | undefined;
  /** Static credentials or an SDK credential provider function. */
  credentials?: KinesisCredentials | (() => Promise<KinesisCredentials>) | undefined;
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
  const { name, message } = error as { name?: unknown; message?: unknown };
  const text = typeof message === "string" ? message : String(error);
  if (typeof name === "string" && name !== "" && !TRANSPORT_ERROR_NAMES.has(name)) {
    return { code: name, message: text };
  }
  return { code: ErrorCodes.networkError, message: text };
}

/**
 * Builds the default client on `@aws-sdk/client-kinesis`, speaking through Web `fetch`
 * (`@smithy/fetch-http-handler`) with the SDK's own retries off: the producer owns the
 * retry policy.
 *
 * @param options Region, endpoint, credentials and request timeout.
 * @returns A client for the producer.
 */
export async function createDefaultKinesisClient(
  options: DefaultKinesisClientOptions,
): Promise<KinesisClient> {
  const [sdk, fetchHandler] = await Promise.all([
    import("@aws-sdk/client-kinesis"),
    import("@smithy/fetch-http-handler"),
  ]);
  // The request timeout is enforced by the producer's abort signal: the handler's own
  // timeout rejects the call but leaves the fetch running.
  const config: Record<string, unknown> = {
    maxAttempts: 1,
    requestHandler: new fetchHandler.FetchHttpHandler(),
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
  return {
    putRecords(input, { signal }) {
      return client.send(new sdk.PutRecordsCommand(input), { abortSignal: signal });
    },
    listShards(input, { signal }) {
      return client.send(new sdk.ListShardsCommand(input), { abortSignal: signal });
    },
    close() {
      client.destroy();
    },
  };
}
