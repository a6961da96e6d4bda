/**
 * Sends PutRecords requests, at most `maxInFlightRequests` and `maxInFlightBytes` at a
 * time, each bounded by `requestTimeoutMs` through an AbortSignal.
 *
 * @module
 */

import {
  type DescribedError,
  describeError,
  type KinesisClient,
  type PutRecordsInput,
  type PutRecordsRequestEntry,
  type PutRecordsResultEntry,
} from "./kinesis_client.ts";
import type { KinesisRecord } from "./kinesis_record.ts";
import { Deadline, type DeadlineTask, type Scheduler } from "./scheduler.ts";
import { ErrorCodes } from "./error_codes.ts";
import { Queue } from "./_queue.ts";
import { streamTarget } from "./_stream_ref.ts";
import type { Logger } from "./logger.ts";

/** One PutRecords call and, once it ends, its outcome. */
export class PutRecordsCall implements DeadlineTask {
  /** The stream. */
  readonly stream: string;
  /** The Kinesis records, in request order. */
  records: KinesisRecord[];
  /** Clock time the request was sent. */
  startedAt = 0;
  /** Clock time the request ended. */
  endedAt = 0;
  /** What the request counts against `maxInFlightBytes`, set when it starts. */
  bytes = 0;
  /** Set when the whole request failed. */
  error: DescribedError | undefined = undefined;
  /** The per-entry results when the request succeeded. */
  entries: PutRecordsResultEntry[] | undefined = undefined;
  /** @internal */
  readonly timeout: Deadline;
  /** @internal */
  readonly abortController = new AbortController();
  #timedOut = false;

  /**
   * Creates a call.
   *
   * @param stream The stream.
   * @param records The Kinesis records.
   */
  constructor(stream: string, records: KinesisRecord[]) {
    this.stream = stream;
    this.records = records;
    this.timeout = new Deadline(this);
  }

  /** Whether the producer aborted the call because it took too long. */
  get timedOut(): boolean {
    return this.#timedOut;
  }

  /** @internal The request timeout fired. */
  onDeadline(): void {
    this.#timedOut = true;
    this.abortController.abort();
  }
}

/** Options for {@linkcode Sender}. */
export interface SenderOptions {
  /** Resolves the Kinesis client (created on first use). */
  client: () => Promise<KinesisClient>;
  /** Drives request timeouts. */
  scheduler: Scheduler;
  /** Most requests in flight at once. */
  maxInFlight: number;
  /**
   * Most bytes (data plus partition keys) of the requests in flight; a request larger
   * than this goes alone. @default {unbounded}
   */
  maxInFlightBytes?: number;
  /** Per-request timeout in milliseconds. */
  requestTimeoutMs: number;
  /** Receives Kinesis records whose earliest member expired while the request queued. */
  onExpired(record: KinesisRecord): void;
  /** Receives every finished call. */
  onResult(call: PutRecordsCall): void;
  /** Where a failure inside `onResult` is reported. */
  logger: Logger;
}

/** Runs PutRecords calls with bounded concurrency and bounded bytes in flight. */
export class Sender {
  readonly #options: SenderOptions;
  readonly #scheduler: Scheduler;
  readonly #waiting = new Queue<PutRecordsCall>();
  readonly #inFlight = new Set<PutRecordsCall>();
  #inFlightBytes = 0;
  #idleWaiters: (() => void)[] = [];
  #closed = false;
  #pumping = false;

  /**
   * Creates a sender.
   *
   * @param options The client, the limits and the result callback.
   */
  constructor(options: SenderOptions) {
    this.#options = options;
    this.#scheduler = options.scheduler;
  }

  /** Requests on the wire now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Bytes (data plus partition keys) of the requests on the wire now. */
  get inFlightBytes(): number {
    return this.#inFlightBytes;
  }

  /** Requests waiting for a free slot. */
  get queued(): number {
    return this.#waiting.size;
  }

  /**
   * Sends a request now, or queues it until a slot frees.
   *
   * @param stream The stream.
   * @param records The request's Kinesis records.
   */
  send(stream: string, records: KinesisRecord[]): void {
    const call = new PutRecordsCall(stream, records);
    if (this.#closed) {
      this.#endUnsent(call, this.#scheduler.clock.now());
      return;
    }
    this.#waiting.push(call);
    this.#pump();
  }

  /**
   * Sends nothing more: aborts the requests in flight and finishes the queued ones with
   * `ProducerClosed`, each through `onResult`.
   */
  close(): void {
    this.#closed = true;
    for (const call of this.#inFlight) call.abortController.abort();
    const queued = this.#waiting.drain();
    const now = this.#scheduler.clock.now();
    for (const call of queued) this.#endUnsent(call, now);
    this.#checkIdle();
  }

  /**
   * Resolves when no request is in flight or queued.
   *
   * @returns A promise that resolves once idle.
   */
  idle(): Promise<void> {
    if (this.#inFlight.size === 0 && this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Ends a call that was never sent because the producer closed. */
  #endUnsent(call: PutRecordsCall, now: number): void {
    call.startedAt = now;
    call.endedAt = now;
    call.error = {
      code: ErrorCodes.producerClosed,
      message: "The producer closed before the request was sent",
    };
    this.#deliver(call);
  }

  #pump(): void {
    // Dropping an expired record can send its siblings again before this loop moves on;
    // their call is queued, and this loop, which reads the queue afresh, starts it.
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      const max = this.#options.maxInFlight;
      const maxBytes = this.#options.maxInFlightBytes ?? Infinity;
      const waiting = this.#waiting;
      while (this.#inFlight.size < max && waiting.size > 0) {
        const call = waiting.peek()!;
        if (!this.#dropExpired(call)) {
          waiting.shift();
          continue;
        }
        const bytes = requestBytes(call);
        // A request larger than the bound goes once nothing else is in flight, so it waits
        // but never waits forever.
        if (this.#inFlight.size > 0 && this.#inFlightBytes + bytes > maxBytes) break;
        waiting.shift();
        call.bytes = bytes;
        this.#start(call);
      }
    } finally {
      this.#pumping = false;
    }
    this.#checkIdle();
  }

  /** Takes out Kinesis records that expired while queued; `false` when none is left. */
  #dropExpired(call: PutRecordsCall): boolean {
    const now = this.#scheduler.clock.now();
    let expired = false;
    for (const record of call.records) {
      if (record.expiresAt <= now) expired = true;
    }
    if (!expired) return true;
    const live: KinesisRecord[] = [];
    for (const record of call.records) {
      if (record.expiresAt <= now) this.#options.onExpired(record);
      else live.push(record);
    }
    call.records = live;
    return live.length > 0;
  }

  #start(call: PutRecordsCall): void {
    this.#inFlight.add(call);
    this.#inFlightBytes += call.bytes;
    const entries: PutRecordsRequestEntry[] = new Array(call.records.length);
    for (let i = 0; i < call.records.length; i++) {
      const record = call.records[i]!;
      entries[i] = record.explicitHashKey === undefined
        ? { Data: record.data, PartitionKey: record.partitionKey }
        : {
          Data: record.data,
          PartitionKey: record.partitionKey,
          ExplicitHashKey: record.explicitHashKey,
        };
    }
    const clock = this.#scheduler.clock;
    call.startedAt = clock.now();
    this.#scheduler.schedule(call.timeout, timeoutAt(call, this.#options.requestTimeoutMs));
    const signal = call.abortController.signal;
    const input: PutRecordsInput = { ...streamTarget(call.stream), Records: entries };
    this.#options.client()
      .then((client) => client.putRecords(input, { signal }))
      .then(
        (output) => {
          call.entries = output.Records ?? [];
        },
        (error: unknown) => {
          call.error = describeError(error, call.timedOut);
          if (call.error.code === ErrorCodes.networkError && signal.aborted && !call.timedOut) {
            call.error = { code: ErrorCodes.producerClosed, message: "Request aborted by close()" };
          }
        },
      )
      .then(() => this.#finish(call));
  }

  #finish(call: PutRecordsCall): void {
    call.endedAt = this.#scheduler.clock.now();
    this.#scheduler.cancel(call.timeout);
    this.#inFlight.delete(call);
    this.#inFlightBytes -= call.bytes;
    this.#deliver(call);
    this.#pump();
  }

  #deliver(call: PutRecordsCall): void {
    try {
      this.#options.onResult(call);
    } catch (error) {
      // A bug in result handling must not stop the sender; say so loudly.
      this.#options.logger.error("Handling a PutRecords result failed", error);
    }
  }

  #checkIdle(): void {
    if (this.#inFlight.size > 0 || this.queued > 0 || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** What `call` counts against `maxInFlightBytes`: what Kinesis counts against its limit. */
function requestBytes(call: PutRecordsCall): number {
  let total = 0;
  for (const record of call.records) total += record.requestSize;
  return total;
}

// Kinesis' classic limits, for which the C++ KPL's 6 s request timeout was sized: 1 MiB per
// record and 5 MiB per call (the API reference in docs/architecture.md, "Sources").
const CLASSIC_RECORD_BYTES = 1024 * 1024;
const CLASSIC_CALL_BYTES = 5 * 1024 * 1024;

/**
 * When `call` times out. A call within the classic limits gets `requestTimeoutMs`; a larger
 * one takes longer to upload and to store (kinesis-local needs about 4 s for one 6 MiB
 * record), so it gets that much per MiB of its largest record or per 5 MiB of the call,
 * whichever is more, but no later than its last record's TTL, which bounds it anyway.
 */
function timeoutAt(call: PutRecordsCall, requestTimeoutMs: number): number {
  let largest = 0;
  let total = 0;
  let expiresAt = 0;
  for (const record of call.records) {
    if (record.requestSize > largest) largest = record.requestSize;
    if (record.expiresAt > expiresAt) expiresAt = record.expiresAt;
    total += record.requestSize;
  }
  const scale = Math.max(1, largest / CLASSIC_RECORD_BYTES, total / CLASSIC_CALL_BYTES);
  const base = call.startedAt + requestTimeoutMs;
  if (scale === 1) return base;
  return Math.max(base, Math.min(call.startedAt + requestTimeoutMs * scale, expiresAt));
}
