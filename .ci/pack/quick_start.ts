// A user's first program, run by `.ci/test-pack` from an empty folder where only the packed
// tarball was installed: the README's quick start, pointed at the emulator it is given. It
// imports the package by its name, so Node loads the built JavaScript and Bun the sources.
import process from "node:process";
import { isRecordsFailedError, Producer, type UserRecord } from "webkpl";
import { InMemorySink } from "webkpl/sinks";

const endpoint = process.env.KINESIS_ENDPOINT;
const stream = process.env.STREAM;
const tag = process.env.TAG ?? "quick-start";
if (endpoint === undefined || stream === undefined) {
  throw new Error("Set KINESIS_ENDPOINT and STREAM");
}

console.log(`${tag}: webkpl is ${import.meta.resolve("webkpl")}`);
const sink = new InMemorySink();
let stored = 0;
let failed = 0;
{
  await using producer = new Producer({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
    stream,
    metricsLevel: "summary",
    metricsGranularity: "global",
    metricsSink: sink,
  });

  const result = await producer.put({ partitionKey: "user-1", data: `${tag} put` });
  if (result.success) stored++;
  else failed++;

  const records: UserRecord[] = ["a", "b", "c"].map((key) => ({
    partitionKey: key,
    data: `${tag} pipe ${key}`,
  }));
  try {
    await ReadableStream.from(records).pipeTo(producer.writable);
    stored += records.length;
  } catch (error) {
    if (!isRecordsFailedError(error)) throw error;
    failed += error.failures.length;
    stored += records.length - error.failures.length;
  }

  const receipt = await producer.enqueue({ partitionKey: "user-2", data: `${tag} enqueue` });
  await producer.flush();
  if ((await receipt.result).success) stored++;
  else failed++;
}

const put = sink.snapshots.filter((snapshot) => snapshot.name === "UserRecordsPut")
  .reduce((sum, snapshot) => sum + snapshot.sum, 0);
console.log(`${tag}: ${stored} stored, ${failed} failed, UserRecordsPut ${put}`);
process.exitCode = failed === 0 && stored === 5 ? 0 : 1;
