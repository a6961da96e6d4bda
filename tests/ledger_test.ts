import assert from "node:assert/strict";
import { test } from "node:test";
import { OutstandingLedger } from "../src/_ledger.ts";
import { Scheduler } from "../src/scheduler.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { pendingRecord } from "./support/records.ts";

function setup() {
  const scheduler = new Scheduler(new FakeClock());
  return { scheduler, ledger: new OutstandingLedger(scheduler) };
}

test("OutstandingLedger counts records and bytes, keeps the oldest, and holds the process while any is outstanding", () => {
  const { scheduler, ledger } = setup();
  const [a, b, c] = [pendingRecord({ data: 10 }), pendingRecord({ data: 20 }), pendingRecord()];
  assert.deepEqual([ledger.add(a), ledger.add(b), ledger.add(c)], [1, 2, 3]);
  assert.equal(ledger.records, 3);
  assert.equal(ledger.bytes, a.size + b.size + c.size);
  assert.equal(ledger.oldest, a);
  assert.equal(scheduler.persistent, true);
  ledger.remove(b);
  ledger.remove(a);
  assert.equal(ledger.oldest, c);
  assert.equal(c.prev, null);
  ledger.remove(c);
  assert.deepEqual([ledger.records, ledger.bytes, ledger.oldest], [0, 0, null]);
  assert.equal(scheduler.persistent, false);
  scheduler.close();
});

test("OutstandingLedger.settled() waits for the records admitted before it, not after", async () => {
  const { scheduler, ledger } = setup();
  assert.equal(await ledger.settled(undefined), undefined, "nothing outstanding: at once");
  const records = [pendingRecord(), pendingRecord()];
  for (const record of records) record.admit(ledger.add(record), 0, 30_000, 100);
  let done = false;
  const settled = ledger.settled(undefined).then(() => void (done = true));
  const later = pendingRecord();
  later.admit(ledger.add(later), 0, 30_000, 100);
  ledger.remove(records[1]!);
  ledger.wake();
  await Promise.resolve();
  assert.equal(done, false, "the oldest is still outstanding");
  ledger.remove(records[0]!);
  ledger.wake();
  await settled;
  assert.equal(ledger.records, 1, "the later record does not hold the wait");
  scheduler.close();
});

test("OutstandingLedger.settled() rejects with the signal's reason and forgets the waiter", async () => {
  const { scheduler, ledger } = setup();
  const record = pendingRecord();
  record.admit(ledger.add(record), 0, 30_000, 100);
  const controller = new AbortController();
  const settled = ledger.settled(controller.signal);
  controller.abort(new Error("gave up"));
  await assert.rejects(settled, /gave up/);
  ledger.remove(record);
  ledger.wake();
  scheduler.close();
});
