/**
 * A Bun script that pipes a file, one record per line, through `producer.writable`.
 *
 * ```sh
 * bun examples/bun_pipe_file.ts events.txt events            # stream "events", region from AWS_REGION
 * KINESIS_ENDPOINT=http://127.0.0.1:4567 bun examples/bun_pipe_file.ts events.txt events
 * ```
 *
 * `pipeTo` resolves once every line is stored, or rejects with a `RecordsFailedError` whose
 * `failures` hold each failed record and its error.
 *
 * @module
 */
import process from "node:process";
import { isRecordsFailedError, Producer, type UserRecord } from "../mod.ts";

declare const Bun: { file(path: string): { stream(): ReadableStream<Uint8Array> } };

const [path, stream] = process.argv.slice(2);
if (path === undefined || stream === undefined) {
  console.error("usage: bun examples/bun_pipe_file.ts FILE STREAM");
  process.exit(2);
}
const endpoint = process.env.KINESIS_ENDPOINT;

await using producer = new Producer({
  stream,
  ...(endpoint === undefined ? {} : { endpoint }),
});

// The limit of one record (data plus partition key, `maxRecordSize`), with room for the key.
const MAX_LINE_LENGTH = 1024 * 1024 - 64;
const encoder = new TextEncoder();
let lineNumber = 0;
let recordNumber = 0;
let skipped = 0;
// A line within the character cap can still be over it in UTF-8 bytes; only a line with
// more than a third of the cap in characters can be, so only those are measured.
function fits(line: string): boolean {
  if (line.length * 3 <= MAX_LINE_LENGTH) return true;
  if (encoder.encode(line).length <= MAX_LINE_LENGTH) return true;
  console.error(`a line of ${line.length} characters is over ${MAX_LINE_LENGTH} bytes: skipped`);
  skipped++;
  return false;
}
const toRecords = (lines: string[]): UserRecord[] =>
  lines.filter((line) => line !== "" && fits(line)).map((data) => ({
    partitionKey: `line-${++recordNumber}`,
    data,
  }));

/**
 * Splits text into lines in linear time: the unfinished line is kept as pieces and
 * joined once, at its newline. A line longer than `max` characters is reported as soon as
 * it is and skipped up to its newline, never kept whole in memory.
 */
function splitLines(max: number): TransformStream<string, string[]> {
  let pieces: string[] = [];
  let length = 0;
  let skipping = false;
  const append = (text: string): void => {
    if (skipping || text === "") return;
    if (length + text.length > max) {
      console.error(`line ${lineNumber + 1} is longer than ${max} characters: skipped`);
      skipped++;
      skipping = true;
      pieces = [];
      length = 0;
      return;
    }
    pieces.push(text);
    length += text.length;
  };
  const finish = (lines: string[]): void => {
    lineNumber++;
    if (!skipping) lines.push(pieces.join(""));
    pieces = [];
    length = 0;
    skipping = false;
  };
  return new TransformStream({
    transform(chunk, controller) {
      const lines: string[] = [];
      let start = 0;
      for (let end = chunk.indexOf("\n"); end !== -1; end = chunk.indexOf("\n", start)) {
        append(chunk.slice(start, end));
        finish(lines);
        start = end + 1;
      }
      append(chunk.slice(start));
      if (lines.length > 0) controller.enqueue(lines);
    },
    flush(controller) {
      if (length === 0 && !skipping) return;
      const lines: string[] = [];
      finish(lines);
      if (lines.length > 0) controller.enqueue(lines);
    },
  });
}

try {
  await Bun.file(path).stream()
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(splitLines(MAX_LINE_LENGTH))
    .pipeThrough(
      new TransformStream<string[], UserRecord[]>({
        transform: (lines, controller) => controller.enqueue(toRecords(lines)),
      }),
    )
    .pipeTo(producer.writable);
  console.log(
    `${recordNumber} line${recordNumber === 1 ? "" : "s"} stored in ${stream}, ${skipped} skipped`,
  );
  if (skipped > 0) process.exitCode = 1;
} catch (error) {
  if (!isRecordsFailedError(error)) throw error;
  console.error(`${error.message}; e.g. ${JSON.stringify(error.failures[0]?.record)}`);
  process.exitCode = 1;
}
