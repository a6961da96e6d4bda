// The producer's start-up check (`Producer.ready()`): can a client be built, do the
// credentials resolve, and does the default stream answer ListShards? A failure that no
// record could get past (no region, bad credentials, an unusable client) is reported as a
// verdict the producer keeps, so every later record fails with the same code at once
// instead of each one finding the problem again.

import { classifyErrorCode, ErrorCodes } from "./error_codes.ts";
import { type DescribedError, describeError, type KinesisClient } from "./kinesis_client.ts";
import { Deadline, type Scheduler } from "./scheduler.ts";
import { streamTarget } from "./_stream_ref.ts";

/** What the check needs from the producer. */
export interface ReadinessOptions {
  /** The producer's client, created on first use. */
  client(): Promise<KinesisClient>;
  /** The default stream, when there is one. */
  stream: string | undefined;
  /** Drives the ListShards timeout on the producer's clock. */
  scheduler: Scheduler;
  /** How long the ListShards call may take. */
  requestTimeoutMs: number;
  /** Stops waiting; the check rejects with the signal's reason. */
  signal: AbortSignal | undefined;
}

/** What the check found. */
export interface ReadinessFailure extends DescribedError {
  /** Retrying cannot fix it. */
  permanent: boolean;
  /** No record can get past it, whatever its stream: the producer keeps the verdict. */
  affectsEveryRecord: boolean;
}

// Permanent failures of the client itself rather than of one stream: a missing stream or
// a denied action concerns one stream's records only.
const CLIENT_LEVEL: ReadonlySet<string> = new Set([
  ErrorCodes.clientError,
  ErrorCodes.credentialsError,
  "CredentialsProviderError",
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "IncompleteSignature",
  "MissingAuthenticationToken",
  "InvalidClientTokenId",
  "NotCapable",
  "PermissionDenied",
]);

/**
 * Builds the client and lists the default stream's first page of shards.
 *
 * @returns `undefined` when everything answered, else what failed.
 */
export async function checkReadiness(
  options: ReadinessOptions,
): Promise<ReadinessFailure | undefined> {
  const { signal } = options;
  signal?.throwIfAborted();
  let client: KinesisClient;
  try {
    client = await options.client();
  } catch (error) {
    return verdict(describeError(error, false));
  }
  const { stream, scheduler } = options;
  if (stream === undefined) return undefined;
  const abort = new AbortController();
  let timedOut = false;
  const timeout = new Deadline({
    onDeadline: () => {
      timedOut = true;
      abort.abort();
    },
  });
  const onAbort = (): void => abort.abort(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  scheduler.schedule(timeout, scheduler.clock.now() + options.requestTimeoutMs);
  try {
    await client.listShards(
      { ...streamTarget(stream), MaxResults: 1, ShardFilter: { Type: "AT_LATEST" } },
      { signal: abort.signal },
    );
    return undefined;
  } catch (error) {
    signal?.throwIfAborted();
    return verdict(
      timedOut
        ? {
          code: ErrorCodes.requestTimeout,
          message: `ListShards did not answer within ${options.requestTimeoutMs} ms`,
        }
        : describeError(error, false),
    );
  } finally {
    scheduler.cancel(timeout);
    signal?.removeEventListener("abort", onAbort);
  }
}

function verdict(failure: DescribedError): ReadinessFailure {
  const permanent = classifyErrorCode(failure.code) === "permanent";
  return { ...failure, permanent, affectsEveryRecord: permanent && CLIENT_LEVEL.has(failure.code) };
}
