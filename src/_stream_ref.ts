// How a record names its stream: a stream name, or a stream ARN (the way to write to a
// stream of another account, and what AWS recommends on PutRecords and ListShards). The
// pipeline is keyed by the string as given; requests carry it as `StreamARN` or
// `StreamName`, and metrics always carry the name (docs/architecture.md, "Validation").

const STREAM_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;
// arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name>, as the Kinesis API
// reference describes StreamARN
// (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html).
const STREAM_ARN =
  /^arn:aws(?:-[a-z]+)*:kinesis:[a-z]{2}(?:-[a-z]+)+-\d+:\d{12}:stream\/([a-zA-Z0-9_.-]{1,128})$/;
const ARN_PREFIX = "arn:";

/** What a stream must look like, for error messages. */
export const STREAM_RULE =
  "a stream name (1 to 128 letters, digits, '_', '.' or '-') or a stream ARN (arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name>)";

/** A request's stream field: the ARN when the stream was given by one, else the name. */
export type StreamTarget = { StreamName: string } | { StreamARN: string };

/**
 * Whether `value` is a valid stream name or stream ARN.
 *
 * @param value A candidate.
 * @returns `true` when valid.
 */
export function isValidStream(value: unknown): value is string {
  if (typeof value !== "string") return false;
  return value.startsWith(ARN_PREFIX) ? STREAM_ARN.test(value) : STREAM_NAME.test(value);
}

/**
 * The stream name of a valid stream name or ARN: metrics and messages use it.
 *
 * @param stream A valid stream name or ARN.
 * @returns The name.
 */
export function streamNameOf(stream: string): string {
  return stream.startsWith(ARN_PREFIX) ? stream.slice(stream.lastIndexOf("/") + 1) : stream;
}

/**
 * The stream field of a request for a valid stream name or ARN: `StreamARN` alone for an
 * ARN (a name beside it would name a stream of the caller's own account), else `StreamName`.
 *
 * @param stream A valid stream name or ARN.
 * @returns A new object to spread into the request.
 */
export function streamTarget(stream: string): StreamTarget {
  return stream.startsWith(ARN_PREFIX) ? { StreamARN: stream } : { StreamName: stream };
}
