/**
 * A loopback HTTP front end for a {@linkcode InMemoryKinesis}, so producers in separate
 * processes can share one model: it answers `PutRecords` and `ListShards` in AWS JSON 1.1
 * (what the SDK speaks to Kinesis) on 127.0.0.1, and `WebkplModel.Seconds` with the model's
 * per-second counters. Each request is counted under the access key id of its SigV4
 * `Authorization` header, so giving every producer its own (fake) access key id names it
 * in the counters. Signatures are not checked.
 *
 * Usage as a process: `deno run -A tests/support/kinesis_model_server.ts --stream s
 * --shards 4` prints one line `{"port":N}` and exits when its stdin closes.
 */
import http from "node:http";
import { Buffer } from "node:buffer";
import process from "node:process";
import { systemClock } from "../../src/clock.ts";
import type { PutRecordsInput } from "../../src/kinesis_client.ts";
import { InMemoryKinesis, type InMemoryKinesisOptions } from "../../testing/kinesis_model.ts";

/** A running server. */
export interface KinesisModelServer {
  /** `http://127.0.0.1:PORT`. */
  endpoint: string;
  /** The model behind it. */
  model: InMemoryKinesis;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

interface WireEntry {
  Data?: string;
  PartitionKey?: string;
  ExplicitHashKey?: string;
}

const CREDENTIAL = /Credential=([^/,\s]+)\//;

/**
 * Starts a model server on a free loopback port.
 *
 * @param options The model's options; the clock defaults to the system clock.
 * @returns The endpoint, the model and a `close()`.
 */
export async function startKinesisModelServer(
  options: Omit<InMemoryKinesisOptions, "clock"> & Partial<Pick<InMemoryKinesisOptions, "clock">>,
): Promise<KinesisModelServer> {
  const model = new InMemoryKinesis({ clock: systemClock, ...options });
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const { status, body } = answer(model, request, Buffer.concat(chunks).toString("utf8"));
      response.writeHead(status, {
        "content-type": "application/x-amz-json-1.1",
        "x-amzn-requestid": "model",
      });
      response.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    model,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function answer(
  model: InMemoryKinesis,
  request: http.IncomingMessage,
  text: string,
): { status: number; body: string } {
  const target = String(request.headers["x-amz-target"] ?? "");
  const producer = CREDENTIAL.exec(String(request.headers.authorization ?? ""))?.[1] ??
    "anonymous";
  try {
    switch (target) {
      case "Kinesis_20131202.PutRecords": {
        const wire = JSON.parse(text) as {
          StreamName: string;
          StreamARN?: string;
          Records: WireEntry[];
        };
        const input: PutRecordsInput = {
          StreamName: wire.StreamName,
          ...(wire.StreamARN ? { StreamARN: wire.StreamARN } : {}),
          Records: wire.Records.map((entry) => ({
            Data: new Uint8Array(Buffer.from(entry.Data ?? "", "base64")),
            PartitionKey: entry.PartitionKey ?? "",
            ...(entry.ExplicitHashKey ? { ExplicitHashKey: entry.ExplicitHashKey } : {}),
          })),
        };
        return { status: 200, body: JSON.stringify(model.putRecords(input, producer)) };
      }
      case "Kinesis_20131202.ListShards":
        return { status: 200, body: JSON.stringify(model.listShards(JSON.parse(text))) };
      case "WebkplModel.Seconds":
        return { status: 200, body: JSON.stringify(model.seconds()) };
      default:
        return {
          status: 400,
          body: JSON.stringify({ __type: "UnknownOperationException", message: target }),
        };
    }
  } catch (error) {
    const { name, message, $metadata } = error as Error & {
      $metadata?: { httpStatusCode?: number };
    };
    const status = $metadata?.httpStatusCode ?? 400;
    return { status, body: JSON.stringify({ __type: name, message }) };
  }
}

function flag(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1] ?? fallback : fallback;
}

if (import.meta.main) {
  const server = await startKinesisModelServer({
    streams: { [flag("stream", "fleet")]: Number(flag("shards", "4")) },
    keepRecords: false,
  });
  console.log(JSON.stringify({ port: Number(new URL(server.endpoint).port) }));
  process.stdin.on("end", () => server.close().then(() => process.exit(0)));
  process.stdin.on("data", () => {});
  process.stdin.resume();
}
