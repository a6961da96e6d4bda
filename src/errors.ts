/**
 * The error types callers catch. Bad arguments to constructors throw the built-in
 * `TypeError`/`RangeError`; these classes are for conditions a program handles.
 *
 * Each class carries a brand registered with `Symbol.for`, so the `isXxxError()` guards
 * recognise errors thrown by another copy of this module, where `instanceof` would not.
 *
 * @module
 */

import type { RecordResult } from "./record.ts";

const VALIDATION = Symbol.for("webkpl.ValidationError");
const PRODUCER_CLOSED = Symbol.for("webkpl.ProducerClosedError");
const DECODE = Symbol.for("webkpl.DecodeError");
const RECORDS_FAILED = Symbol.for("webkpl.RecordsFailedError");

/** The part of a user record that failed validation. */
export type RecordField = "record" | "stream" | "partitionKey" | "explicitHashKey" | "data";

/** Options for {@linkcode ValidationError}. */
export interface ValidationErrorOptions extends ErrorOptions {
  /** The part of the record that is wrong. */
  field: RecordField;
}

/**
 * A user record was rejected before it entered the producer: nothing was buffered and no
 * other record was affected.
 *
 * @example Telling a bad record from other failures
 * ```ts
 * import { isValidationError, ValidationError } from "@webkpl/kpl";
 *
 * const error = new ValidationError("Partition key is empty", { field: "partitionKey" });
 * console.log(isValidationError(error)); // true
 * console.log(error.field); // "partitionKey"
 * ```
 */
export class ValidationError extends Error {
  /** The part of the record that is wrong. */
  readonly field: RecordField;

  /**
   * Creates a validation error.
   *
   * @param message What is wrong, naming the field and the bad value's shape.
   * @param options The field at fault, and an optional cause.
   */
  constructor(message: string, options: ValidationErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ValidationError";
    this.field = options.field;
    Object.defineProperty(this, VALIDATION, { value: true });
  }
}

/**
 * Whether `value` is a {@linkcode ValidationError}, from this or any other copy of the
 * module.
 *
 * @param value Anything that was thrown.
 * @returns `true` when `value` is a validation error.
 */
export function isValidationError(value: unknown): value is ValidationError {
  return typeof value === "object" && value !== null && VALIDATION in value;
}

/**
 * The producer was closed: `put()` after `close()`, or a put still waiting for
 * admission when `close()` was called.
 *
 * @example Recognising a closed producer
 * ```ts
 * import { isProducerClosedError, ProducerClosedError } from "@webkpl/kpl";
 *
 * console.log(isProducerClosedError(new ProducerClosedError())); // true
 * ```
 */
export class ProducerClosedError extends Error {
  /**
   * Creates the error.
   *
   * @param message Why the call was refused.
   */
  constructor(message = "Cannot put a record into a closed producer") {
    super(message);
    this.name = "ProducerClosedError";
    Object.defineProperty(this, PRODUCER_CLOSED, { value: true });
  }
}

/**
 * Whether `value` is a {@linkcode ProducerClosedError}, from this or any other copy of
 * the module.
 *
 * @param value Anything that was thrown.
 * @returns `true` when `value` is a producer-closed error.
 */
export function isProducerClosedError(value: unknown): value is ProducerClosedError {
  return typeof value === "object" && value !== null && PRODUCER_CLOSED in value;
}

/**
 * Bytes given to the aggregated-record decoder are not a valid aggregated record.
 *
 * @example Catching a decode failure
 * ```ts
 * import { decodeAggregated, isDecodeError } from "@webkpl/kpl";
 *
 * try {
 *   decodeAggregated(new Uint8Array([1, 2, 3]));
 * } catch (error) {
 *   console.log(isDecodeError(error)); // true
 * }
 * ```
 */
export class DecodeError extends Error {
  /** Byte offset in the input where decoding failed. */
  readonly offset: number;

  /**
   * Creates a decode error.
   *
   * @param message What is malformed.
   * @param offset Byte offset in the input where decoding failed.
   */
  constructor(message: string, offset: number) {
    super(message);
    this.name = "DecodeError";
    this.offset = offset;
    Object.defineProperty(this, DECODE, { value: true });
  }
}

/**
 * Whether `value` is a {@linkcode DecodeError}, from this or any other copy of the module.
 *
 * @param value Anything that was thrown.
 * @returns `true` when `value` is a decode error.
 */
export function isDecodeError(value: unknown): value is DecodeError {
  return typeof value === "object" && value !== null && DECODE in value;
}

/**
 * Records written through a stream did not make it into Kinesis. A writable created
 * without `onResult`/`onFailure` handlers rejects `close()` (and so `pipeTo()`) with this
 * error once every record written through it has settled; the failed results, each with
 * its original record, are in `failures`.
 *
 * @example Rescuing the records of a failed pipe
 * ```ts
 * import { isRecordsFailedError, RecordsFailedError, type RecordResult } from "@webkpl/kpl";
 *
 * const failed: RecordResult = {
 *   success: false,
 *   shardId: undefined,
 *   sequenceNumber: undefined,
 *   subSequenceNumber: undefined,
 *   attempts: [],
 *   record: { partitionKey: "k", data: "x" },
 *   errorCode: "Expired",
 *   errorMessage: "Record has reached expiration",
 * };
 * const error: unknown = new RecordsFailedError([failed], { written: 10 });
 * if (isRecordsFailedError(error)) {
 *   console.log(error.failures.map((result) => result.record.partitionKey)); // ["k"]
 *   console.log(error.written); // 10
 * }
 * ```
 */
export class RecordsFailedError extends Error {
  /** The failed results, in the order they settled. */
  readonly failures: readonly RecordResult[];
  /** How many records were written through the stream in all. */
  readonly written: number;

  /**
   * Creates the error.
   *
   * @param failures The failed results; at least one.
   * @param options How many records were written in all (defaults to the failures).
   */
  constructor(failures: readonly RecordResult[], options?: { written?: number }) {
    const written = options?.written ?? failures.length;
    const first = failures[0]?.errorCode;
    super(
      `${failures.length} of ${written} records failed` +
        (first === undefined ? "" : `; the first with ${first}`),
    );
    this.name = "RecordsFailedError";
    this.failures = failures;
    this.written = written;
    Object.defineProperty(this, RECORDS_FAILED, { value: true });
  }
}

/**
 * Whether `value` is a {@linkcode RecordsFailedError}, from this or any other copy of the
 * module.
 *
 * @param value Anything that was thrown.
 * @returns `true` when `value` is a records-failed error.
 */
export function isRecordsFailedError(value: unknown): value is RecordsFailedError {
  return typeof value === "object" && value !== null && RECORDS_FAILED in value;
}

const NOT_READY = Symbol.for("webkpl.NotReadyError");

/** Options for {@linkcode NotReadyError}. */
export interface NotReadyErrorOptions extends ErrorOptions {
  /** The error code, as a record's result would carry it. */
  code: string;
  /** Retrying cannot fix it. */
  permanent: boolean;
}

/**
 * `Producer.ready()` found a problem: no client (`ClientError`, e.g. no region), bad
 * credentials (`CredentialsError`), or an error from listing the default stream's shards
 * (`ResourceNotFoundException`, `NetworkError`, ...). When `permanent` is true and the
 * problem concerns the client, every record put afterwards fails with the same `code`.
 *
 * @example Telling a configuration error from an endpoint that is not up yet
 * ```ts
 * import { isNotReadyError, NotReadyError } from "@webkpl/kpl";
 *
 * const error: unknown = new NotReadyError("Region is missing", {
 *   code: "ClientError",
 *   permanent: true,
 * });
 * if (isNotReadyError(error)) console.log(error.code, error.permanent); // "ClientError" true
 * ```
 */
export class NotReadyError extends Error {
  /** The error code, as a record's result would carry it. */
  readonly code: string;
  /** Retrying cannot fix it. */
  readonly permanent: boolean;

  /**
   * Creates the error.
   *
   * @param message What failed, without credentials or stack traces.
   * @param options The code and whether it is permanent.
   */
  constructor(message: string, options: NotReadyErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NotReadyError";
    this.code = options.code;
    this.permanent = options.permanent;
    Object.defineProperty(this, NOT_READY, { value: true });
  }
}

/**
 * Whether `value` is a {@linkcode NotReadyError}, from this or any other copy of the
 * module.
 *
 * @param value Anything that was thrown.
 * @returns `true` when `value` is a not-ready error.
 */
export function isNotReadyError(value: unknown): value is NotReadyError {
  return typeof value === "object" && value !== null && NOT_READY in value;
}
