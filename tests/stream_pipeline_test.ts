import assert from "node:assert/strict";
import { test } from "node:test";
import { StreamPipeline } from "../src/_stream_pipeline.ts";
import type { KinesisRecord } from "../src/kinesis_record.ts";
import { silentLogger } from "../src/logger.ts";
import { type ProducerOptions, resolveProducerOptions } from "../src/options.ts";
import { Scheduler } from "../src/scheduler.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { FakeKinesis } from "./support/fake_kinesis.ts";
import { hashInShard, pendingRecord } from "./support/records.ts";

function setup(options: ProducerOptions = {}) {
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  const kinesis = new FakeKinesis({ stream: 4 });
  const calls: { stream: string; records: KinesisRecord[] }[] = [];
  let listings = 0;
  const pipeline = new StreamPipeline({
    stream: "stream",
    options: resolveProducerOptions(options),
    scheduler,
    logger: silentLogger,
    listShards: (input, callOptions) => {
      listings++;
      return kinesis.listShards(input, callOptions);
    },
    send: (stream, records) => calls.push({ stream, records }),
    onExpired: () => {},
    onLandings: () => {},
  });
  return { clock, scheduler, pipeline, calls, listings: () => listings };
}

test("StreamPipeline lists the stream's shards and hands each call's records on, by shard", async () => {
  const { clock, scheduler, pipeline, calls, listings } = setup();
  await clock.advance(0);
  assert.equal(listings(), 1, "the map lists at once");
  assert.equal(pipeline.shardMap.state, "ready");
  for (let i = 0; i < 8; i++) {
    pipeline.put(pendingRecord({ explicitHashKey: hashInShard(i % 2, 4), now: clock.now() }));
  }
  await clock.advance(200);
  const sent = calls.flatMap((call) => call.records);
  assert.ok(calls.every((call) => call.stream === "stream"));
  assert.equal(sent.length, 2, "one aggregated Kinesis record per shard");
  assert.deepEqual(
    sent.map((record) => record.predictedShard?.id).sort(),
    ["shardId-000000000000", "shardId-000000000001"],
  );
  assert.equal(sent.reduce((total, record) => total + record.count, 0), 8);
  pipeline.close();
  scheduler.close();
});

test("StreamPipeline.flush() sends what it holds at once", async () => {
  const { clock, scheduler, pipeline, calls } = setup({ recordMaxBufferedTimeMs: 10_000 });
  await clock.advance(0);
  pipeline.put(pendingRecord({ now: clock.now(), deadline: 10_000 }));
  await clock.advance(100);
  assert.equal(calls.length, 0, "held until its deadline");
  pipeline.flush();
  await clock.advance(0);
  assert.equal(calls.length, 1);
  pipeline.close();
  scheduler.close();
});

test("StreamPipeline.park() holds a landing and asks the shard map for a fresh listing", async () => {
  const { clock, scheduler, pipeline, listings } = setup();
  await clock.advance(0);
  const before = listings();
  const landing = {} as Parameters<StreamPipeline["park"]>[0];
  pipeline.park(landing);
  await clock.advance(0);
  assert.equal(listings(), before + 1, "the landing's shard is looked up by a new listing");
  pipeline.close();
  scheduler.close();
});
