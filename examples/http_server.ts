/**
 * A Deno HTTP server that forwards request bodies to Kinesis, with backpressure: each POST
 * body (one record per line) is piped into its own writable stream of one shared producer,
 * so a body is read only as fast as the producer admits records, and the response is sent
 * once every record of the body has a result.
 *
 * ```sh
 * STREAM=events AWS_REGION=us-east-1 deno run --allow-net --allow-env --allow-read examples/http_server.ts
 * curl --data-binary @events.txt http://127.0.0.1:8080/
 * ```
 *
 * `KINESIS_ENDPOINT` points the producer at an emulator; `PORT` picks the port (8080).
 *
 * @module
 */
import { Producer, type RecordResult, type UserRecord } from "../mod.ts";

const stream = Deno.env.get("STREAM") ?? "events";
const endpoint = Deno.env.get("KINESIS_ENDPOINT");
const producer = new Producer({
  stream,
  ...(endpoint === undefined ? {} : { endpoint }),
  // Bounded memory across every request: bodies wait here, not in the server.
  maxOutstandingRecords: 50_000,
  maxOutstandingBytes: 64 * 1024 * 1024,
});

// The limit of one record (data plus partition key, `maxRecordSize`), with room for the key.
const MAX_LINE_LENGTH = 1024 * 1024 - 64;

/**
 * Splits text into lines and turns each chunk's lines into one array of records, in
 * linear time: the unfinished line is kept as pieces and joined once, at its newline. A
 * line longer than a record may be fails the body as soon as it is, without reading on.
 */
function linesToRecords(partitionKey: () => string): TransformStream<string, UserRecord[]> {
  let pieces: string[] = [];
  let length = 0;
  let lineNumber = 0;
  const append = (text: string): void => {
    length += text.length;
    if (length > MAX_LINE_LENGTH) {
      throw new RangeError(`Line ${lineNumber + 1} is longer than ${MAX_LINE_LENGTH} characters`);
    }
    if (text !== "") pieces.push(text);
  };
  const finish = (records: UserRecord[]): void => {
    lineNumber++;
    const data = pieces.join("");
    pieces = [];
    length = 0;
    if (data !== "") records.push({ partitionKey: partitionKey(), data });
  };
  return new TransformStream({
    transform(chunk, controller) {
      const records: UserRecord[] = [];
      let start = 0;
      for (let end = chunk.indexOf("\n"); end !== -1; end = chunk.indexOf("\n", start)) {
        append(chunk.slice(start, end));
        finish(records);
        start = end + 1;
      }
      append(chunk.slice(start));
      if (records.length > 0) controller.enqueue(records);
    },
    flush(controller) {
      const records: UserRecord[] = [];
      if (length > 0) finish(records);
      if (records.length > 0) controller.enqueue(records);
    },
  });
}

async function forward(request: Request): Promise<Response> {
  if (request.method !== "POST" || request.body === null) {
    return new Response("POST one record per line\n", { status: 405 });
  }
  // A client may name the partition key; otherwise records spread over the shards.
  const key = request.headers.get("x-partition-key");
  let records = 0;
  const failures: RecordResult[] = [];
  const writable = producer.createWritable({
    onResult: (result) => {
      records++;
      if (!result.success) failures.push(result);
    },
  });
  try {
    await request.body
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(linesToRecords(key === null ? () => crypto.randomUUID() : () => key))
      .pipeTo(writable);
  } catch (error) {
    return Response.json({ error: String(error), records, failed: failures.length }, {
      status: 400,
    });
  }
  const status = failures.length === 0 ? 200 : 502;
  return Response.json({
    records,
    failed: failures.length,
    errors: [...new Set(failures.map((failure) => failure.errorCode))],
  }, { status });
}

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: Number(Deno.env.get("PORT") ?? 8080),
}, forward);

Deno.addSignalListener("SIGINT", async () => {
  await server.shutdown();
  await producer.close();
  Deno.exit(0);
});
