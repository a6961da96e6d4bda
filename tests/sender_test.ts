import { test } from "node:test";
import assert from "node:assert/strict";
import type { KinesisClient, PutRecordsInput, PutRecordsOutput } from "../src/kinesis_client.ts";
import type { KinesisRecord } from "../src/kinesis_record.ts";
import { silentLogger } from "../src/logger.ts";
import { Scheduler } from "../src/scheduler.ts";
import { type PutRecordsCall, Sender } from "../src/sender.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { pendingRecord } from "./support/records.ts";

/** A client whose calls wait until the test answers them, counting how many run at once. */
class GatedClient implements KinesisClient {
  inFlight = 0;
  maxInFlight = 0;
  calls: PutRecordsInput[] = [];
  #open: (() => void)[] = [];

  putRecords(input: PutRecordsInput): Promise<PutRecordsOutput> {
    this.calls.push(input);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve) => {
      this.#open.push(() => {
        this.inFlight--;
        resolve({
          Records: input.Records.map(() => ({
            ShardId: "shardId-000000000000",
            SequenceNumber: "1",
          })),
        });
      });
    });
  }

  listShards(): Promise<never> {
    return Promise.reject(new Error("not used"));
  }

  answerOldest(): void {
    this.#open.shift()?.();
  }
}

function kinesisRecord(expiresAt: number): KinesisRecord {
  return pendingRecord({ now: 0, deadline: 0, expiresAt });
}

test("Sender never exceeds maxInFlight when an expired record's handler sends again from inside its queue pump", async () => {
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  const client = new GatedClient();
  const results: PutRecordsCall[] = [];
  let resend = true;
  const sender: Sender = new Sender({
    client: () => Promise.resolve(client),
    scheduler,
    maxInFlight: 1,
    requestTimeoutMs: 60_000,
    logger: silentLogger,
    // The producer sends an expired record's siblings around again, synchronously.
    onExpired: () => {
      if (resend) sender.send("s", [kinesisRecord(10_000)]);
      resend = false;
    },
    onResult: (call) => results.push(call),
  });
  sender.send("s", [kinesisRecord(10_000)]);
  sender.send("s", [kinesisRecord(100), kinesisRecord(10_000)]);
  await clock.advance(0);
  assert.equal(client.inFlight, 1);
  await clock.advance(200);
  client.answerOldest();
  for (let i = 0; i < 3; i++) {
    await clock.advance(0);
    client.answerOldest();
  }
  await clock.advance(0);
  assert.equal(client.calls.length, 3, "the first call, the live half of the second, the resend");
  assert.equal(client.maxInFlight, 1);
  assert.equal(results.length, 3);
  await sender.idle();
});

/** A Kinesis record of `bytes` request bytes: a one-byte key and the rest data. */
function sized(bytes: number, expiresAt = 10_000): KinesisRecord {
  return pendingRecord({ partitionKey: "k", data: bytes - 1, now: 0, deadline: 0, expiresAt });
}

function boundedSender(client: GatedClient, clock: FakeClock, results: PutRecordsCall[]) {
  return new Sender({
    client: () => Promise.resolve(client),
    scheduler: new Scheduler(clock),
    maxInFlight: 10,
    maxInFlightBytes: 100,
    requestTimeoutMs: 60_000,
    logger: silentLogger,
    onExpired: () => {},
    onResult: (call) => results.push(call),
  });
}

test("Sender holds a call while it would take the bytes in flight past maxInFlightBytes", async () => {
  const clock = new FakeClock(0);
  const client = new GatedClient();
  const results: PutRecordsCall[] = [];
  const sender = boundedSender(client, clock, results);
  sender.send("s", [sized(30), sized(30)]);
  sender.send("s", [sized(40)]);
  sender.send("s", [sized(50)]);
  await clock.advance(0);
  assert.equal(client.inFlight, 2, "60 + 40 bytes fit in 100, the next 50 do not");
  assert.equal(sender.inFlightBytes, 100);
  assert.equal(sender.queued, 1);
  client.answerOldest();
  await clock.advance(0);
  assert.equal(client.inFlight, 2, "the 50-byte call went once 60 bytes came back");
  assert.equal(sender.inFlightBytes, 90);
  client.answerOldest();
  client.answerOldest();
  await clock.advance(0);
  await sender.idle();
  assert.equal(results.length, 3);
  assert.equal(sender.inFlightBytes, 0);
});

test("Sender sends a call larger than maxInFlightBytes alone once nothing else is in flight", async () => {
  const clock = new FakeClock(0);
  const client = new GatedClient();
  const results: PutRecordsCall[] = [];
  const sender = boundedSender(client, clock, results);
  sender.send("s", [sized(10)]);
  sender.send("s", [sized(150), sized(150)]);
  sender.send("s", [sized(10)]);
  await clock.advance(0);
  assert.equal(client.inFlight, 1, "the large call waits, and the small one behind it too");
  client.answerOldest();
  await clock.advance(0);
  assert.equal(client.inFlight, 1);
  assert.equal(client.calls[1]!.Records.length, 2, "the large call, alone");
  assert.equal(sender.inFlightBytes, 300);
  client.answerOldest();
  await clock.advance(0);
  client.answerOldest();
  await clock.advance(0);
  await sender.idle();
  assert.equal(client.maxInFlight, 1);
  assert.deepEqual(results.map((call) => call.records.length), [1, 2, 1], "each exactly once");
});

test("Sender drops records that expire while their call waits for bytes in flight, once each", async () => {
  const clock = new FakeClock(0);
  const client = new GatedClient();
  const expired: KinesisRecord[] = [];
  const results: PutRecordsCall[] = [];
  const sender = new Sender({
    client: () => Promise.resolve(client),
    scheduler: new Scheduler(clock),
    maxInFlight: 10,
    maxInFlightBytes: 100,
    requestTimeoutMs: 60_000,
    logger: silentLogger,
    onExpired: (record) => expired.push(record),
    onResult: (call) => results.push(call),
  });
  sender.send("s", [sized(90)]);
  const soon = sized(50, 100);
  sender.send("s", [soon, sized(20)]);
  sender.send("s", [sized(5)]);
  await clock.advance(200);
  sender.send("s", [sized(5)]);
  assert.equal(client.inFlight, 1, "nothing passes the waiting call");
  client.answerOldest();
  await clock.advance(0);
  assert.deepEqual(expired, [soon]);
  assert.equal(client.calls[1]!.Records.length, 1, "the live record of the waiting call");
  for (let i = 0; i < 3; i++) {
    client.answerOldest();
    await clock.advance(0);
  }
  await sender.idle();
  assert.equal(results.length, 4);
  assert.equal(expired.length, 1);
});
