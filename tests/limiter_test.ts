import { test } from "node:test";
import assert from "node:assert/strict";
import { hashKeyFromDecimal } from "../src/hash_key.ts";
import { type KinesisRecord, membersOf } from "../src/kinesis_record.ts";
import { Limiter } from "../src/limiter.ts";
import { Scheduler } from "../src/scheduler.ts";
import { Shard } from "../src/shard_map.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { pendingRecord } from "./support/records.ts";

const MiB = 1024 * 1024;

function shard(n = 0): Shard {
  return new Shard(
    `shardId-00000000000${n}`,
    hashKeyFromDecimal("0"),
    hashKeyFromDecimal("340282366920938463463374607431768211455"),
  );
}

function setup(rateLimit = 100, random = () => 0.5) {
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  const admitted: KinesisRecord[] = [];
  const expired: KinesisRecord[] = [];
  const limiter = new Limiter({
    scheduler,
    rateLimit,
    random,
    onAdmit: (record) => admitted.push(record),
    onExpired: (record) => expired.push(record),
  });
  return { clock, scheduler, limiter, admitted, expired };
}

function kinesisRecord(
  target: Shard,
  options: { bytes?: number; deadline?: number; expiresAt?: number; now?: number } = {},
): KinesisRecord {
  const record = pendingRecord({
    data: options.bytes ?? 10,
    ...(options.deadline === undefined ? {} : { deadline: options.deadline }),
    ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  record.predictedShard = target;
  return record;
}

test("Limiter admits a full bucket at once, then 1000 records/s at rateLimit 100", async () => {
  const { limiter, admitted, clock } = setup(100);
  const target = shard();
  for (let i = 0; i < 1500; i++) limiter.put(kinesisRecord(target));
  assert.equal(admitted.length, 1000, "the record bucket starts full");
  await clock.advance(100);
  assert.equal(admitted.length, 1100);
  await clock.advance(400);
  assert.equal(admitted.length, 1500);
  assert.equal(limiter.queuedRecords, 0);
});

test("Limiter refills at 150% of the shard limits by default numbers", async () => {
  const { limiter, admitted, clock } = setup(150);
  const target = shard();
  for (let i = 0; i < 2500; i++) limiter.put(kinesisRecord(target));
  assert.equal(admitted.length, 1000);
  await clock.advance(1000);
  assert.equal(admitted.length, 2500, "1500 records/s after the burst");
});

test("Limiter paces bytes: 10 MiB burst, then 1 MiB/s at rateLimit 100", async () => {
  const { limiter, admitted, clock } = setup(100);
  const target = shard();
  for (let i = 0; i < 30; i++) limiter.put(kinesisRecord(target, { bytes: MiB / 2 }));
  assert.equal(admitted.length, 20);
  await clock.advance(1000);
  assert.equal(admitted.length, 22);
  await clock.advance(4000);
  assert.equal(admitted.length, 30);
});

test("Limiter admits in deadline order, whatever the arrival order", async () => {
  const { limiter, admitted, clock } = setup(100);
  const target = shard();
  // Drain the record bucket so the records queue.
  for (let i = 0; i < 1000; i++) limiter.put(kinesisRecord(target, { deadline: 0 }));
  admitted.length = 0;
  const late = kinesisRecord(target, { deadline: 500 });
  const early = kinesisRecord(target, { deadline: 50 });
  const middle = kinesisRecord(target, { deadline: 200 });
  limiter.put(late);
  limiter.put(early);
  limiter.put(middle);
  await clock.advance(10);
  assert.deepEqual(admitted, [early, middle, late].slice(0, admitted.length));
  await clock.advance(100);
  assert.deepEqual(admitted, [early, middle, late]);
});

test("Limiter hands expired records back before admitting anything", async () => {
  const { limiter, admitted, expired, clock } = setup(100);
  const target = shard();
  limiter.throttled(target);
  const doomed = kinesisRecord(target, { deadline: 0, expiresAt: 5 });
  const fine = kinesisRecord(target, { deadline: 1 });
  limiter.put(doomed);
  limiter.put(fine);
  assert.equal(admitted.length, 0, "the shard is backing off");
  await clock.advance(5);
  assert.equal(expired.length, 1);
  assert.ok(expired[0] === doomed);
  await clock.advance(200);
  assert.equal(admitted.length, 1);
  assert.ok(admitted[0] === fine);
});

test("Limiter admits a record bigger than the byte bucket once the bucket is full", async () => {
  const { limiter, admitted, clock } = setup(100);
  const target = shard();
  limiter.put(kinesisRecord(target, { bytes: 2 * MiB }));
  assert.equal(admitted.length, 1);
  const giant = kinesisRecord(target, { bytes: 11 * MiB });
  const small = kinesisRecord(target, { bytes: 10 });
  limiter.put(giant);
  limiter.put(small);
  assert.equal(admitted.length, 1, "the bucket is no longer full");
  await clock.advance(2000);
  assert.equal(admitted.length, 2, "the giant goes as soon as the bucket is full again");
  assert.ok(admitted[1] === giant);
  await clock.advance(1100);
  assert.equal(admitted.length, 3, "then the shard is paced by the giant's cost");
  assert.ok(admitted[2] === small);
});

test("Limiter.throttled() pauses the shard with doubling backoff; success resets it", async () => {
  const { limiter, admitted, clock } = setup(100, () => 0.999);
  const hot = shard(0);
  const cool = shard(1);
  limiter.throttled(hot);
  limiter.put(kinesisRecord(hot));
  limiter.put(kinesisRecord(cool));
  assert.equal(admitted.length, 1, "the other shard is not affected");
  assert.ok(limiter.isBackingOff(hot));
  await clock.advance(99);
  assert.equal(admitted.length, 1);
  await clock.advance(2);
  assert.equal(admitted.length, 2, "about 100 ms for the first throttle");
  limiter.throttled(hot);
  limiter.put(kinesisRecord(hot));
  await clock.advance(150);
  assert.equal(admitted.length, 2);
  await clock.advance(60);
  assert.equal(admitted.length, 3, "about 200 ms for the second");
  limiter.succeeded(hot, clock.now());
  limiter.throttled(hot);
  limiter.put(kinesisRecord(hot));
  await clock.advance(101);
  assert.equal(admitted.length, 4, "back to 100 ms after a success");
});

test("Limiter caps the throttle backoff at 5 s", async () => {
  const { limiter, admitted, clock } = setup(100, () => 0.999);
  const hot = shard();
  for (let i = 0; i < 12; i++) limiter.throttled(hot);
  limiter.put(kinesisRecord(hot));
  await clock.advance(4900);
  assert.equal(admitted.length, 0);
  await clock.advance(200);
  assert.equal(admitted.length, 1);
});

test("Limiter tolerates a put into the same shard from inside its own admission callback", async () => {
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  const target = shard();
  const admitted: KinesisRecord[] = [];
  let reentered = 0;
  const limiter: Limiter = new Limiter({
    scheduler,
    rateLimit: 100,
    random: () => 0.5,
    onAdmit: (record) => {
      admitted.push(record);
      // Settling a record can admit a waiting put that lands in this very shard.
      if (reentered < 50) {
        reentered++;
        limiter.put(kinesisRecord(target));
      }
    },
    onExpired: () => {},
  });
  for (let i = 0; i < 100; i++) limiter.put(kinesisRecord(target));
  assert.equal(admitted.length, 150, "every record, including those put from the callback");
  assert.equal(new Set(admitted).size, 150, "none admitted twice");
  assert.equal(limiter.queuedRecords, 0);
  await clock.advance(10);
});

function setupAdaptive(adaptive: boolean) {
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  const admitted: KinesisRecord[] = [];
  const limiter = new Limiter({
    scheduler,
    rateLimit: 100,
    adaptive,
    random: () => 0.5,
    onAdmit: (record) => admitted.push(record),
    onExpired: () => {},
  });
  return { clock, limiter, admitted };
}

/** Records admitted in `ms` after a throttle, with the shard's queue always full. */
async function admittedAfterThrottle(adaptive: boolean, ms: number): Promise<number> {
  const { clock, limiter, admitted } = setupAdaptive(adaptive);
  const target = shard();
  for (let i = 0; i < 4000; i++) limiter.put(kinesisRecord(target));
  await clock.advance(600);
  limiter.throttled(target);
  const before = admitted.length;
  await clock.advance(ms);
  return admitted.length - before;
}

test("Limiter with adaptive rates refills a throttled shard more slowly than rateLimit", async () => {
  const fixed = await admittedAfterThrottle(false, 1000);
  const adaptive = await admittedAfterThrottle(true, 1000);
  // Both empty the bucket and pause; the fixed bucket keeps refilling at 1000/s, the
  // adaptive one at the cut rate (about 78% of the rate it was using).
  assert.ok(fixed >= 990 && fixed <= 1001, `fixed ${fixed}`);
  assert.ok(adaptive < fixed * 0.9, `adaptive ${adaptive} vs fixed ${fixed}`);
  assert.ok(adaptive > 0, "the shard keeps moving");
});

test("Limiter ignores a throttle of a request sent before the shard's last cut", async () => {
  const { clock, limiter, admitted } = setupAdaptive(true);
  const target = shard();
  await clock.advance(1000);
  limiter.throttled(target, 900);
  const [cut] = limiter.states();
  await clock.advance(200);
  limiter.throttled(target, 950);
  const [after] = limiter.states();
  assert.equal(after!.ratePercent, cut!.ratePercent, "the same congestion, already answered");
  assert.equal(after!.throttles, 2, "but counted");
  assert.equal(after!.pausedUntil, 0, "and no new pause");
  limiter.put(kinesisRecord(target));
  assert.equal(admitted.length, 1, "the shard was not paused again");
});

test("Limiter.states() shows each shard's rate, throttles, queued user records and pause", async () => {
  const { clock, limiter } = setupAdaptive(true);
  const hot = shard(0);
  const cool = shard(1);
  limiter.put(kinesisRecord(cool));
  limiter.throttled(hot);
  limiter.put(kinesisRecord(hot));
  limiter.put(kinesisRecord(hot));
  const states = limiter.states();
  assert.deepEqual(states.map((state) => state.shardId), [cool.id, hot.id]);
  assert.deepEqual(
    { ...states[0]! },
    { shardId: cool.id, ratePercent: 100, throttles: 0, queuedRecords: 0, pausedUntil: 0 },
  );
  assert.ok(states[1]!.ratePercent < 100);
  assert.equal(states[1]!.throttles, 1);
  assert.equal(states[1]!.queuedRecords, 2);
  assert.ok(states[1]!.pausedUntil > clock.now());
  await clock.advance(200);
  assert.equal(limiter.states()[1]!.pausedUntil, 0);
});

test("Limiter without adaptive rates keeps rateLimit after throttles", () => {
  const { limiter } = setupAdaptive(false);
  const hot = shard();
  for (let i = 0; i < 5; i++) limiter.throttled(hot);
  assert.equal(limiter.states()[0]!.ratePercent, 100);
  assert.equal(limiter.states()[0]!.throttles, 5);
});

test("Limiter gives records that expire waiting for a throttled shard the throttle as their last error", async () => {
  const { limiter, expired, clock } = setup(100);
  const hot = shard(0);
  const cool = shard(1);
  limiter.throttled(hot);
  const doomed = kinesisRecord(hot, { deadline: 0, expiresAt: 5 });
  limiter.put(doomed);
  // The cool shard's bucket is drained and its queue long, so its record waits too.
  for (let i = 0; i < 1100; i++) limiter.put(kinesisRecord(cool));
  const waiting = kinesisRecord(cool, { expiresAt: 5 });
  limiter.put(waiting);
  await clock.advance(10);
  assert.equal(expired.length, 2);
  assert.ok(expired.includes(doomed) && expired.includes(waiting));
  assert.equal(membersOf(doomed)[0]!.lastErrorCode, "ProvisionedThroughputExceededException");
  assert.match(membersOf(doomed)[0]!.lastErrorMessage!, /throttled shardId-000000000000/);
  assert.equal(membersOf(waiting)[0]!.lastErrorCode, undefined, "no throttle, nothing to blame");
});
