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

let partial = "";
let lineNumber = 0;
const toRecords = (lines: string[]): UserRecord[] =>
  lines.filter((line) => line !== "").map((data) => ({
    partitionKey: `line-${++lineNumber}`,
    data,
  }));

try {
  await Bun.file(path).stream()
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(
      new TransformStream<string, UserRecord[]>({
        transform(chunk, controller) {
          const lines = (partial + chunk).split("\n");
          partial = lines.pop()!;
          controller.enqueue(toRecords(lines));
        },
        flush(controller) {
          controller.enqueue(toRecords([partial]));
        },
      }),
    )
    .pipeTo(producer.writable);
  console.log(`${lineNumber} lines stored in ${stream}`);
} catch (error) {
  if (!isRecordsFailedError(error)) throw error;
  console.error(`${error.message}; e.g. ${JSON.stringify(error.failures[0]?.record)}`);
  process.exitCode = 1;
}
