/**
 * Wraps a producer transport ({@linkcode KinesisClient}) and records every call with its
 * timing and outcome, so tests can count requests per shard or see when the shard map was
 * refreshed, while the real transport (the AWS SDK client) does the work.
 *
 * @module
 */
import type {
  KinesisClient,
  ListShardsInput,
  ListShardsOutput,
  PutRecordsInput,
  PutRecordsOutput,
} from "../../src/kinesis_client.ts";

/** One recorded call; times are `performance.now()` milliseconds. */
export type RecordedCall =
  | {
    kind: "putRecords";
    startedAt: number;
    endedAt: number | undefined;
    input: PutRecordsInput;
    output: PutRecordsOutput | undefined;
    error: unknown;
  }
  | {
    kind: "listShards";
    startedAt: number;
    endedAt: number | undefined;
    input: ListShardsInput;
    output: ListShardsOutput | undefined;
    error: unknown;
  };

/** A transport that records, and what it recorded. */
export interface RecordingClient {
  /** Give this to the producer as `kinesisClient`. */
  readonly client: KinesisClient;
  /** Every call, in the order started. */
  readonly calls: RecordedCall[];
}

/**
 * Wraps `inner` so every call is recorded.
 *
 * @param inner The real transport.
 * @returns The wrapper and its record.
 *
 * @example Counting ListShards calls
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const inner = {
 *   putRecords: () => Promise.resolve({ Records: [] }),
 *   listShards: () => Promise.resolve({ Shards: [] }),
 * };
 * const recording = recordingClient(inner);
 * await recording.client.listShards({ StreamName: "s" }, { signal: new AbortController().signal });
 * assert.equal(recording.calls.filter((call) => call.kind === "listShards").length, 1);
 * ```
 */
export function recordingClient(inner: KinesisClient): RecordingClient {
  const calls: RecordedCall[] = [];
  async function recorded<I, O>(
    kind: RecordedCall["kind"],
    input: I,
    send: () => Promise<O>,
  ): Promise<O> {
    const call = {
      kind,
      startedAt: performance.now(),
      endedAt: undefined as number | undefined,
      input,
      output: undefined as O | undefined,
      error: undefined as unknown,
    };
    calls.push(call as RecordedCall);
    try {
      call.output = await send();
      return call.output;
    } catch (error) {
      call.error = error;
      throw error;
    } finally {
      call.endedAt = performance.now();
    }
  }
  const client: KinesisClient = {
    putRecords: (input, options) =>
      recorded("putRecords", input, () => inner.putRecords(input, options)),
    listShards: (input, options) =>
      recorded("listShards", input, () => inner.listShards(input, options)),
    close: () => inner.close?.(),
  };
  return { client, calls };
}
