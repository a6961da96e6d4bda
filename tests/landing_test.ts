// Landings: members of an aggregated record that Kinesis stored on a shard the producer's map
// does not know. Whatever state the map is in when the answer arrives (ready with a snapshot
// older than the landing, refreshing with a listing that started before the landing shard
// existed, or invalid after a failed listing), such a member must wait for a listing that
// knows the shard before it is judged: a split child that holds its hash is a success, and
// sending it again would leave a duplicate that consumers keep.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { KinesisClient } from "../src/kinesis_client.ts";
import { silentLogger } from "../src/logger.ts";
import type { RecordResult } from "../src/record.ts";
import { Scheduler } from "../src/scheduler.ts";
import { ShardMap } from "../src/shard_map.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { harness } from "./support/harness.ts";
import { FakeKinesis, serviceError, shardId } from "./support/fake_kinesis.ts";
import { hashInShard } from "./support/records.ts";

function codes(result: RecordResult): (string | undefined)[] {
  return result.attempts.map((attempt) => attempt.success ? "ok" : attempt.errorCode);
}

/** A promise the test resolves when it chooses. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => open = resolve);
  return { promise, open };
}

/**
 * A client over `kinesis` whose ListShards answers can be held after Kinesis has answered,
 * so a listing can be made to finish with what the stream looked like when it started.
 */
function heldListings(kinesis: FakeKinesis) {
  let held: Promise<void> | undefined;
  const client: KinesisClient = {
    putRecords: (input, options) => kinesis.putRecords(input, options),
    async listShards(input, options) {
      const output = await kinesis.listShards(input, options);
      await held;
      return output;
    },
  };
  return {
    client,
    hold(): () => void {
      const { promise, open } = gate();
      held = promise;
      return () => {
        held = undefined;
        open();
      };
    },
  };
}

/** Three records for shard 0 of two, aggregated into one Kinesis record with distinct hashes. */
function putTrio(producer: ReturnType<typeof harness>["producer"]): Promise<RecordResult>[] {
  return ["10", "11", "12"].map((key) =>
    producer.put({ partitionKey: `k${key}`, data: key, explicitHashKey: key })
  );
}

/** Asserts the trio was stored once, on `shard`, as one aggregated record. */
function assertStoredOnce(results: RecordResult[], shard: string): void {
  assert.deepEqual(results.map(codes), [["ok"], ["ok"], ["ok"]], "no member was sent again");
  assert.deepEqual(results.map((result) => result.shardId), Array(3).fill(shard));
  assert.deepEqual(results.map((result) => result.subSequenceNumber), [0, 1, 2]);
}

test("A landing on a split child is settled as stored when the map is ready with a snapshot older than the landing", async () => {
  const { producer, clock, kinesis } = harness({ shards: 2 });
  const warm = producer.put({ partitionKey: "warm", data: "x", explicitHashKey: "1" });
  await clock.advance(200);
  await warm;
  // The trio's call is held in Kinesis until shard 0 has split.
  const trioCall = gate();
  kinesis.putHook = async (_input, call) => {
    if (call === 1) await trioCall.promise;
    return undefined;
  };
  const trio = putTrio(producer);
  await clock.advance(200);
  assert.equal(kinesis.putCalls.length, 2, "the trio's call is in flight");
  // A misprediction on shard 1 refreshes the map while the trio's call is in flight: the
  // map is ready again, from a listing that ended after that call started.
  kinesis.split("s", shardId(1));
  const lone = producer.put({ partitionKey: "b", data: "b", explicitHashKey: hashInShard(1, 2) });
  await clock.advance(200);
  assert.equal((await lone).success, true);
  assert.equal(kinesis.listCalls.length, 2, "the map refreshed");
  const [left] = kinesis.split("s", shardId(0));
  trioCall.open();
  await clock.advance(200);
  assertStoredOnce(await Promise.all(trio), left.id);
  assert.equal(kinesis.stored.length, 3, "warm, lone and the trio's one aggregated record");
  assert.equal(kinesis.listCalls.length, 3, "the landing asked for a listing that knows its shard");
  await producer.close();
});

test("A landing on a split child is settled as stored when the refresh running started before the child existed", async () => {
  const kinesis = new FakeKinesis({ s: 2 });
  const listings = heldListings(kinesis);
  const { producer, clock } = harness({ shards: 2, kinesisClient: listings.client });
  const warm = producer.put({ partitionKey: "warm", data: "x", explicitHashKey: "1" });
  await clock.advance(200);
  await warm;
  const trioCall = gate();
  kinesis.putHook = async (_input, call) => {
    if (call === 1) await trioCall.promise;
    return undefined;
  };
  const trio = putTrio(producer);
  await clock.advance(200);
  // A misprediction on shard 1 starts a listing; Kinesis answers it before shard 0 splits,
  // but the answer reaches the producer only after the trio's landing.
  kinesis.split("s", shardId(1));
  const releaseListing = listings.hold();
  const lone = producer.put({ partitionKey: "b", data: "b", explicitHashKey: hashInShard(1, 2) });
  await clock.advance(200);
  assert.equal((await lone).success, true);
  assert.equal(kinesis.listCalls.length, 2, "the refresh is running");
  const [left] = kinesis.split("s", shardId(0));
  trioCall.open();
  await clock.advance(10);
  releaseListing();
  await clock.advance(200);
  assertStoredOnce(await Promise.all(trio), left.id);
  assert.equal(kinesis.stored.length, 3, "warm, lone and the trio's one aggregated record");
  assert.equal(kinesis.listCalls.length, 3, "a second listing, started after the landing");
  await producer.close();
});

test("A landing on a split child is settled as stored when the map is invalid after a failed listing", async () => {
  const { producer, clock, kinesis } = harness({ shards: 2 });
  const warm = producer.put({ partitionKey: "warm", data: "x", explicitHashKey: "1" });
  await clock.advance(200);
  await warm;
  // Shard 0 splits and the refresh that the first misprediction starts fails: the map is
  // invalid, still predicting from its old snapshot, when the trio lands.
  const [left] = kinesis.split("s", shardId(0));
  kinesis.listHook = () => serviceError("InternalFailure", "listing failed", 500);
  const lone = producer.put({ partitionKey: "b", data: "b", explicitHashKey: "5" });
  await clock.advance(200);
  assert.equal((await lone).success, true);
  assert.equal(kinesis.listCalls.length, 2, "the refresh ran and failed");
  const trio = putTrio(producer);
  await clock.advance(200);
  assert.equal(kinesis.putCalls.length, 3, "the trio was sent once");
  kinesis.listHook = undefined;
  await clock.advance(2_000);
  assertStoredOnce(await Promise.all(trio), left.id);
  assert.equal(kinesis.stored.length, 3, "warm, lone and the trio's one aggregated record");
  await producer.close();
});

test("A landing on a shard that a listing started after it does not show is sent again once as Wrong Shard", async () => {
  const { producer, clock, kinesis } = harness({ shards: 1 });
  const warm = producer.put({ partitionKey: "warm", data: "x", explicitHashKey: "1" });
  await clock.advance(200);
  await warm;
  // Shard 0 splits and its left child splits again before any listing: the trio lands on
  // a child that no listing will ever show open, so its range cannot be learned.
  const [left] = kinesis.split("s", shardId(0));
  kinesis.putHook = (input, call) => {
    if (call !== 1) return undefined;
    const output = kinesis.store(input);
    kinesis.split("s", left.id);
    return output;
  };
  const trio = putTrio(producer);
  await clock.advance(500);
  const results = await Promise.all(trio);
  assert.deepEqual(results.map((result) => result.success), [true, true, true]);
  assert.deepEqual(results.map(codes), [["ok"], ["Wrong Shard", "ok"], ["Wrong Shard", "ok"]]);
  assert.equal(results[0]!.shardId, left.id, "the first member routed the record");
  await producer.close();
});

test("A landing whose listings keep failing settles once its TTL has passed", async () => {
  const { producer, clock, kinesis } = harness({ shards: 1, recordTtlMs: 3_000 });
  const warm = producer.put({ partitionKey: "warm", data: "x", explicitHashKey: "1" });
  await clock.advance(200);
  await warm;
  kinesis.split("s", shardId(0));
  kinesis.listHook = () => serviceError("InternalFailure", "listing failed", 500);
  const trio = putTrio(producer);
  await clock.advance(10_000);
  const results = await Promise.all(trio);
  assert.equal(results[0]!.success, true, "the routing member is where it belongs");
  for (const result of results.slice(1)) {
    assert.equal(result.success, false);
    assert.equal(result.errorCode, "Expired");
  }
  assert.equal(kinesis.putCalls.length, 2, "nothing was sent again on a guess");
  await producer.close();
});

test("ShardMap.refresh() lists again when ready, and listedSince() tells a snapshot listed after a mark", async () => {
  const clock = new FakeClock(0);
  const kinesis = new FakeKinesis({ s: 1 });
  const map = new ShardMap({
    stream: "s",
    listShards: (input, options) => kinesis.listShards(input, options),
    scheduler: new Scheduler(clock),
    logger: silentLogger,
  });
  map.start();
  const duringFirst = map.listingsStarted;
  await clock.advance(0);
  assert.equal(map.state, "ready");
  assert.equal(map.listedSince(0), true);
  assert.equal(map.listedSince(duringFirst), false, "that listing was running at the mark");
  map.refresh();
  assert.equal(map.state, "updating", "ready: lists again though nothing was mispredicted");
  map.refresh();
  assert.equal(kinesis.listCalls.length, 2, "a running listing absorbs the request");
  await clock.advance(0);
  assert.equal(map.listedSince(duringFirst), true);
  kinesis.listHook = () => serviceError("InternalFailure", "listing failed", 500);
  const mark = map.listingsStarted;
  map.refresh();
  await clock.advance(0);
  assert.equal(map.state, "invalid");
  assert.equal(map.listedSince(mark), false, "a failed listing shows nothing");
  map.refresh();
  assert.equal(kinesis.listCalls.length, 3, "invalid: the retry waits for its backoff");
  map.close();
});
