/**
 * The webkpl command line. `put` reads newline-delimited records from standard input and
 * puts them into a Kinesis stream through a producer's writable stream: aggregation,
 * shard prediction, per-shard rate limits, retries, and a result for every record.
 *
 * ```sh
 * deno run -A jsr:@webkpl/kpl/cli put --stream events < events.txt
 * deno run -A jsr:@webkpl/kpl/cli put --stream events --format json --key-field user < events.ndjson
 * deno run -A jsr:@webkpl/kpl/cli --help
 * ```
 *
 * It exits with 0 when every record was stored, 1 when any record failed (each written as
 * a JSON line to `--failures FILE` or standard error, ready to be fed back with
 * `--format json`) or any input line was rejected (to `--rejected FILE` or standard
 * error), 2 for a usage error or a configuration no record can get past, and 130/143 after
 * SIGINT/SIGTERM. The same code runs from a program through {@linkcode putRecords}.
 *
 * @example Putting lines from a program, as the CLI does
 * ```ts ignore
 * import { formatSummary, parseArguments, putRecords } from "@webkpl/kpl/cli";
 *
 * const command = parseArguments(["put", "--stream", "events", "--region", "us-east-1"]);
 * if (command.name === "put") {
 *   const lines = ReadableStream.from(["one\ntwo\n"]).pipeThrough(new TextEncoderStream());
 *   const summary = await putRecords(lines, command.put, {
 *     stderr: (text) => console.error(text),
 *   });
 *   console.log(formatSummary(summary));
 * }
 * ```
 *
 * @module
 */

import { open } from "node:fs/promises";
import process from "node:process";
import { Readable } from "node:stream";
import { ErrorCodes } from "./src/error_codes.ts";
import { isNotReadyError, ValidationError } from "./src/errors.ts";
import { assertPartitionKey, createHashKey, parseExplicitHashKey } from "./src/hash_key.ts";
import { firstLine } from "./src/kinesis_client.ts";
import type { Logger } from "./src/logger.ts";
import { type ProducerOptions, resolveProducerOptions } from "./src/options.ts";
import { Producer } from "./src/producer.ts";
import type { Attempt, RecordResult, UserRecord } from "./src/record.ts";
import { utf8Length } from "./src/_utf8.ts";

/** How `put` reads each input line. */
export type InputFormat = "lines" | "json";

/** When `put` shows live progress on standard error. */
export type ProgressMode = "auto" | "always" | "never";

/** A parsed `put` command. */
export interface PutCommand {
  /** The stream the records go to. */
  readonly stream: string;
  /**
   * `lines`: each line is one record's data, with a random partition key. `json`: each
   * line is a JSON object; see `keyField` and `randomKey`.
   */
  readonly format: InputFormat;
  /**
   * JSON only: send each line unchanged, keyed by this field (dots reach into nested
   * objects). Without it, a line is an envelope `{ partitionKey, data, explicitHashKey? }`.
   */
  readonly keyField: string | undefined;
  /** JSON envelopes only: ignore `partitionKey` and use a random key. */
  readonly randomKey: boolean;
  /**
   * Where failed records go as JSON envelopes (`--format json` input, so the file can be
   * fed back as it is); standard error when unset.
   */
  readonly failuresPath: string | undefined;
  /** Where rejected input lines go as JSON lines; standard error when unset. */
  readonly rejectedPath?: string | undefined;
  /** When live progress is shown; `auto` shows it only when standard error is a terminal. */
  readonly progress: ProgressMode;
  /** How long to wait for the last records once the input has ended. */
  readonly closeTimeoutMs: number;
  /** The producer's options, from the flags. */
  readonly producer: ProducerOptions;
}

/** A parsed command line. */
export type Command =
  | { readonly name: "help" }
  | { readonly name: "put"; readonly put: PutCommand };

/** What `put` did. */
export interface PutSummary {
  /** The stream. */
  readonly stream: string;
  /** Records read from the input and handed to the producer. */
  readonly records: number;
  /** Records stored in the stream. */
  readonly succeeded: number;
  /** Records that failed (written to the failures output). */
  readonly failed: number;
  /** Input lines that were not valid records (written to the failures output). */
  readonly rejected: number;
  /** Extra attempts summed over every record. */
  readonly retries: number;
  /** Failures per error code. */
  readonly errorCodes: Readonly<Record<string, number>>;
  /** Milliseconds from the first read to the last result. */
  readonly elapsedMs: number;
  /** Why the run stopped early, when it did (a read error, a signal, a refused record). */
  readonly error: string | undefined;
  /**
   * Set when the start-up check found a configuration no record can get past (no region,
   * bad credentials, a stream that does not exist): the one line to print. Nothing was
   * read.
   */
  readonly notReady?: string | undefined;
}

/** Where `put` writes what it reports. */
export interface PutOutput {
  /** Writes progress, failures (without a failures file) and messages. */
  stderr(text: string): void;
  /**
   * Whether standard error is a terminal, for `progress: "auto"`.
   * @default {false}
   */
  stderrIsTerminal?: boolean;
  /** Producer options added to the command's, e.g. credentials or a metrics sink. */
  producer?: ProducerOptions;
  /**
   * Stops the run: reading stops, the producer closes within the command's close timeout,
   * and every record read but not stored is written to the failures output.
   */
  signal?: AbortSignal;
}

/**
 * A command line `put` cannot run: an unknown flag, a missing or bad value. The message
 * names the flag.
 */
export class UsageError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong, naming the flag.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The help text, as `--help` prints it. */
export const HELP: string =
  `webkpl: put newline-delimited records from standard input into a Kinesis stream.

Usage:
  deno run -A jsr:@webkpl/kpl/cli put --stream NAME|ARN [options] < records
  bun cli.ts put --stream NAME|ARN [options] < records

Every record is aggregated, routed to its predicted shard, rate limited per shard and
retried by error class; the run ends when every record has a result.

Input:
  --format lines|json       lines (default): each line is one record's data, with a random
                            partition key. json: each line is an object
                            {"partitionKey": ..., "data": ..., "explicitHashKey": ...}; a
                            "data" that is not a string is sent as its JSON text.
  --key-field NAME          json: send each line as it is, with the partition key taken from
                            its NAME field (a.b reaches into nested objects).
  --random-key              json: ignore "partitionKey" and use a random key.

Destination:
  --stream NAME|ARN         the stream, by name or ARN (required).
  --region REGION           AWS region (default: the SDK's chain, e.g. AWS_REGION).
  --endpoint URL            Kinesis endpoint, e.g. http://127.0.0.1:4567 for an emulator.
                            Credentials come from the SDK's chain (environment, shared files).

Producer:
  --aggregation on|off      pack records into KPL aggregated records (default on).
  --max-buffered-time-ms N  how long a record may wait for companions (default 100).
  --record-ttl-ms N         how long a record may take before it fails as Expired (default 30000).
  --rate-limit PERCENT      per-shard ceiling, percent of 1000 records/s and 1 MiB/s (default 150).
  --fail-if-throttled       fail throttled records at once instead of retrying them.
  --max-outstanding-records N  records in the producer before reading pauses (default 100000).
  --max-outstanding-bytes N    bytes in the producer before reading pauses (default 268435456).
  --max-in-flight-requests N   concurrent PutRecords calls (default 24).
  --request-timeout-ms N       timeout of one PutRecords call (default 6000).
  --close-timeout-ms N         at the end of input, how long to wait for the last records
                               before failing them as ProducerClosed (default 30000).

Output:
  --failures FILE           write failed records as JSON lines to FILE (default: standard
                            error). Each line holds the record's partitionKey, data and
                            explicitHashKey (plus errorCode, errorMessage, attempts), so
                            the file can be fed back as it is:
                              put --stream NAME --format json < FILE
  --rejected FILE           write input lines that are not valid records as JSON lines to
                            FILE (default: standard error), apart from the failures.
  --progress auto|always|never  live records/s, outstanding, retries and failures on standard
                            error (default auto: only when it is a terminal).
  -h, --help                show this help.

Before reading, put checks the configuration once (region, credentials, the stream): a
problem no record can get past is one line and exit status 2. On SIGINT or SIGTERM it stops
reading, waits up to --close-timeout-ms for the records in flight, writes every record not
stored to the failures output and prints the summary; a second signal exits at once.

Exit status: 0 when every record was stored, 1 when a record failed or a line was rejected,
2 for a usage or configuration error, 130 after SIGINT, 143 after SIGTERM.
`;

const NUMERIC_FLAGS: Readonly<Record<string, keyof ProducerOptions>> = {
  "--max-buffered-time-ms": "recordMaxBufferedTimeMs",
  "--record-ttl-ms": "recordTtlMs",
  "--rate-limit": "rateLimit",
  "--max-outstanding-records": "maxOutstandingRecords",
  "--max-outstanding-bytes": "maxOutstandingBytes",
  "--max-in-flight-requests": "maxInFlightRequests",
  "--request-timeout-ms": "requestTimeoutMs",
};

const FLAG_OF_OPTION: Readonly<Record<string, string>> = {
  stream: "--stream",
  region: "--region",
  endpoint: "--endpoint",
  aggregationEnabled: "--aggregation",
  failIfThrottled: "--fail-if-throttled",
  ...Object.fromEntries(Object.entries(NUMERIC_FLAGS).map(([flag, option]) => [option, flag])),
};

/**
 * Parses a command line (without the program name).
 *
 * @param args The arguments, e.g. `["put", "--stream", "events"]`.
 * @returns The command: help, or a validated `put`.
 * @throws {UsageError} When a flag is unknown, lacks a value or has a bad one; the message
 * names the flag.
 *
 * @example Parsing a put command
 * ```ts
 * import { parseArguments } from "@webkpl/kpl/cli";
 *
 * const command = parseArguments(["put", "--stream", "events", "--aggregation=off"]);
 * console.log(command.name); // "put"
 * if (command.name === "put") console.log(command.put.producer.aggregationEnabled); // false
 * try {
 *   parseArguments(["put", "--stream", "e", "--rate-limit", "0"]);
 * } catch (error) {
 *   console.log((error as Error).message); // "Option '--rate-limit' must be a positive number: got 0"
 * }
 * ```
 */
export function parseArguments(args: readonly string[]): Command {
  const [name, ...rest] = args;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    return { name: "help" };
  }
  if (name !== "put") {
    throw new UsageError(`Unknown command '${name}': the only command is 'put'`);
  }
  const producer: Record<string, unknown> = {};
  let stream: string | undefined;
  let format: InputFormat = "lines";
  let keyField: string | undefined;
  let randomKey = false;
  let failuresPath: string | undefined;
  let rejectedPath: string | undefined;
  let progress: ProgressMode = "auto";
  let closeTimeoutMs = 30_000;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    const equals = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = equals > 0 ? arg.slice(0, equals) : arg;
    const inline = equals > 0 ? arg.slice(equals + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = rest[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        throw new UsageError(`Option '${flag}' needs a value`);
      }
      i++;
      return next;
    };
    const noValue = (): void => {
      if (inline !== undefined) throw new UsageError(`Option '${flag}' takes no value`);
    };
    switch (flag) {
      case "-h":
      case "--help":
        return { name: "help" };
      case "--stream":
        stream = value();
        break;
      case "--region":
        producer.region = value();
        break;
      case "--endpoint":
        producer.endpoint = value();
        break;
      case "--format":
        format = choice(flag, value(), ["lines", "json"]);
        break;
      case "--key-field":
        keyField = value();
        if (keyField === "" || keyField.split(".").includes("")) {
          throw new UsageError(`Option '--key-field' must be a field name: got '${keyField}'`);
        }
        break;
      case "--random-key":
        noValue();
        randomKey = true;
        break;
      case "--aggregation":
        producer.aggregationEnabled = choice(flag, value(), ["on", "off"]) === "on";
        break;
      case "--fail-if-throttled":
        noValue();
        producer.failIfThrottled = true;
        break;
      case "--failures":
        failuresPath = value();
        if (failuresPath === "") throw new UsageError("Option '--failures' needs a file name");
        break;
      case "--rejected":
        rejectedPath = value();
        if (rejectedPath === "") throw new UsageError("Option '--rejected' needs a file name");
        break;
      case "--progress":
        progress = choice(flag, value(), ["auto", "always", "never"]);
        break;
      case "--close-timeout-ms":
        closeTimeoutMs = numeric(flag, value());
        if (closeTimeoutMs < 0) {
          throw new UsageError(
            `Option '--close-timeout-ms' must be a number of at least 0: got ${closeTimeoutMs}`,
          );
        }
        break;
      default: {
        const option = NUMERIC_FLAGS[flag];
        if (option === undefined) throw new UsageError(`Unknown option '${arg}'`);
        producer[option] = numeric(flag, value());
      }
    }
  }
  if (stream === undefined) throw new UsageError("Option '--stream' is required");
  producer.stream = stream;
  if (keyField !== undefined && format !== "json") {
    throw new UsageError("Option '--key-field' needs '--format json'");
  }
  if (randomKey && format !== "json") {
    throw new UsageError("Option '--random-key' needs '--format json' (lines always get one)");
  }
  if (randomKey && keyField !== undefined) {
    throw new UsageError("Options '--random-key' and '--key-field' exclude each other");
  }
  try {
    resolveProducerOptions(producer);
  } catch (error) {
    throw new UsageError(flagMessage(error));
  }
  return {
    name: "put",
    put: {
      stream,
      format,
      keyField,
      randomKey,
      failuresPath,
      rejectedPath,
      progress,
      closeTimeoutMs,
      producer: producer as ProducerOptions,
    },
  };
}

function choice<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new UsageError(
      `Option '${flag}' must be one of ${allowed.join(", ")}: got '${value}'`,
    );
  }
  return value as T;
}

function numeric(flag: string, value: string): number {
  const number = value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(number)) {
    throw new UsageError(`Option '${flag}' must be a number: got '${value}'`);
  }
  return number;
}

/** Rewrites the producer's option error to name the flag the user typed. */
function flagMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const match = /^Cannot create producer as '(\w+)' must be (.*): current value is (.*)$/.exec(
    message,
  );
  if (match === null) return message;
  const [, option, rule, value] = match;
  return `Option '${FLAG_OF_OPTION[option!] ?? option}' must be ${rule}: got ${value}`;
}

/**
 * Reads newline-delimited records from `input`, pipes them through a producer's writable
 * stream and resolves once every record has a result. Failed records and rejected lines
 * are written as JSON lines to the command's failures file or to `output.stderr`; live
 * progress goes to `output.stderr` when the command asks for it.
 *
 * @param input The bytes of the input (UTF-8, one record per line).
 * @param command The parsed command.
 * @param output Where messages go, and extra producer options.
 * @returns What happened; `failed`, `rejected` and `error` decide the exit status.
 * @throws {TypeError} When the command's producer options are invalid.
 *
 * @example A few lines into an emulator
 * ```ts ignore
 * import { parseArguments, putRecords } from "@webkpl/kpl/cli";
 *
 * const command = parseArguments(["put", "--stream", "s", "--endpoint", "http://127.0.0.1:4567"]);
 * if (command.name === "put") {
 *   const input = ReadableStream.from(["a\nb\n"]).pipeThrough(new TextEncoderStream());
 *   const summary = await putRecords(input, command.put, { stderr: (t) => console.error(t) });
 *   console.log(summary.succeeded);
 * }
 * ```
 */
export async function putRecords(
  input: ReadableStream<Uint8Array>,
  command: PutCommand,
  output: PutOutput,
): Promise<PutSummary> {
  const report = new Report(command, output);
  // Producer warnings go through the report, which clears the progress line first.
  const options: ProducerOptions = {
    logger: report.logger,
    ...command.producer,
    ...output.producer,
  };
  const { maxRecordSize } = resolveProducerOptions(options);
  const failures = await openOutput(command.failuresPath, report);
  let rejected: LineOutput;
  try {
    rejected = await openOutput(command.rejectedPath, report);
  } catch (error) {
    await failures.close();
    throw error;
  }
  report.failures = failures;
  report.rejected = rejected;
  const producer = new Producer(options);
  const signal = output.signal;
  const stop = (): void => {
    report.message(
      `webkpl: ${
        String(signal!.reason)
      }: stopped reading; waiting up to ${command.closeTimeoutMs} ms for the records in flight (send it again to exit at once)\n`,
    );
    // Records still waiting for room are refused at once; admitted ones get the timeout.
    producer.close({ timeoutMs: command.closeTimeoutMs }).catch(() => {});
  };
  let error: string | undefined;
  let notReady: string | undefined;
  report.start(producer);
  try {
    notReady = await checkReady(producer, report, signal);
    if (notReady === undefined) {
      signal?.addEventListener("abort", stop, { once: true });
      await recordSource(input, command, maxRecordSize, report, signal)
        .pipeTo(
          producer.createWritable({ onResult: report.onResult, onAttempt: report.onAttempt }),
        );
    }
  } catch (reason) {
    error = firstLine(reason);
  } finally {
    signal?.removeEventListener("abort", stop);
    // After an error, records already admitted still complete (or fail as ProducerClosed).
    await producer.close({ timeoutMs: command.closeTimeoutMs });
    report.stop();
    report.unsent(
      signal?.aborted === true ? `the run was stopped by ${String(signal.reason)}` : error,
    );
    await failures.close();
    await rejected.close();
  }
  if (signal?.aborted) error = `stopped by ${String(signal.reason)}`;
  return report.summary(error, notReady);
}

/**
 * Runs the producer's start-up check. A permanent problem is returned as the one line to
 * print; a passing one (an endpoint not up yet) is said once, so a run whose records
 * will wait does not start in silence.
 */
async function checkReady(
  producer: Producer,
  report: Report,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  try {
    await producer.ready({ signal });
    return undefined;
  } catch (error) {
    if (!isNotReadyError(error)) throw error;
    if (error.permanent) return error.message;
    report.message(
      `webkpl: ${error.message}; records will be retried until they are stored or expire (--record-ttl-ms)\n`,
    );
    return undefined;
  }
}

/**
 * Formats a summary as the CLI prints it.
 *
 * @param summary What `put` did.
 * @returns A few lines of text, ending with a newline.
 *
 * @example Formatting a summary
 * ```ts
 * import { formatSummary } from "@webkpl/kpl/cli";
 *
 * const text = formatSummary({
 *   stream: "events", records: 3, succeeded: 2, failed: 1, rejected: 0, retries: 4,
 *   errorCodes: { Expired: 1 }, elapsedMs: 1000, error: undefined,
 * });
 * console.log(text);
 * // webkpl put: 3 records to 'events' in 1.00 s: 2 stored, 1 failed, 0 lines rejected, 4 retries (2 records/s)
 * //   failures by code: Expired: 1
 * ```
 */
export function formatSummary(summary: PutSummary): string {
  const seconds = summary.elapsedMs / 1000;
  const rate = seconds > 0 ? Math.round(summary.succeeded / seconds) : summary.succeeded;
  let text = `webkpl put: ${counted(summary.records, "record")} to '${summary.stream}' in ` +
    `${seconds.toFixed(2)} s: ${count(summary.succeeded)} stored, ${
      count(summary.failed)
    } failed, ` +
    `${counted(summary.rejected, "line")} rejected, ${
      counted(summary.retries, "retry", "retries")
    } ` +
    `(${count(rate)} records/s)\n`;
  const codes = Object.entries(summary.errorCodes);
  if (codes.length > 0) {
    text += `  failures by code: ${codes.map(([code, n]) => `${code}: ${n}`).join(", ")}\n`;
  }
  if (summary.error !== undefined) text += `  stopped early: ${summary.error}\n`;
  return text;
}

/**
 * Runs the command line: parses `args`, reads standard input, writes messages to standard
 * error (help to standard output).
 *
 * @param args The arguments without the program name.
 * @returns The exit status: 0 all stored, 1 a record failed or a line was rejected, 2 a
 * usage error.
 *
 * @example Running the CLI from a script (for Bun, which cannot run a JSR URL)
 * ```ts ignore
 * import { main } from "@webkpl/kpl/cli";
 * import process from "node:process";
 *
 * process.exitCode = await main(process.argv.slice(2));
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  let command: Command;
  try {
    command = parseArguments(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`webkpl: ${error.message}\nRun with --help for usage.\n`);
    return 2;
  }
  if (command.name === "help") {
    process.stdout.write(HELP);
    return 0;
  }
  const stop = new AbortController();
  const onSignal = (name: "SIGINT" | "SIGTERM"): void => {
    if (stop.signal.aborted) {
      process.stderr.write(`\nwebkpl: ${name} again: exiting at once\n`);
      process.exit(SIGNAL_STATUS[name]);
    }
    stop.abort(name);
  };
  const onInterrupt = (): void => onSignal("SIGINT");
  const onTerminate = (): void => onSignal("SIGTERM");
  process.on("SIGINT", onInterrupt);
  process.on("SIGTERM", onTerminate);
  let summary: PutSummary;
  try {
    summary = await putRecords(standardInput(), command.put, {
      stderr: (text) => void process.stderr.write(text),
      stderrIsTerminal: process.stderr.isTTY === true,
      signal: stop.signal,
    });
  } catch (error) {
    // Nothing was read: e.g. the failures or rejected file cannot be created (a missing
    // directory, no write permission), a configuration error like any other.
    process.stderr.write(`webkpl: ${firstLine(error)}\n`);
    return 2;
  } finally {
    process.off("SIGINT", onInterrupt);
    process.off("SIGTERM", onTerminate);
  }
  if (summary.notReady !== undefined) {
    process.stderr.write(`webkpl: ${summary.notReady}\n`);
    return 2;
  }
  process.stderr.write(formatSummary(summary));
  if (stop.signal.aborted) return SIGNAL_STATUS[stop.signal.reason as "SIGINT" | "SIGTERM"];
  return summary.failed === 0 && summary.rejected === 0 && summary.error === undefined ? 0 : 1;
}

/** The shell's exit status for a process ended by a signal: 128 + its number. */
const SIGNAL_STATUS = { SIGINT: 130, SIGTERM: 143 } as const;

/** Standard input as a Web stream: the one place that knows which runtime it is on. */
function standardInput(): ReadableStream<Uint8Array> {
  const host = globalThis as {
    Deno?: { stdin: { readable: ReadableStream<Uint8Array> } };
    Bun?: { stdin: { stream(): ReadableStream<Uint8Array> } };
  };
  if (host.Deno !== undefined) return host.Deno.stdin.readable;
  if (host.Bun !== undefined) return host.Bun.stdin.stream();
  return Readable.toWeb(process.stdin) as ReadableStream<Uint8Array>;
}

/**
 * Reads `input` and emits its lines as batches of records, one batch per chunk read.
 * Reading, splitting and parsing happen in one step, so every line read is either a
 * record the report knows about or a rejected line: nothing read sits in a queue of text
 * when the run stops. On `signal`, reading stops and the stream ends.
 */
function recordSource(
  input: ReadableStream<Uint8Array>,
  command: PutCommand,
  maxRecordSize: number,
  report: Report,
  signal: AbortSignal | undefined,
): ReadableStream<UserRecord[]> {
  const reader = input.getReader();
  const decoder = new TextDecoder();
  const parse = lineParser(command, maxRecordSize, report);
  // A line in UTF-16 code units is at most its UTF-8 bytes, so a line over the record
  // size is too long at once; a JSON envelope may escape its data (\u0000 is six
  // characters for one byte), so it gets room for that.
  const maxLineLength = command.format === "json" && command.keyField === undefined
    ? 6 * maxRecordSize + 65_536
    : maxRecordSize;
  const lines = new LineSplitter(maxLineLength, (lineNumber, start) => {
    report.rejectLine(
      lineNumber,
      start,
      new ValidationError(
        `The line is longer than ${maxLineLength} characters, over the ${maxRecordSize} bytes a record may have`,
        { field: "data" },
      ),
    );
  });
  let stopped = signal?.aborted === true;
  const stop = (): void => {
    stopped = true;
    reader.cancel().catch(() => {});
  };
  return new ReadableStream<UserRecord[]>({
    start() {
      if (!stopped) signal?.addEventListener("abort", stop, { once: true });
    },
    async pull(controller) {
      for (;;) {
        const read = stopped ? { done: true as const, value: undefined } : await reader.read();
        const batch: UserRecord[] = [];
        const take = (line: string, lineNumber: number): void => {
          const record = parse(line, lineNumber);
          if (record !== undefined) {
            report.sent(record);
            batch.push(record);
          }
        };
        if (read.done) {
          lines.push(decoder.decode(), take);
          lines.end(take);
          signal?.removeEventListener("abort", stop);
          if (batch.length > 0) controller.enqueue(batch);
          controller.close();
          return;
        }
        lines.push(decoder.decode(read.value, { stream: true }), take);
        if (batch.length > 0) {
          controller.enqueue(batch);
          return;
        }
      }
    },
    cancel(reason) {
      signal?.removeEventListener("abort", stop);
      return reader.cancel(reason);
    },
  });
}

/**
 * Splits text into lines in linear time: the unfinished line is kept as pieces and joined
 * once, when its newline comes. A line longer than `maxLength` is reported as soon as it
 * is, and skipped up to its newline without being kept.
 */
class LineSplitter {
  readonly #maxLength: number;
  readonly #onTooLong: (lineNumber: number, start: string) => void;
  #pieces: string[] = [];
  #length = 0;
  #skipping = false;
  #lineNumber = 0;

  constructor(maxLength: number, onTooLong: (lineNumber: number, start: string) => void) {
    this.#maxLength = maxLength;
    this.#onTooLong = onTooLong;
  }

  push(text: string, emit: (line: string, lineNumber: number) => void): void {
    let start = 0;
    for (;;) {
      const newline = text.indexOf("\n", start);
      const end = newline === -1 ? text.length : newline;
      if (end > start) this.#append(text, start, end);
      if (newline === -1) return;
      this.#finish(emit);
      start = newline + 1;
    }
  }

  /** Emits the last line when the input did not end with a newline. */
  end(emit: (line: string, lineNumber: number) => void): void {
    if (this.#length > 0 || this.#skipping) this.#finish(emit);
  }

  #append(text: string, start: number, end: number): void {
    if (this.#skipping) return;
    if (this.#length + end - start > this.#maxLength) {
      const head = this.#pieces.join("").slice(0, 200) + text.slice(start, start + 200);
      this.#pieces = [];
      this.#length = 0;
      this.#skipping = true;
      this.#onTooLong(this.#lineNumber + 1, head.slice(0, 200));
      return;
    }
    this.#pieces.push(start === 0 && end === text.length ? text : text.slice(start, end));
    this.#length += end - start;
  }

  #finish(emit: (line: string, lineNumber: number) => void): void {
    const lineNumber = ++this.#lineNumber;
    if (this.#skipping) {
      this.#skipping = false;
      return;
    }
    const pieces = this.#pieces;
    const line = pieces.length === 1 ? pieces[0]! : pieces.join("");
    this.#pieces = [];
    this.#length = 0;
    emit(line, lineNumber);
  }
}

const scratchHashKey = createHashKey();

/** Turns one line into a record, or reports it as rejected and returns `undefined`. */
function lineParser(
  command: PutCommand,
  maxRecordSize: number,
  report: Report,
): (line: string, lineNumber: number) => LineRecord | undefined {
  const { stream, format, keyField, randomKey } = command;
  const keyPath = keyField?.split(".");
  return (line, lineNumber) => {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.trim() === "") return undefined;
    try {
      const record = format === "lines"
        ? { stream, partitionKey: crypto.randomUUID(), data: line }
        : jsonRecord(line, stream, keyPath, randomKey);
      const size = utf8Length(record.partitionKey) + utf8Length(record.data);
      if (size > maxRecordSize) {
        throw new ValidationError(
          `The record's data plus partition key is ${size} bytes, over the ${maxRecordSize} bytes allowed`,
          { field: "data" },
        );
      }
      return record;
    } catch (error) {
      report.rejectLine(lineNumber, line, error);
      return undefined;
    }
  };
}

interface LineRecord extends UserRecord {
  readonly partitionKey: string;
  readonly data: string;
}

function jsonRecord(
  line: string,
  stream: string,
  keyPath: readonly string[] | undefined,
  randomKey: boolean,
): LineRecord {
  const value: unknown = JSON.parse(line);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError("The line is not a JSON object");
  }
  if (keyPath !== undefined) {
    let key: unknown = value;
    for (const part of keyPath) {
      key = typeof key === "object" && key !== null
        ? (key as Record<string, unknown>)[part]
        : undefined;
    }
    if (typeof key === "number" || typeof key === "boolean") key = String(key);
    if (key === undefined) throw new TypeError(`The line has no '${keyPath.join(".")}' field`);
    assertPartitionKey(key);
    return { stream, partitionKey: key, data: line };
  }
  const envelope = value as Record<string, unknown>;
  const partitionKey = randomKey ? crypto.randomUUID() : envelope.partitionKey;
  if (partitionKey === undefined) throw new TypeError("The line has no 'partitionKey' field");
  assertPartitionKey(partitionKey);
  const raw = envelope.data;
  if (raw === undefined) throw new TypeError("The line has no 'data' field");
  const data = typeof raw === "string" ? raw : JSON.stringify(raw);
  const explicitHashKey = envelope.explicitHashKey;
  if (explicitHashKey === undefined || explicitHashKey === null) {
    return { stream, partitionKey, data };
  }
  parseExplicitHashKey(explicitHashKey, scratchHashKey);
  return { stream, partitionKey, data, explicitHashKey: explicitHashKey as string };
}

/** A text sink for failure or rejection lines. */
interface LineOutput {
  write(text: string): void;
  close(): Promise<void>;
}

async function openOutput(path: string | undefined, report: Report): Promise<LineOutput> {
  if (path === undefined) {
    return { write: (text) => report.message(text), close: () => Promise.resolve() };
  }
  const file = await open(path, "w");
  // Lines are batched so that a run where every record fails does not queue one write each.
  let buffered = "";
  let writing: Promise<unknown> = Promise.resolve();
  const drain = (): void => {
    const text = buffered;
    buffered = "";
    writing = writing.then(() => file.write(text));
  };
  return {
    write(text) {
      buffered += text;
      if (buffered.length >= 65_536) drain();
    },
    async close() {
      if (buffered !== "") drain();
      try {
        await writing;
      } finally {
        await file.close();
      }
    },
  };
}

const PROGRESS_INTERVAL_MS = 250;

/** Counts results, writes failure and rejection lines and draws the progress line. */
class Report {
  readonly #command: PutCommand;
  readonly #output: PutOutput;
  readonly #showProgress: boolean;
  failures: LineOutput | undefined;
  rejected: LineOutput | undefined;
  #producer: Producer | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #startedAt = 0;
  #endedAt = 0;
  #records = 0;
  #succeeded = 0;
  #failed = 0;
  #rejectedLines = 0;
  #retries = 0;
  #failedAttempts = 0;
  #errorCodes: Record<string, number> = {};
  #progressShown = false;
  #lastTick = 0;
  #lastSettled = 0;
  /** Records read and handed on that have no result yet. */
  readonly #unsettled = new Set<UserRecord>();

  constructor(command: PutCommand, output: PutOutput) {
    this.#command = command;
    this.#output = output;
    this.#showProgress = command.progress === "always" ||
      (command.progress === "auto" && output.stderrIsTerminal === true);
  }

  /** The producer's logger: warnings and errors on their own lines, never on the progress. */
  readonly logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (message: string, ...details: unknown[]) => this.#log(message, details),
    error: (message: string, ...details: unknown[]) => this.#log(message, details),
  };

  #log(message: string, details: unknown[]): void {
    const text = [message, ...details.map((detail) => firstLine(detail))].join(": ");
    this.message(`webkpl: ${text}\n`);
  }

  start(producer: Producer): void {
    this.#producer = producer;
    this.#startedAt = performance.now();
    this.#lastTick = this.#startedAt;
    if (this.#showProgress) {
      this.#timer = setInterval(() => this.#drawProgress(), PROGRESS_INTERVAL_MS);
    }
  }

  stop(): void {
    this.#endedAt = performance.now();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#clearProgress();
  }

  /** A record read from the input, on its way into the producer. */
  sent(record: UserRecord): void {
    this.#unsettled.add(record);
  }

  readonly onAttempt = (attempt: Attempt): void => {
    if (!attempt.success) this.#failedAttempts++;
  };

  readonly onResult = (result: RecordResult): void => {
    this.#unsettled.delete(result.record);
    this.#records++;
    this.#retries += result.attempts.length > 0 ? result.attempts.length - 1 : 0;
    if (result.success) {
      this.#succeeded++;
      return;
    }
    this.#fail(
      result.record,
      result.errorCode ?? "Unknown",
      result.errorMessage,
      result.attempts.length,
    );
  };

  /**
   * Fails every record read that never got a result: the run stopped (a signal, an error)
   * before the producer admitted it.
   */
  unsent(reason: string | undefined): void {
    const message = `Not sent: ${
      reason ?? "the run stopped"
    } before the record entered the producer`;
    for (const record of this.#unsettled) {
      this.#records++;
      this.#fail(record, ErrorCodes.producerClosed, message, 0);
    }
    this.#unsettled.clear();
  }

  #fail(record: UserRecord, code: string, message: string | undefined, attempts: number): void {
    this.#failed++;
    this.#errorCodes[code] = (this.#errorCodes[code] ?? 0) + 1;
    this.failures!.write(
      JSON.stringify({
        partitionKey: record.partitionKey,
        data: typeof record.data === "string" ? record.data : new TextDecoder().decode(record.data),
        ...(record.explicitHashKey === undefined
          ? {}
          : { explicitHashKey: record.explicitHashKey }),
        errorCode: code,
        errorMessage: message,
        attempts,
      }) + "\n",
    );
  }

  rejectLine(lineNumber: number, line: string, error: unknown): void {
    this.#rejectedLines++;
    this.rejected!.write(
      JSON.stringify({
        line: lineNumber,
        errorCode: "InvalidInput",
        errorMessage: error instanceof Error ? error.message : String(error),
        input: line.length > 200 ? `${line.slice(0, 200)}…` : line,
      }) + "\n",
    );
  }

  message(text: string): void {
    this.#clearProgress();
    this.#output.stderr(text);
  }

  summary(error: string | undefined, notReady: string | undefined): PutSummary {
    return {
      stream: this.#command.stream,
      records: this.#records,
      succeeded: this.#succeeded,
      failed: this.#failed,
      rejected: this.#rejectedLines,
      retries: this.#retries,
      errorCodes: { ...this.#errorCodes },
      elapsedMs: Math.max(0, this.#endedAt - this.#startedAt),
      error,
      notReady,
    };
  }

  #drawProgress(): void {
    const now = performance.now();
    const settled = this.#records;
    const rate = ((settled - this.#lastSettled) * 1000) / Math.max(1, now - this.#lastTick);
    this.#lastTick = now;
    this.#lastSettled = settled;
    const outstanding = this.#producer?.outstandingRecords ?? 0;
    // Every failed attempt but a failed record's last one was followed by another: the
    // retries so far, including those of records still in flight.
    const retries = Math.max(this.#retries, this.#failedAttempts - this.#failed);
    this.#output.stderr(
      `\r\x1b[K${count(settled)} records  ${count(Math.round(rate))}/s  outstanding ${
        count(outstanding)
      }  retries ${count(retries)}  failures ${count(this.#failed + this.#rejectedLines)}`,
    );
    this.#progressShown = true;
  }

  #clearProgress(): void {
    if (!this.#progressShown) return;
    this.#output.stderr("\r\x1b[K");
    this.#progressShown = false;
  }
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

/** `1 record`, `2 records`. */
function counted(n: number, singular: string, plural = `${singular}s`): string {
  return `${count(n)} ${n === 1 ? singular : plural}`;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
