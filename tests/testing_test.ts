// The public testing entry point (`testing.ts`): InMemoryKinesis as a user's tests meet it,
// through the producer and directly, and checked against kinesalite where the answers of a
// real emulator are cheap to get.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  ListShardsCommand,
  PutRecordsCommand,
  type Shard as SdkShard,
} from "@aws-sdk/client-kinesis";
import { encodeAggregated } from "../src/codec.ts";
import { silentLogger } from "../src/logger.ts";
import { Producer } from "../src/producer.ts";
import { InMemoryKinesis, type ListedShard, type PutRecordsInput } from "../testing.ts";
import { startKinesalite } from "./support/emulators.ts";
import { FakeClock } from "./support/fake_clock.ts";
import {
  createStream,
  createTestClient,
  splitShard as sdkSplitShard,
  uniqueStreamName,
} from "./support/kinesis_sdk.ts";

const signal = new AbortController().signal;

function request(stream: string, keys: string[], bytes = 1): PutRecordsInput {
  return {
    StreamName: stream,
    Records: keys.map((key) => ({ PartitionKey: key, Data: new Uint8Array(bytes) })),
  };
}

function keys(count: number, prefix = "k"): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

test("InMemoryKinesis numbers records per shard with increasing 56-digit sequence numbers", () => {
  const kinesis = new InMemoryKinesis({ streams: { s: 3 } });
  const out = kinesis.putRecords(request("s", keys(60)));
  assert.equal(out.FailedRecordCount, 0);
  const last = new Map<string, bigint>();
  for (const entry of out.Records!) {
    assert.match(entry.SequenceNumber!, /^\d{56}$/);
    const previous = last.get(entry.ShardId!) ?? -1n;
    assert.ok(BigInt(entry.SequenceNumber!) > previous, "increasing within the shard");
    last.set(entry.ShardId!, BigInt(entry.SequenceNumber!));
  }
  assert.equal(last.size, 3, "60 keys reach every one of 3 shards");
});

test("InMemoryKinesis enforces Kinesis' per-shard limits by default, others when asked, none with limits: false", () => {
  const burst = () => [0, 1, 2].map(() => request("s", keys(500)));
  // A clock that stands still, so the buckets do not refill between the calls.
  const clock = new FakeClock(0);
  const strict = new InMemoryKinesis({ clock, streams: { s: 1 } });
  const failed = burst().map((input) => strict.putRecords(input).FailedRecordCount);
  assert.deepEqual(failed, [0, 0, 500], "1000 records a second, then throttled");
  const low = new InMemoryKinesis({ clock, streams: { s: 1 }, limits: { recordsPerSecond: 10 } });
  assert.equal(low.putRecords(request("s", keys(15))).FailedRecordCount, 5);
  const open = new InMemoryKinesis({ streams: { s: 1 }, limits: false });
  assert.deepEqual(burst().map((input) => open.putRecords(input).FailedRecordCount), [0, 0, 0]);
  assert.throws(() => new InMemoryKinesis({ limits: { bytesPerSecond: 0 } }), RangeError);
});

test("InMemoryKinesis takes a StreamARN wherever a StreamName goes, and rejects foreign or malformed ones", async () => {
  const kinesis = new InMemoryKinesis({ streams: { s: 2 }, region: "eu-west-1" });
  const arn = kinesis.streamArn("s");
  assert.equal(arn, "arn:aws:kinesis:eu-west-1:123456789012:stream/s");
  const client = kinesis.client();
  const byArn = {
    StreamARN: arn,
    Records: request("s", ["a"]).Records,
  } as unknown as PutRecordsInput;
  assert.equal((await client.putRecords(byArn, { signal })).FailedRecordCount, 0);
  const listed = await client.listShards({ StreamARN: arn } as never, { signal });
  assert.equal(listed.Shards!.length, 2);
  assert.equal(kinesis.records(arn).length, 1);
  const foreign = arn.replace("123456789012", "999999999999");
  await assert.rejects(client.listShards({ StreamARN: foreign } as never, { signal }), {
    name: "ResourceNotFoundException",
  });
  await assert.rejects(
    client.listShards({ StreamARN: "arn:aws:s3:::bucket" } as never, { signal }),
    {
      name: "ValidationException",
    },
  );
  await assert.rejects(
    client.listShards({ StreamARN: arn, StreamName: "other" } as never, { signal }),
    { name: "InvalidArgumentException" },
  );
});

test("InMemoryKinesis splits and merges shards: parents close with an ending sequence number, children name them", () => {
  const kinesis = new InMemoryKinesis({ streams: { s: 2 } });
  kinesis.putRecords(request("s", keys(20)));
  const [left, right] = kinesis.splitShard("s", "shardId-000000000000");
  assert.deepEqual([left, right], ["shardId-000000000002", "shardId-000000000003"]);
  const all = kinesis.listShards({ StreamName: "s" }).Shards!;
  assert.equal(all.length, 4);
  const parent = all[0]!;
  assert.match(parent.SequenceNumberRange!.EndingSequenceNumber!, /^\d{56}$/);
  const children = all.slice(2) as (ListedShard & { ParentShardId?: string })[];
  assert.deepEqual(children.map((shard) => shard.ParentShardId), [
    "shardId-000000000000",
    "shardId-000000000000",
  ]);
  assert.equal(
    BigInt(children[0]!.HashKeyRange!.EndingHashKey!) + 1n,
    BigInt(children[1]!.HashKeyRange!.StartingHashKey!),
  );
  const open = kinesis.listShards({ StreamName: "s", ShardFilter: { Type: "AT_LATEST" } });
  assert.deepEqual(open.Shards!.map((shard) => shard.ShardId), [
    "shardId-000000000001",
    "shardId-000000000002",
    "shardId-000000000003",
  ]);
  const after = kinesis.putRecords(request("s", keys(20)));
  assert.ok(after.Records!.every((entry) => entry.ShardId !== "shardId-000000000000"));
  const child = after.Records!.find((entry) => entry.ShardId === left)!;
  assert.ok(
    BigInt(child.SequenceNumber!) > BigInt(parent.SequenceNumberRange!.EndingSequenceNumber!),
    "a child's records follow its parent's",
  );
  const merged = kinesis.mergeShards("s", left, right);
  const shard = kinesis.shards("s").find((candidate) => candidate.id === merged)!;
  assert.deepEqual(shard, {
    id: "shardId-000000000004",
    startingHashKey: "0",
    endingHashKey: parent.HashKeyRange!.EndingHashKey!,
    open: true,
    parentShardId: left,
    adjacentParentShardId: right,
  });
  assert.throws(() => kinesis.mergeShards("s", merged, "shardId-000000000000"), {
    name: "InvalidArgumentException",
  });
});

test("InMemoryKinesis pages ListShards with a NextToken that must come alone", () => {
  const kinesis = new InMemoryKinesis({ streams: { s: 5 }, listShardsPageSize: 2 });
  const ids: string[] = [];
  let page = kinesis.listShards({ StreamName: "s", ShardFilter: { Type: "AT_LATEST" } });
  for (let i = 0; i < 10; i++) {
    ids.push(...page.Shards!.map((shard) => shard.ShardId!));
    if (page.NextToken === undefined) break;
    assert.throws(() => kinesis.listShards({ StreamName: "s", NextToken: page.NextToken! }), {
      name: "InvalidArgumentException",
    });
    page = kinesis.listShards({ NextToken: page.NextToken });
  }
  assert.equal(ids.length, 5);
  assert.equal(new Set(ids).size, 5);
  assert.throws(() => kinesis.listShards({ NextToken: "bogus" }), {
    name: "InvalidArgumentException",
  });
  kinesis.fail({ operation: "listShards", stream: "s", outcome: "internalFailure", skip: 1 });
  const first = kinesis.listShards({ StreamName: "s" });
  assert.throws(() => kinesis.listShards({ NextToken: first.NextToken! }), {
    name: "InternalFailure",
  }, "a later page counts as a call for the stream of its token");
});

test("InMemoryKinesis fails whole calls on a script: by count, then answers again", async () => {
  const kinesis = new InMemoryKinesis({ streams: { s: 1 } });
  const fault = kinesis.fail({ outcome: "internalFailure", times: 2 });
  const client = kinesis.client();
  for (let i = 0; i < 2; i++) {
    await assert.rejects(client.putRecords(request("s", ["a"]), { signal }), (error: unknown) => {
      const { name, $metadata } = error as Error & { $metadata: { httpStatusCode: number } };
      return name === "InternalFailure" && $metadata.httpStatusCode === 500;
    });
  }
  assert.equal((await client.putRecords(request("s", ["a"]), { signal })).FailedRecordCount, 0);
  assert.equal(fault.hits, 2);
  assert.equal(kinesis.records("s").length, 1, "failed calls store nothing");
  kinesis.fail({ outcome: "accessDenied", operation: "listShards", skip: 1 });
  await client.listShards({ StreamName: "s" }, { signal });
  await assert.rejects(client.listShards({ StreamName: "s" }, { signal }), {
    name: "AccessDeniedException",
  });
  assert.deepEqual(kinesis.callCounts(), {
    putRecords: 3,
    listShards: 2,
    describeStreamSummary: 0,
  });
});

test("InMemoryKinesis fails single entries by predicate, and by a seeded probability that repeats", () => {
  const kinesis = new InMemoryKinesis({ streams: { s: 2 } });
  kinesis.fail({
    outcome: "throttle",
    entries: true,
    when: (call) => call.entry?.PartitionKey === "hot",
  });
  const out = kinesis.putRecords(request("s", ["cold", "hot", "cold"]));
  assert.deepEqual(out.Records!.map((entry) => entry.ErrorCode), [
    undefined,
    "ProvisionedThroughputExceededException",
    undefined,
  ]);
  const pattern = () => {
    const model = new InMemoryKinesis({ streams: { s: 2 } });
    model.fail({ outcome: "internalFailure", entries: true, probability: 0.3, seed: 7 });
    return model.putRecords(request("s", keys(100))).Records!.map((entry) => entry.ErrorCode);
  };
  const first = pattern();
  const failed = first.filter((code) => code === "InternalFailure").length;
  assert.ok(failed > 15 && failed < 45, `about 30 of 100 failed: ${failed}`);
  assert.deepEqual(pattern(), first, "the same seed fails the same entries");
  assert.throws(() => kinesis.fail({ outcome: "lostResponse", entries: true }), TypeError);
  assert.throws(() => kinesis.fail({ outcome: "throttle", probability: 2 }), RangeError);
});

test("InMemoryKinesis loses responses on a script: the records are stored, the call fails or never answers", async () => {
  const kinesis = new InMemoryKinesis({ streams: { s: 1 } });
  const client = kinesis.client();
  kinesis.fail({ outcome: "lostResponse", times: 1 });
  await assert.rejects(client.putRecords(request("s", ["a"]), { signal }), TypeError);
  assert.equal(kinesis.records("s").length, 1);
  kinesis.fail({ outcome: "noResponse", times: 1 });
  const controller = new AbortController();
  const pending = client.putRecords(request("s", ["b"]), { signal: controller.signal });
  assert.equal(kinesis.records("s").length, 2);
  controller.abort(new Error("request timed out"));
  await assert.rejects(pending, /request timed out/);
});

test("InMemoryKinesis validates requests as PutRecords does, with the stream's record size", () => {
  const kinesis = new InMemoryKinesis({
    streams: { small: 1, large: { shards: 1, maxRecordSizeKiB: 10240 } },
  });
  assert.throws(() => kinesis.putRecords(request("small", keys(501))), {
    name: "ValidationException",
  });
  assert.throws(() => kinesis.putRecords(request("small", [""])), { name: "ValidationException" });
  const big = 1024 * 1024 + 1;
  const refused = kinesis.putRecords({
    StreamName: "small",
    Records: [...request("small", ["a"], big).Records, ...request("small", ["b"]).Records],
  });
  assert.equal(refused.FailedRecordCount, 1, "the large entry fails alone, as on kinesis-local");
  assert.equal(refused.Records![0]!.ErrorCode, "InvalidArgumentException");
  assert.throws(() => kinesis.putRecords(request("large", ["a"], 10 * 1024 * 1024 + 1)), {
    name: "ValidationException",
  });
  assert.equal(kinesis.putRecords(request("large", ["a"], big)).FailedRecordCount, 0);
  const summary = kinesis.describeStreamSummary({ StreamARN: kinesis.streamArn("large") });
  assert.equal(summary.StreamDescriptionSummary.MaxRecordSizeInKiB, 10240);
  assert.equal(summary.StreamDescriptionSummary.OpenShardCount, 1);
  assert.throws(() => kinesis.putRecords(request("nope", ["a"])), {
    name: "ResourceNotFoundException",
  });
});

test("InMemoryKinesis gives records back deaggregated, per shard in sequence order and per partition key", () => {
  const kinesis = new InMemoryKinesis({ streams: { s: 2 } });
  const text = (data: Uint8Array) => new TextDecoder().decode(data);
  const aggregate = encodeAggregated([
    { partitionKey: "user-1", data: new TextEncoder().encode("one") },
    { partitionKey: "user-2", data: new TextEncoder().encode("two") },
  ]);
  kinesis.putRecords({
    StreamName: "s",
    Records: [
      { PartitionKey: "user-1", Data: aggregate },
      { PartitionKey: "user-1", Data: new TextEncoder().encode("three") },
    ],
  });
  const byKey = kinesis.recordsByPartitionKey("s");
  assert.deepEqual(byKey.get("user-1")!.map((record) => text(record.data)), ["one", "three"]);
  assert.deepEqual(byKey.get("user-2")!.map((record) => record.aggregated), [true]);
  const [shard] = [...kinesis.recordsByShard("s").values()];
  assert.deepEqual(shard!.map((record) => [text(record.data), record.subSequenceNumber]), [
    ["one", 0],
    ["two", 1],
    ["three", 0],
  ]);
});

test("A Producer on InMemoryKinesis retries a scripted throttle, fails fast on a permanent error, and stores a lost response's records once more", async () => {
  const kinesis = new InMemoryKinesis({ streams: { s: 2 } });
  const throttle = kinesis.fail({ outcome: "throttle", entries: true, times: 1 });
  {
    await using producer = new Producer({
      stream: "s",
      kinesisClient: kinesis.client(),
      logger: silentLogger,
      aggregationEnabled: false,
    });
    const result = await producer.put({ partitionKey: "a", data: "first" });
    assert.equal(result.success, true);
    assert.deepEqual(result.attempts.map((attempt) => attempt.errorCode ?? "ok"), [
      "ProvisionedThroughputExceededException",
      "ok",
    ]);
    assert.equal(throttle.hits, 1);
    kinesis.fail({ outcome: "lostResponse", times: 1 });
    assert.equal((await producer.put({ partitionKey: "b", data: "lost" })).success, true);
    kinesis.fail({ outcome: "accessDenied" });
    const denied = await producer.put({ partitionKey: "c", data: "denied" });
    assert.equal(denied.success, false);
    assert.equal(denied.errorCode, "AccessDeniedException");
    assert.equal(denied.attempts.length, 1, "a permanent error is not retried");
  }
  const texts = kinesis.records("s").map((record) => new TextDecoder().decode(record.data));
  assert.deepEqual(texts, ["first", "lost", "lost"], "at least once: the lost answer's retry");
});

test("InMemoryKinesis answers like kinesalite: shard per key, increasing 56-digit sequence numbers, refusals, ListShards after a split", async () => {
  const emulator = await startKinesalite();
  const sdk = createTestClient(emulator.endpoint);
  try {
    const stream = uniqueStreamName("model");
    await createStream(sdk, stream, { shardCount: 2 });
    const kinesis = new InMemoryKinesis({ streams: { [stream]: 2 } });
    const input = request(stream, keys(40));
    const real = await sdk.send(new PutRecordsCommand(input));
    const model = kinesis.putRecords(input);
    const shardsOf = (out: typeof model) => out.Records!.map((entry) => entry.ShardId);
    assert.deepEqual(shardsOf(model), shardsOf(real));
    for (const out of [real, model]) {
      const last = new Map<string, bigint>();
      for (const entry of out.Records!) {
        assert.match(entry.SequenceNumber!, /^\d{56}$/);
        assert.ok(BigInt(entry.SequenceNumber!) > (last.get(entry.ShardId!) ?? -1n));
        last.set(entry.ShardId!, BigInt(entry.SequenceNumber!));
      }
    }
    const refusals: PutRecordsInput[] = [
      request(stream, keys(501)),
      request(stream, [""]),
      request("no-such-stream", ["a"]),
    ];
    for (const refused of refusals) {
      const realName = await sdk.send(new PutRecordsCommand(refused)).then(
        () => "accepted",
        (error: Error) => error.name,
      );
      assert.throws(() => kinesis.putRecords(refused), { name: realName });
    }
    await sdkSplitShard(sdk, stream, { shardId: "shardId-000000000001" });
    kinesis.splitShard(stream, "shardId-000000000001");
    // Sequence numbers differ between the two; the shape, ids, ranges and parents do not.
    const shape = (shards: (ListedShard | SdkShard)[]) =>
      shards.map((shard) => {
        const { SequenceNumberRange: range, ...rest } = shard as SdkShard;
        return {
          ...rest,
          starts: typeof range?.StartingSequenceNumber,
          closed: range?.EndingSequenceNumber !== undefined,
        };
      });
    const listedReal = await sdk.send(new ListShardsCommand({ StreamName: stream }));
    assert.deepEqual(
      shape(kinesis.listShards({ StreamName: stream }).Shards!),
      shape(listedReal.Shards!),
    );
  } finally {
    sdk.destroy();
    await emulator.stop();
  }
});

test("The README's testing example is .ci/pack/orders.ts and orders_test.ts, which CI runs from the tarball", () => {
  const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8");
  const readme = read("../README.md");
  for (const file of ["../.ci/pack/orders.ts", "../.ci/pack/orders_test.ts"]) {
    assert.ok(readme.includes("```ts\n" + read(file) + "```"), `README shows ${file} as it is`);
  }
});
