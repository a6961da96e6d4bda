// `maxRecordSize: "stream"`: the producer reads each stream's `MaxRecordSizeInKiB` once
// with DescribeStreamSummary and refuses a record over it at put(); a client without
// describeStreamSummary(), or a stream that does not say, leaves Kinesis to refuse.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CreateStreamCommand } from "@aws-sdk/client-kinesis";
import { isValidationError } from "../src/errors.ts";
import type {
  DescribeStreamSummaryInput,
  KinesisClient,
  PutRecordsInput,
} from "../src/kinesis_client.ts";
import { Producer } from "../src/producer.ts";
import { CapturingLogger } from "./support/capturing_logger.ts";
import {
  type Emulator,
  producerOn,
  startKinesalite,
  startKinesisLocal,
} from "./support/emulators.ts";
import {
  createStream,
  createTestClient,
  uniqueStreamName,
  waitForActive,
} from "./support/kinesis_sdk.ts";

const MiB = 1024 * 1024;
const SHARD = "shardId-000000000000";

/** `size` bytes of data plus partition key. */
function record(partitionKey: string, size: number) {
  return { partitionKey, data: new Uint8Array(size - partitionKey.length) };
}

/** One shard that stores everything; `describe` answers DescribeStreamSummary when given. */
function client(describe?: (input: DescribeStreamSummaryInput) => number | undefined) {
  const described: DescribeStreamSummaryInput[] = [];
  const kinesis: KinesisClient = {
    listShards: () =>
      Promise.resolve({
        Shards: [{
          ShardId: SHARD,
          HashKeyRange: { StartingHashKey: "0", EndingHashKey: String(2n ** 128n - 1n) },
        }],
      }),
    putRecords: (input: PutRecordsInput) =>
      Promise.resolve({
        FailedRecordCount: 0,
        Records: input.Records.map((_, i) => ({ ShardId: SHARD, SequenceNumber: `${i}` })),
      }),
  };
  if (describe !== undefined) {
    kinesis.describeStreamSummary = (input) => {
      described.push(input);
      return Promise.resolve({
        StreamDescriptionSummary: { MaxRecordSizeInKiB: describe(input) },
      });
    };
  }
  return { kinesis, described };
}

test("Producer with maxRecordSize 'stream' reads the stream's limit once and refuses a record over it at put()", async () => {
  const arn = "arn:aws:kinesis:us-east-1:123456789012:stream/events";
  const { kinesis, described } = client(() => 2048);
  const producer = new Producer({ stream: arn, maxRecordSize: "stream", kinesisClient: kinesis });
  await producer.ready();
  await assert.rejects(
    producer.put(record("k", 2 * MiB + 1)),
    (error: unknown) =>
      isValidationError(error) && error.field === "data" &&
      /at most 2097152 bytes \(the stream's limit\): got 2097153/.test(error.message),
  );
  const results = await Promise.all([
    producer.put(record("a", 2 * MiB)),
    producer.put(record("b", 10)),
  ]);
  await producer.close();
  assert.deepEqual(results.map((result) => result.success), [true, true]);
  assert.deepEqual(described, [{ StreamARN: arn }]);
});

test("Producer with maxRecordSize 'stream' takes 1 MiB for a stream whose summary has no MaxRecordSizeInKiB", async () => {
  const { kinesis } = client(() => undefined);
  const producer = new Producer({ stream: "s", maxRecordSize: "stream", kinesisClient: kinesis });
  await producer.ready();
  await assert.rejects(producer.put(record("k", MiB + 1)), /at most 1048576 bytes/);
  assert.equal((await producer.put(record("k", MiB))).success, true);
  await producer.close();
});

test("Producer with maxRecordSize 'stream' and a client without describeStreamSummary() warns and sends", async () => {
  const { kinesis } = client();
  const logger = new CapturingLogger();
  const producer = new Producer({
    stream: "s",
    maxRecordSize: "stream",
    kinesisClient: kinesis,
    logger,
  });
  await producer.ready();
  const result = await producer.put(record("k", 3 * MiB));
  await producer.close();
  assert.equal(result.success, true);
  assert.deepEqual(logger.calls.map((call) => call.level), ["warn"]);
  assert.match(logger.calls[0]!.message, /has no describeStreamSummary\(\)/);
});

test("Producer() refuses a maxRecordSize string other than 'stream', naming both forms", () => {
  assert.throws(
    // @ts-expect-error: a wrong string on purpose
    () => new Producer({ maxRecordSize: "10MiB" }),
    /^TypeError: Cannot create producer as 'maxRecordSize' must be an integer between 1 and 10485760, or 'stream': current value is '10MiB'/,
  );
});

describe("maxRecordSize 'stream' against the emulators", () => {
  let kinesisLocal: Emulator;
  let kinesalite: Emulator;

  before(async () => {
    [kinesisLocal, kinesalite] = await Promise.all([startKinesisLocal(), startKinesalite()]);
  });

  after(async () => {
    await Promise.all([kinesisLocal?.stop(), kinesalite?.stop()]);
  });

  for (const name of ["kinesis-local", "kinesalite"] as const) {
    test(`${name}: a 1 MiB stream's limit refuses 1 MiB + 1 B at put(); a 10240 KiB stream takes 2 MiB`, async () => {
      const emulator = name === "kinesalite" ? kinesalite : kinesisLocal;
      const sdk = createTestClient(emulator.endpoint);
      const classic = uniqueStreamName("classic");
      const large = uniqueStreamName("large");
      await createStream(sdk, classic);
      // kinesalite ignores MaxRecordSizeInKiB: its summary never has one, so 1 MiB.
      await sdk.send(
        new CreateStreamCommand({ StreamName: large, ShardCount: 1, MaxRecordSizeInKiB: 10240 }),
      );
      await waitForActive(sdk, large);
      sdk.destroy();
      const ready = async (stream: string) => {
        const producer = producerOn(emulator, { stream, maxRecordSize: "stream" });
        await producer.ready();
        return producer;
      };
      const classicProducer = await ready(classic);
      await assert.rejects(classicProducer.put(record("k", MiB + 1)), /the stream's limit/);
      await classicProducer.close();
      const largeProducer = await ready(large);
      const big = await largeProducer.put(record("big", 2 * MiB)).catch((error: Error) => error);
      await largeProducer.close();
      if (name === "kinesis-local") {
        assert.equal(!(big instanceof Error) && big.success, true);
      } else {
        assert.match(String(big), /at most 1048576 bytes \(the stream's limit\)/);
      }
    });
  }
});
