// Streams given by ARN: what the producer puts on the wire (StreamARN alone), what it keeps
// as the metrics dimension (the name), what it refuses at the call (a malformed ARN), and
// what each emulator answers. kinesis-local takes StreamARN on PutRecords and ListShards;
// kinesalite knows only StreamName and refuses both calls, which the producer reports at
// once with kinesalite's own code.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseArguments } from "../cli.ts";
import { isValidationError } from "../src/errors.ts";
import type { ListShardsInput, PutRecordsInput } from "../src/kinesis_client.ts";
import { Producer } from "../src/producer.ts";
import { systemClock } from "../src/clock.ts";
import { InMemoryKinesis } from "../testing/kinesis_model.ts";
import {
  producerOn,
  startKinesalite,
  startKinesisLocal,
  useEmulator,
} from "./support/emulators.ts";
import { createStream, uniqueStreamName } from "./support/kinesis_sdk.ts";
import { readStream, reconcile } from "./support/readback.ts";
import { recordingClient } from "./support/recording_client.ts";

// Both emulators run as account 000000000000 in us-east-1 (tests/support/emulators.ts).
const arnOf = (name: string, account = "000000000000") =>
  `arn:aws:kinesis:us-east-1:${account}:stream/${name}`;

const MALFORMED = [
  "arn:aws:kinesis:us-east-1:12345:stream/events", // account of 5 digits
  "arn:aws:kinesis:us-east-1:123456789012:stream/", // no name
  "arn:aws:kinesis:us-east-1:123456789012:deliverystream/events", // another resource
  "arn:aws:s3:::events", // another service
  "arn:aws:kinesis:us-east-1:123456789012:stream/ev ents", // a space in the name
  "arn:aws:kinesis::123456789012:stream/events", // no region
];

function inProcess() {
  const model = new InMemoryKinesis({
    clock: systemClock,
    streams: { events: 2 },
    accountId: "000000000000",
  });
  return { model, recording: recordingClient(model.client()) };
}

test("Producer sends StreamARN and no StreamName in PutRecords and ListShards for a stream given by ARN", async () => {
  const { model, recording } = inProcess();
  const arn = arnOf("events");
  const producer = new Producer({ stream: arn, kinesisClient: recording.client });
  const results = await Promise.all(
    ["a", "b", "c", "d"].map((key) => producer.put({ partitionKey: key, data: `data-${key}` })),
  );
  await producer.close();
  assert.deepEqual(results.map((result) => result.success), [true, true, true, true]);
  const puts = recording.calls.filter((call) => call.kind === "putRecords");
  const lists = recording.calls.filter((call) => call.kind === "listShards");
  assert.ok(puts.length > 0 && lists.length > 0);
  for (const call of puts) {
    const input = call.input as PutRecordsInput;
    assert.equal(input.StreamARN, arn);
    assert.equal("StreamName" in input, false);
  }
  const first = lists[0]!.input as ListShardsInput;
  assert.equal(first.StreamARN, arn);
  assert.equal("StreamName" in first, false);
  assert.deepEqual(model.records("events").map((record) => record.partitionKey).sort(), [
    "a",
    "b",
    "c",
    "d",
  ]);
});

test("Producer keeps the stream name as the metrics dimension of a stream given by ARN", async () => {
  const { recording } = inProcess();
  const producer = new Producer({
    kinesisClient: recording.client,
    metricsLevel: "summary",
    metricsGranularity: "stream",
  });
  await producer.put({ stream: arnOf("events"), partitionKey: "k", data: "x" });
  await producer.put({ stream: "events", partitionKey: "k", data: "y" });
  const keys = [...producer.metrics.snapshot().keys()].filter((key) =>
    key.startsWith("UserRecordsPut")
  );
  await producer.close();
  // The ARN and the name are one stream to the metrics: one series with both records.
  assert.deepEqual(keys, ["UserRecordsPut{stream=events}"]);
  assert.equal(producer.metrics.snapshot().get(keys[0]!)?.sum, 2);
});

test("A malformed stream ARN is a ValidationError at put() and a TypeError for the 'stream' option", async () => {
  const { recording } = inProcess();
  const producer = new Producer({ kinesisClient: recording.client });
  for (const stream of MALFORMED) {
    await assert.rejects(
      producer.put({ stream, partitionKey: "k", data: "x" }),
      (error: unknown) =>
        isValidationError(error) && error.field === "stream" &&
        /stream ARN \(arn:<partition>:kinesis:<region>:<12-digit account>:stream\/<name>\)/
          .test(error.message),
      stream,
    );
    assert.throws(
      () => new Producer({ stream, kinesisClient: recording.client }),
      (error: unknown) => error instanceof TypeError && /'stream' must be/.test(error.message),
      stream,
    );
  }
  for (const stream of [arnOf("events"), "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/a.b"]) {
    assert.doesNotThrow(() => new Producer({ stream, kinesisClient: recording.client }));
  }
  await producer.close();
  assert.equal(recording.calls.length, 0);
});

test("The CLI's --stream takes a stream ARN, and refuses a malformed one naming the flag", () => {
  const arn = arnOf("events");
  const command = parseArguments(["put", "--stream", arn]);
  assert.equal(command.name === "put" && command.put.producer.stream, arn);
  assert.throws(() => parseArguments(["put", "--stream", MALFORMED[0]!]), /--stream/);
});

describe("Stream ARNs against kinesis-local", () => {
  const env = useEmulator(startKinesisLocal);

  test("kinesis-local stores records sent by stream ARN, read back and deaggregated", async () => {
    const name = uniqueStreamName("arn");
    await createStream(env.client, name, { shardCount: 2 });
    const producer = producerOn(env.emulator, {
      stream: arnOf(name),
    });
    await producer.ready();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => producer.put({ partitionKey: `k${i}`, data: `d${i}` })),
    );
    await producer.close();
    assert.deepEqual(results.filter((result) => !result.success).map((r) => r.errorCode), []);
    const contents = await readStream(env.client, name);
    const report = reconcile(
      contents.records,
      results.map((result) => ({
        shardId: result.shardId!,
        sequenceNumber: result.sequenceNumber!,
        subSequenceNumber: result.subSequenceNumber!,
        data: result.record.data,
        partitionKey: result.record.partitionKey,
      })),
    );
    assert.deepEqual([report.found, report.missing, report.mismatched], [200, 0, 0]);
  });

  test("kinesis-local answers a stream ARN of another account with ResourceNotFoundException, at once", async () => {
    const name = uniqueStreamName("arn-other");
    await createStream(env.client, name);
    const producer = producerOn(env.emulator);
    const result = await producer.put({
      stream: arnOf(name, "111111111111"),
      partitionKey: "k",
      data: "x",
    });
    await producer.close();
    assert.equal(result.success, false);
    assert.equal(result.errorCode, "ResourceNotFoundException");
    assert.equal(result.attempts.length, 1);
  });
});

describe("Stream ARNs against kinesalite", () => {
  const env = useEmulator(startKinesalite);

  test("kinesalite does not know StreamARN: ready() and the record fail at once with its code", async () => {
    const name = uniqueStreamName("arn");
    await createStream(env.client, name);
    const producer = producerOn(env.emulator, {
      stream: arnOf(name),
    });
    // ListShards without StreamName: "Either NextToken or StreamName should be provided."
    await assert.rejects(producer.ready(), { code: "InvalidArgumentException", permanent: true });
    const result = await producer.put({ partitionKey: "k", data: "x" });
    await producer.close();
    assert.equal(result.success, false);
    // PutRecords without StreamName: "Value null at 'streamName' failed to satisfy constraint".
    assert.equal(result.errorCode, "ValidationException");
    assert.match(result.errorMessage ?? "", /streamName/);
    assert.equal(result.attempts.length, 1);
  });
});
