/**
 * Web streams over the producer: a `WritableStream` whose writes resolve when the producer
 * has admitted the records (so `pipeTo` gets the producer's backpressure), and a
 * `TransformStream` that turns records into their results, in input order. Reach them
 * through `Producer.writable`, `Producer.createWritable()` and `Producer.createTransform()`.
 *
 * @module
 */

import type { RecordOwner } from "./_pending_record.ts";
import type { ProducerPort } from "./_producer_port.ts";
import { Queue } from "./_queue.ts";
import { RecordsFailedError } from "./errors.ts";
import type { Attempt, RecordResult, UserRecord } from "./record.ts";

/** Options for {@linkcode Producer.createWritable}. */
export interface RecordWritableOptions {
  /**
   * How many chunks (a record or an array of records each) the stream queues before
   * `writer.ready` waits. The producer is the real buffer, so one is enough.
   * @default {1}
   */
  highWaterMark?: number;
  /**
   * Called with the result of every record written through the stream, as it settles.
   * When a handler is given, `close()` resolves even if records failed.
   */
  onResult?: (result: RecordResult) => void;
  /**
   * Called with the result of every record written through the stream that failed.
   * When a handler is given, `close()` resolves even if records failed.
   */
  onFailure?: (result: RecordResult) => void;
  /**
   * Called with every attempt of a record written through the stream as the attempt
   * ends, before the record's result: failed attempts followed by another are retries,
   * so a caller can count them live. A throwing handler is ignored.
   */
  onAttempt?: (attempt: Attempt) => void;
  /**
   * Stops a write that waits for room: it rejects with the signal's reason and the stream
   * errors. `pipeTo(writable, { signal })` aborts the stream only after the chunk being
   * written is admitted (the Streams standard finishes pending writes first), so pass the
   * same signal here to stop at once.
   */
  signal?: AbortSignal;
}

/** Options for {@linkcode Producer.createTransform}. */
export interface RecordTransformOptions {
  /**
   * Most records admitted through the transform whose results have not been emitted
   * yet. Results leave in input order, so one slow record holds back those behind it;
   * at this many, the transform stops taking input until the oldest result is out.
   * @default {10000}
   */
  maxPending?: number;
}

const DEFAULT_MAX_PENDING = 10_000;

/**
 * Creates a writable stream into the producer behind `port`.
 *
 * @param port The producer's admission calls.
 * @param options Queue size and result handlers.
 * @returns The stream.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When `highWaterMark` is negative.
 */
export function createRecordWritable(
  port: ProducerPort,
  options: RecordWritableOptions = {},
): WritableStream<UserRecord | UserRecord[]> {
  const { highWaterMark = 1, onResult, onFailure, onAttempt, signal } = options;
  if (typeof highWaterMark !== "number" || Number.isNaN(highWaterMark) || highWaterMark < 0) {
    throw new (typeof highWaterMark === "number" ? RangeError : TypeError)(
      `Cannot create writable as 'highWaterMark' must be a number of at least 0: current value is ${highWaterMark}`,
    );
  }
  checkHandler("writable", "onResult", onResult);
  checkHandler("writable", "onFailure", onFailure);
  checkHandler("writable", "onAttempt", onAttempt);
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(
      `Cannot create writable as 'signal' must be an AbortSignal: current value is ${typeof signal}`,
    );
  }
  const sink = new RecordSink(port, onResult, onFailure, signal);
  if (onAttempt !== undefined) {
    sink.onAttempt = (attempt) => {
      try {
        onAttempt(attempt);
      } catch {
        // A counter that throws must not disturb the record's settlement.
      }
    };
  }
  return new WritableStream<UserRecord | UserRecord[]>({
    start: (controller) => sink.start(controller),
    write: (chunk) => sink.write(chunk),
    close: () => sink.close(),
    abort: () => sink.abort(),
  }, new CountQueuingStrategy({ highWaterMark }));
}

/**
 * The producer's shared writable (`Producer.writable`): the same stream on every access
 * while it is open. A stream that has been closed (a pipe that ended closes its
 * destination), aborted or errored cannot take writes again, so once that has begun the
 * next access creates a fresh one: pipes into `producer.writable` can follow one another,
 * and each `close()` still waits only for the records written through its own stream.
 *
 * @param port The producer's admission calls.
 * @returns A function that returns the current shared stream.
 */
export function sharedRecordWritable(
  port: ProducerPort,
): () => WritableStream<UserRecord | UserRecord[]> {
  let current: WritableStream<UserRecord | UserRecord[]> | undefined;
  const create = (): WritableStream<UserRecord | UserRecord[]> => {
    const sink = new RecordSink(port, undefined, undefined, undefined);
    const stream = new WritableStream<UserRecord | UserRecord[]>({
      start: (controller) => sink.start(controller),
      write: (chunk) => {
        try {
          return sink.write(chunk)?.catch((error: unknown) => retire(error));
        } catch (error) {
          return retire(error);
        }
      },
      close: () => {
        retire(undefined);
        return sink.close();
      },
      abort: () => {
        retire(undefined);
        sink.abort();
      },
    }, new CountQueuingStrategy({ highWaterMark: 1 }));
    // A write that failed errors the stream; the error is rethrown to the writer.
    const retire = (error: unknown): never | undefined => {
      if (current === stream) current = undefined;
      if (error !== undefined) throw error;
      return undefined;
    };
    return stream;
  };
  return () => current ??= create();
}

/**
 * Creates a transform stream that puts records into the producer behind `port` and
 * emits their results in input order.
 *
 * @param port The producer's admission calls.
 * @param options How many results may wait for an earlier one.
 * @returns The stream.
 * @throws {TypeError} When `maxPending` is not a number.
 * @throws {RangeError} When `maxPending` is not a positive integer.
 */
export function createRecordTransform(
  port: ProducerPort,
  options: RecordTransformOptions = {},
): TransformStream<UserRecord, RecordResult> {
  const { maxPending = DEFAULT_MAX_PENDING } = options;
  if (typeof maxPending !== "number" || !Number.isInteger(maxPending) || maxPending < 1) {
    throw new (typeof maxPending === "number" ? RangeError : TypeError)(
      `Cannot create transform as 'maxPending' must be an integer of at least 1: current value is ${maxPending}`,
    );
  }
  const order = new ResultOrder(port, maxPending);
  return new TransformStream<UserRecord, RecordResult>({
    start: (controller) => order.start(controller),
    transform: (record) => order.transform(record),
    flush: () => order.flush(),
    cancel: () => order.cancel(),
  });
}

function checkHandler(what: string, name: string, handler: unknown): void {
  if (handler !== undefined && typeof handler !== "function") {
    throw new TypeError(
      `Cannot create ${what} as '${name}' must be a function: current value is ${typeof handler}`,
    );
  }
}

/**
 * The sink behind a writable. It owns every record written through it (one owner for all
 * of them, so a write allocates nothing of its own) and counts admissions and results, so
 * `close()` knows when everything it admitted has settled.
 */
class RecordSink implements RecordOwner {
  readonly #port: ProducerPort;
  readonly #onResult: ((result: RecordResult) => void) | undefined;
  readonly #onFailure: ((result: RecordResult) => void) | undefined;
  readonly #handled: boolean;
  #signal: AbortSignal | undefined;
  readonly #userSignal: AbortSignal | undefined;
  #admitted = 0;
  #settled = 0;
  #failures: RecordResult[] = [];
  #collecting = true;
  #drained: (() => void) | undefined;
  readonly #countAdmitted = (): void => {
    this.#admitted++;
  };
  /** Set only when the writer asked for attempts, so other records pay nothing. */
  onAttempt: ((attempt: Attempt) => void) | undefined = undefined;
  readonly #measured: boolean;

  constructor(
    port: ProducerPort,
    onResult: ((result: RecordResult) => void) | undefined,
    onFailure: ((result: RecordResult) => void) | undefined,
    signal: AbortSignal | undefined,
  ) {
    this.#port = port;
    this.#onResult = onResult;
    this.#onFailure = onFailure;
    this.#handled = onResult !== undefined || onFailure !== undefined;
    this.#userSignal = signal;
    this.#measured = port.measuresSuccesses();
  }

  /** Whether a success is only counted: no handler, no attempt listener, no metrics. */
  get ignoresSuccess(): boolean {
    return !this.#handled && this.onAttempt === undefined && !this.#measured;
  }

  start(controller: WritableStreamDefaultController): void {
    // Older Bun has no `controller.signal`; without it a write waiting for room finishes
    // before an abort takes effect, which is the spec's behaviour without the signal.
    const own: unknown = (controller as { signal?: unknown }).signal;
    const streamSignal = own instanceof AbortSignal ? own : undefined;
    const user = this.#userSignal;
    if (user === undefined || streamSignal === undefined) {
      this.#signal = user ?? streamSignal;
    } else {
      this.#signal = typeof AbortSignal.any === "function"
        ? AbortSignal.any([streamSignal, user])
        : user;
    }
  }

  write(chunk: UserRecord | UserRecord[]): Promise<void> | undefined {
    if (Array.isArray(chunk)) return this.#writeFrom(chunk, 0);
    if (this.#port.tryAdmit(chunk, this) !== undefined) {
      this.#admitted++;
      return undefined;
    }
    return this.#port.admit(chunk, this, this.#signal).then(this.#countAdmitted);
  }

  /** Admits as many records as fit now, then waits for room for the next one. */
  #writeFrom(records: UserRecord[], start: number): Promise<void> | undefined {
    for (let i = start; i < records.length; i++) {
      const record = records[i]!;
      if (this.#port.tryAdmit(record, this) !== undefined) {
        this.#admitted++;
        continue;
      }
      return this.#port.admit(record, this, this.#signal).then(() => {
        this.#admitted++;
        return this.#writeFrom(records, i + 1);
      });
    }
    return undefined;
  }

  close(): Promise<void> | undefined {
    // The stream calls close() only after every write resolved, so `#admitted` is final.
    this.#port.flushNow();
    if (this.#settled >= this.#admitted) return this.#finish();
    return new Promise<void>((resolve) => {
      this.#drained = resolve;
    }).then(() => this.#finish());
  }

  #finish(): undefined {
    if (this.#failures.length > 0) {
      const failures = this.#failures;
      this.#failures = [];
      throw new RecordsFailedError(failures, { written: this.#admitted });
    }
    return undefined;
  }

  abort(): void {
    // Admitted records still complete (and still reach the handlers); nobody will read
    // the failures of an aborted stream.
    this.#collecting = false;
    this.#failures = [];
  }

  onResult(result: RecordResult): void {
    this.#settled++;
    try {
      if (this.#handled) {
        this.#onResult?.(result);
        if (!result.success) this.#onFailure?.(result);
      } else if (!result.success && this.#collecting) {
        this.#failures.push(result);
      }
    } finally {
      if (this.#drained !== undefined && this.#settled >= this.#admitted) {
        const drained = this.#drained;
        this.#drained = undefined;
        drained();
      }
    }
  }
}

/** One record's place in the transform's output order. */
class Slot implements RecordOwner {
  readonly #order: ResultOrder;
  result: RecordResult | undefined = undefined;

  constructor(order: ResultOrder) {
    this.#order = order;
  }

  onResult(result: RecordResult): void {
    this.result = result;
    this.#order.drain();
  }
}

/**
 * The transform's state: the records admitted through it, oldest first, and waiters for
 * room under `maxPending` and for the last result.
 */
class ResultOrder {
  readonly #port: ProducerPort;
  readonly #maxPending: number;
  /** Stops admission waits when the stream is cancelled. */
  readonly #abort = new AbortController();
  #controller: TransformStreamDefaultController<RecordResult> | undefined;
  readonly #slots = new Queue<Slot>();
  #done = false;
  #room: { resolve(): void; reject(reason: unknown): void } | undefined;
  #emptied: (() => void) | undefined;

  constructor(port: ProducerPort, maxPending: number) {
    this.#port = port;
    this.#maxPending = maxPending;
  }

  get #pending(): number {
    return this.#slots.size;
  }

  start(controller: TransformStreamDefaultController<RecordResult>): void {
    this.#controller = controller;
  }

  transform(record: UserRecord): Promise<void> | undefined {
    if (this.#pending < this.#maxPending) return this.#admit(record);
    return new Promise<void>((resolve, reject) => {
      this.#room = { resolve, reject };
    }).then(() => this.#admit(record));
  }

  #admit(record: UserRecord): Promise<void> | undefined {
    const slot = new Slot(this);
    if (this.#port.tryAdmit(record, slot) !== undefined) {
      this.#slots.push(slot);
      return undefined;
    }
    return this.#port.admit(record, slot, this.#abort.signal).then(() => {
      this.#slots.push(slot);
      // The result cannot arrive before admission, but drain in case it raced the push.
      this.drain();
    });
  }

  /** Emits every result at the head whose record has settled. */
  drain(): void {
    const slots = this.#slots;
    while (slots.size > 0) {
      const result = slots.peek()!.result;
      if (result === undefined) break;
      slots.shift();
      if (!this.#done) {
        try {
          this.#controller!.enqueue(result);
        } catch {
          // The readable side was cancelled or errored: keep draining, emit nothing.
          this.#done = true;
        }
      }
    }
    if (this.#room !== undefined && this.#pending < this.#maxPending) {
      const room = this.#room;
      this.#room = undefined;
      room.resolve();
    }
    if (this.#emptied !== undefined && this.#pending === 0) {
      const emptied = this.#emptied;
      this.#emptied = undefined;
      emptied();
    }
  }

  flush(): Promise<void> | undefined {
    this.#port.flushNow();
    if (this.#pending === 0) return undefined;
    return new Promise<void>((resolve) => {
      this.#emptied = resolve;
    });
  }

  cancel(): void {
    // Records already admitted still complete; their results go nowhere.
    this.#done = true;
    this.#abort.abort(new DOMException("The transform stream was cancelled", "AbortError"));
    if (this.#room !== undefined) {
      const room = this.#room;
      this.#room = undefined;
      room.reject(this.#abort.signal.reason);
    }
    this.#emptied?.();
    this.#emptied = undefined;
  }
}
