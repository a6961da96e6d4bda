// Run as a child process by lifecycle_test.ts: puts records, never closes the producer,
// and prints what happened. The process must exit on its own once nothing is outstanding.
import { Producer } from "../../src/producer.ts";
import { silentLogger } from "../../src/logger.ts";
import { InMemoryKinesis } from "../../testing.ts";

const mode = (globalThis as { process?: { argv: string[] } }).process?.argv.at(-1);
const kinesis = new InMemoryKinesis({ streams: { s: 2 } }).client();
const producer = new Producer({
  stream: "s",
  kinesisClient: kinesis,
  logger: silentLogger,
  metricsLevel: "detailed",
  recordMaxBufferedTimeMs: mode === "buffered" ? 300 : 10,
});
if (mode === "buffered") {
  // Not awaited: the buffered record alone must keep the process alive until it settles.
  producer.put({ partitionKey: "k", data: "x" }).then((result) => {
    console.log(`settled ${result.success}`);
  });
} else {
  const result = await producer.put({ partitionKey: "k", data: "x" });
  console.log(`settled ${result.success}`);
}
