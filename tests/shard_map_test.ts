import { test } from "node:test";
import assert from "node:assert/strict";
import { hashKeyFromDecimal } from "../src/hash_key.ts";
import type { Logger } from "../src/logger.ts";
import { silentLogger } from "../src/logger.ts";
import { Scheduler } from "../src/scheduler.ts";
import { ShardMap } from "../src/shard_map.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { evenShards, FakeKinesis, MAX_HASH, serviceError } from "./support/fake_kinesis.ts";
import { CapturingLogger } from "./support/capturing_logger.ts";
import { InMemoryKinesis } from "../testing.ts";

function setup(shardCount = 4, logger: Logger = silentLogger) {
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  const kinesis = new FakeKinesis({ stream: shardCount });
  const listedAt: number[] = [];
  let updates = 0;
  const map = new ShardMap({
    stream: "stream",
    listShards: (input, options) => {
      listedAt.push(clock.now());
      return kinesis.listShards(input, options);
    },
    scheduler,
    logger,
    onUpdate: () => updates++,
  });
  return { clock, scheduler, kinesis, map, listedAt, updates: () => updates };
}

const key = (decimal: string | bigint | number) => hashKeyFromDecimal(decimal.toString());

test("ShardMap goes INVALID → UPDATING → READY and predicts at every boundary", async () => {
  const { map, clock, updates } = setup(4);
  assert.equal(map.state, "invalid");
  assert.equal(map.predict(key(0)), null);
  map.start();
  assert.equal(map.state, "updating");
  await clock.advance(0);
  assert.equal(map.state, "ready");
  assert.equal(updates(), 1);
  for (const shard of evenShards(4)) {
    assert.equal(map.predict(key(shard.start))?.id, shard.id);
    assert.equal(map.predict(key(shard.end))?.id, shard.id);
  }
  assert.equal(map.predict(key(MAX_HASH))?.id, "shardId-000000000003");
  map.close();
});

test("ShardMap.predict() returns the shard whose range holds the hash", async () => {
  const { map, clock } = setup(7);
  map.start();
  await clock.advance(0);
  const shards = evenShards(7);
  for (let i = 0; i < 500; i++) {
    const value = (MAX_HASH * BigInt(i)) / 499n;
    const expected = shards.find((shard) => shard.start <= value && value <= shard.end)!;
    const predicted = map.predict(key(value))!;
    assert.equal(predicted.id, expected.id);
    assert.ok(predicted.holds(key(value)));
  }
  map.close();
});

test("ShardMap lists with AT_LATEST and MaxResults first, then NextToken alone", async () => {
  const { map, clock, kinesis } = setup(5);
  kinesis.pageSize = 2;
  map.start();
  await clock.advance(0);
  assert.equal(map.state, "ready");
  assert.equal(map.openShards.length, 5);
  assert.deepEqual(kinesis.listCalls[0], {
    StreamName: "stream",
    MaxResults: 1000,
    ShardFilter: { Type: "AT_LATEST" },
  });
  assert.equal(kinesis.listCalls.length, 3);
  for (const call of kinesis.listCalls.slice(1)) {
    assert.deepEqual(Object.keys(call), ["NextToken"]);
  }
  map.close();
});

test("ShardMap retries a failed listing after 1 s, ×1.5 each time, up to 30 s", async () => {
  const logger = new CapturingLogger();
  const { map, clock, kinesis, listedAt } = setup(2, logger);
  kinesis.listHook = () => serviceError("LimitExceededException", "slow down");
  map.start();
  await clock.advance(200_000);
  const gaps = listedAt.slice(1).map((at, i) => at - listedAt[i]!);
  const expected = [1000, 1500, 2250, 3375, 5062.5, 7593.75, 11390.625, 17085.9375, 25628.90625];
  assert.deepEqual(gaps.slice(0, expected.length), expected);
  assert.ok(gaps.slice(expected.length).every((gap) => gap === 30_000));
  assert.equal(map.state, "invalid");
  assert.equal(map.lastError?.code, "LimitExceededException");
  const warnings = logger.lines("warn");
  assert.ok(warnings.length > 5 && warnings[0]!.includes("LimitExceededException"));
  kinesis.listHook = undefined;
  await clock.advance(30_000);
  assert.equal(map.state, "ready");
  assert.equal(map.lastError, undefined);
  map.close();
});

test("ShardMap.invalidate() refreshes only when READY, seen after the update, predicted still open", async () => {
  const { map, clock, kinesis } = setup(2);
  map.invalidate(10, null);
  assert.equal(kinesis.listCalls.length, 0, "not READY yet: ignored");
  map.start();
  await clock.advance(0);
  const updatedAt = map.updatedAt;
  map.invalidate(updatedAt, null);
  assert.equal(kinesis.listCalls.length, 1, "seen at the update: ignored");
  const predicted = map.openShards[0]!;
  await clock.advance(5);
  map.invalidate(clock.now(), predicted);
  assert.equal(map.state, "updating");
  map.invalidate(clock.now(), predicted);
  assert.equal(kinesis.listCalls.length, 2, "a refresh in progress absorbs more invalidations");
  await clock.advance(0);
  assert.equal(map.state, "ready");
  kinesis.split("stream", predicted.id);
  await clock.advance(5);
  map.invalidate(clock.now(), predicted);
  await clock.advance(0);
  assert.equal(kinesis.listCalls.length, 3);
  assert.ok(predicted.closedAt !== undefined, "the split parent is closed now");
  await clock.advance(5);
  map.invalidate(clock.now(), predicted);
  assert.equal(kinesis.listCalls.length, 3, "the predicted shard is closed: ignored");
  map.close();
});

test("ShardMap keeps predicting from the previous snapshot while it refreshes", async () => {
  const { map, clock, kinesis } = setup(2);
  map.start();
  await clock.advance(0);
  kinesis.listHook = () => new Error("network down");
  await clock.advance(1);
  map.invalidate(clock.now(), null);
  assert.equal(map.state, "updating");
  assert.equal(map.predict(key(0))?.id, "shardId-000000000000");
  await clock.advance(0);
  assert.equal(map.state, "invalid");
  assert.equal(map.predict(key(MAX_HASH))?.id, "shardId-000000000001");
  map.close();
});

test("ShardMap remembers a closed shard's range for 60 s", async () => {
  const { map, clock, kinesis } = setup(2);
  map.start();
  await clock.advance(0);
  const parent = map.openShards[1]!;
  const [left, right] = kinesis.split("stream", parent.id);
  await clock.advance(1);
  map.invalidate(clock.now(), null);
  await clock.advance(0);
  assert.equal(map.openShards.length, 3);
  assert.equal(map.get(parent.id), parent, "closed but known");
  assert.equal(map.get(left.id)?.closedAt, undefined);
  assert.equal(map.predict(key(right.end))?.id, right.id);
  await clock.advance(59_998);
  assert.equal(map.get(parent.id), parent);
  await clock.advance(2);
  assert.equal(map.get(parent.id), undefined);
  map.close();
});

test("ShardMap keeps the Shard object of an unchanged shard across refreshes", async () => {
  const { map, clock } = setup(3);
  map.start();
  await clock.advance(0);
  const before = map.openShards;
  await clock.advance(1);
  map.invalidate(clock.now(), null);
  await clock.advance(0);
  assert.equal(map.generation, 2);
  for (let i = 0; i < 3; i++) assert.equal(map.openShards[i], before[i]);
  map.close();
});

test("ShardMap treats a listing with a malformed range as a failure", async () => {
  const { map, clock, kinesis } = setup(1);
  kinesis.listHook = () => ({
    Shards: [{
      ShardId: "shardId-000000000000",
      HashKeyRange: { StartingHashKey: "x", EndingHashKey: "5" },
    }],
  });
  map.start();
  await clock.advance(0);
  assert.equal(map.state, "invalid");
  assert.equal(map.lastError?.code, "InvalidListing");
  map.close();
});

test("ShardMap aborts a listing that takes longer than its timeout and retries with backoff", async () => {
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  let calls = 0;
  const map = new ShardMap({
    stream: "stream",
    scheduler,
    logger: silentLogger,
    requestTimeoutMs: 500,
    listShards: (_input, { signal }) => {
      calls++;
      if (calls > 1) return new FakeKinesis({ stream: 1 }).listShards(_input, { signal });
      return new Promise((_resolve, reject) => {
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    },
  });
  map.start();
  await clock.advance(499);
  assert.equal(map.state, "updating");
  await clock.advance(1);
  assert.equal(map.state, "invalid");
  assert.equal(map.lastError?.code, "RequestTimeout");
  await clock.advance(1000);
  assert.equal(map.state, "ready");
  map.close();
});

test("ShardMap logs a permanent listing failure once, without 'retrying in'; a transient one says when it retries", async () => {
  const logger = new CapturingLogger();
  const { map, clock, kinesis, listedAt } = setup(4, logger);
  kinesis.shards.delete("stream");
  map.start();
  for (let i = 0; i < 200 && listedAt.length < 4; i++) await clock.advance(1000);
  assert.ok(listedAt.length >= 4, "the map kept listing");
  const warnings = logger.calls.filter((call) => call.level === "warn");
  assert.equal(warnings.length, 1, "one warning for a failure that repeats");
  assert.match(warnings[0]!.message, /ResourceNotFoundException/);
  assert.doesNotMatch(warnings[0]!.message, /retrying in/);
  map.close();

  const transient = new CapturingLogger();
  const second = setup(4, transient);
  second.kinesis.listHook = () => new TypeError("fetch failed");
  second.map.start();
  await second.clock.advance(0);
  assert.match(transient.calls[0]!.message, /NetworkError.*retrying in \d+ ms/);
  second.map.close();
});

test("ShardMap follows a split and a merge of InMemoryKinesis, which lists closed shards to an unfiltered caller", async () => {
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  const kinesis = new InMemoryKinesis({ clock, streams: { stream: 2 } });
  const client = kinesis.client();
  const map = new ShardMap({
    stream: "stream",
    listShards: (input, options) => client.listShards(input, options),
    scheduler,
    logger: silentLogger,
  });
  map.start();
  await clock.advance(0);
  const [left, right] = kinesis.splitShard("stream", "shardId-000000000001");
  await clock.advance(1);
  map.invalidate(clock.now(), null);
  await clock.advance(0);
  assert.deepEqual(map.openShards.map((shard) => shard.id), ["shardId-000000000000", left, right]);
  const merged = kinesis.mergeShards("stream", left, right);
  await clock.advance(1);
  map.invalidate(clock.now(), null);
  await clock.advance(0);
  assert.deepEqual(map.openShards.map((shard) => shard.id), ["shardId-000000000000", merged]);
  assert.equal(map.predict(key(MAX_HASH))?.id, merged);
  const unfiltered = kinesis.listShards({ StreamName: "stream" }).Shards!;
  assert.equal(unfiltered.length, 5, "the map saw only the open ones through AT_LATEST");
  map.close();
});
