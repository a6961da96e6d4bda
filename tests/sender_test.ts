import { test } from "node:test";
import assert from "node:assert/strict";
import type { KinesisClient, PutRecordsInput, PutRecordsOutput } from "../src/kinesis_client.ts";
import { KinesisRecord } from "../src/kinesis_record.ts";
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
  return KinesisRecord.single(pendingRecord({ now: 0, deadline: 0, expiresAt }));
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
