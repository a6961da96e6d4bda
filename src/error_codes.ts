/**
 * How the producer reads an error code: whether retrying can help. Codes come from
 * PutRecords (per request or per record) or from the producer itself.
 *
 * @module
 */

/** What the retrier does with a failure. */
export type ErrorClass = "throttle" | "transient" | "permanent";

/** The producer's own codes, in the spelling of the C++ KPL where it has one. */
export const ErrorCodes = {
  /** The record's TTL ran out before it was confirmed. */
  expired: "Expired",
  /** A multi-record Kinesis record landed on a shard that does not hold this record's hash. */
  wrongShard: "Wrong Shard",
  /** PutRecords answered with a different number of entries than it was sent. */
  recordCountMismatch: "Record Count Mismatch",
  /** `close()` ended before the record was confirmed. */
  producerClosed: "ProducerClosed",
  /** The request took longer than `requestTimeoutMs` and was aborted. */
  requestTimeout: "RequestTimeout",
  /** The request never got an HTTP answer (connection refused, reset, DNS). */
  networkError: "NetworkError",
  /** The default Kinesis client could not be created (the SDK failed to load, no region). */
  clientError: "ClientError",
  /**
   * The credentials are missing, malformed, or their provider failed: permanent, and
   * found once (every later call fails the same way without asking the provider again).
   */
  credentialsError: "CredentialsError",
  /** The credentials provider failed but marked its error as retryable. */
  credentialsUnavailable: "CredentialsUnavailable",
  /** The endpoint refused the request's size (HTTP 413 Request Entity Too Large). */
  requestTooLarge: "RequestEntityTooLarge",
  /** Per-record Kinesis throttling. */
  throughputExceeded: "ProvisionedThroughputExceededException",
} as const;

// Retrying cannot fix these: the stream, the key, the permissions or the request are
// wrong. Failing at once is the fix for C++ KPL users who waited 30 s to see `Expired`.
const PERMANENT: ReadonlySet<string> = new Set([
  "ResourceNotFoundException",
  "AccessDeniedException",
  "ValidationException",
  "InvalidArgumentException",
  "KMSDisabledException",
  "KMSNotFoundException",
  "KMSInvalidStateException",
  "KMSAccessDeniedException",
  "KMSOptInRequired",
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "IncompleteSignature",
  "MissingAuthenticationToken",
  "InvalidClientTokenId",
  "NotAuthorized",
  "OptInRequired",
  ErrorCodes.recordCountMismatch,
  ErrorCodes.requestTooLarge,
  ErrorCodes.clientError,
  ErrorCodes.credentialsError,
  // The runtime or the SDK cannot make the call at all: a denied permission (Deno) or no
  // credentials anywhere in the provider chain.
  "NotCapable",
  "PermissionDenied",
  "CredentialsProviderError",
]);

/**
 * Classifies an error code. Anything not known to be permanent is treated as transient,
 * so an unfamiliar code costs retries until the TTL rather than a record.
 *
 * @param code The error code.
 * @returns `"throttle"` for per-shard throttling, `"permanent"` when retrying cannot
 * help, `"transient"` otherwise.
 *
 * @example Classifying codes
 * ```ts
 * import { classifyErrorCode } from "@webkpl/kpl";
 *
 * console.log(classifyErrorCode("ProvisionedThroughputExceededException")); // "throttle"
 * console.log(classifyErrorCode("InternalFailure")); // "transient"
 * console.log(classifyErrorCode("ResourceNotFoundException")); // "permanent"
 * ```
 */
export function classifyErrorCode(code: string): ErrorClass {
  if (code === ErrorCodes.throughputExceeded) return "throttle";
  return PERMANENT.has(code) ? "permanent" : "transient";
}
