// The largest record one stream takes, when `maxRecordSize` is "stream": read once with
// DescribeStreamSummary (`MaxRecordSizeInKiB`, 1024 when absent), so put() can refuse a
// record the stream would refuse. Until the answer, and when the call fails or the client
// has no describeStreamSummary(), the limit stays at 10 MiB and Kinesis itself refuses an
// oversized record, at once, with its own code (docs/architecture.md, "Validation").

import { streamTarget } from "./_stream_ref.ts";
import { describeError, type KinesisClient } from "./kinesis_client.ts";
import type { Logger } from "./logger.ts";

/** What a stream takes when DescribeStreamSummary does not say: Kinesis' default, 1 MiB. */
const DEFAULT_STREAM_KIB = 1024;

/** One stream's record size limit, learnt once. */
export class RecordLimit {
  /** Largest data plus partition key, in bytes: the bound until the stream has answered. */
  bytes: number;
  /** Whether the stream answered. */
  fromStream = false;
  readonly #abort = new AbortController();
  #reading: Promise<void> | undefined;

  /** @param bound The largest limit there is (10 MiB). */
  constructor(bound: number) {
    this.bytes = bound;
  }

  /**
   * Reads the stream's limit, once; later calls return the first call's promise.
   *
   * @returns A promise that resolves when the limit is known or the reading failed.
   */
  read(stream: string, client: () => Promise<KinesisClient>, logger: Logger): Promise<void> {
    this.#reading ??= this.#read(stream, client, logger);
    return this.#reading;
  }

  /** Stops a reading still on its way (the producer is closing). */
  close(): void {
    this.#abort.abort();
  }

  async #read(stream: string, client: () => Promise<KinesisClient>, logger: Logger) {
    let problem: string;
    try {
      const kinesis = await client();
      if (kinesis.describeStreamSummary !== undefined) {
        const output = await kinesis.describeStreamSummary(streamTarget(stream), {
          signal: this.#abort.signal,
        });
        const kib = output.StreamDescriptionSummary?.MaxRecordSizeInKiB ?? DEFAULT_STREAM_KIB;
        this.bytes = Math.min(this.bytes, kib * 1024);
        this.fromStream = true;
        return;
      }
      problem = "the Kinesis client has no describeStreamSummary()";
    } catch (error) {
      if (this.#abort.signal.aborted) return;
      const { code, message } = describeError(error, false);
      problem = `${code}: ${message}`;
    }
    logger.warn(
      `Reading the record size limit of '${stream}' failed (${problem}); records up to ${this.bytes} bytes are sent, and Kinesis refuses what the stream does not take`,
    );
  }
}
