import assert from "node:assert/strict";
import { test } from "node:test";
import { Admission } from "../src/_admission.ts";
import { OutstandingLedger } from "../src/_ledger.ts";
import type { PendingRecord } from "../src/_pending_record.ts";
import { Scheduler } from "../src/scheduler.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { pendingRecord } from "./support/records.ts";

function setup(maxRecords: number, maxBytes = Number.MAX_SAFE_INTEGER) {
  const scheduler = new Scheduler(new FakeClock());
  const ledger = new OutstandingLedger(scheduler);
  const admitted: PendingRecord[] = [];
  const admission = new Admission({
    ledger,
    maxRecords,
    maxBytes,
    admit: (record) => {
      ledger.add(record);
      admitted.push(record);
    },
  });
  return { scheduler, ledger, admission, admitted };
}

test("Admission lets a record in while there is room and nobody waits ahead", () => {
  const { scheduler, ledger, admission } = setup(1, 1000);
  const record = pendingRecord({ data: 10 });
  assert.equal(admission.mayEnter(record.size), true);
  assert.equal(admission.mayEnter(1001), false, "over the byte limit");
  ledger.add(record);
  assert.equal(admission.mayEnter(1), false, "over the record limit");
  scheduler.close();
});

test("Admission admits waiters in order once room is freed, after the current stage", async () => {
  const { scheduler, ledger, admission, admitted } = setup(1);
  const first = pendingRecord();
  ledger.add(first);
  const [a, b] = [pendingRecord(), pendingRecord()];
  const waiting = [admission.wait(a, undefined), admission.wait(b, undefined)];
  assert.equal(admission.mayEnter(1), false, "waiters go first");
  ledger.remove(first);
  admission.roomFreed();
  assert.deepEqual(admitted, [], "never inside the stage that freed the room");
  assert.equal(await waiting[0], a);
  assert.deepEqual(admitted, [a], "room for one");
  ledger.remove(a);
  admission.roomFreed();
  assert.equal(await waiting[1], b);
  scheduler.close();
});

test("Admission: an aborted waiter rejects with its reason and stops blocking the rest", async () => {
  const { scheduler, ledger, admission, admitted } = setup(1, 100);
  const small = pendingRecord({ data: 10 });
  ledger.add(small);
  const big = pendingRecord({ data: 95 });
  const controller = new AbortController();
  const bigWait = admission.wait(big, controller.signal);
  const next = pendingRecord({ data: 10 });
  const nextWait = admission.wait(next, undefined);
  ledger.remove(small);
  controller.abort(new Error("no longer"));
  await assert.rejects(bigWait, /no longer/);
  assert.equal(await nextWait, next);
  assert.deepEqual(admitted, [next]);
  scheduler.close();
});

test("Admission.close() rejects every waiter with the closing error", async () => {
  const { scheduler, ledger, admission } = setup(1);
  ledger.add(pendingRecord());
  const waits = [
    admission.wait(pendingRecord(), undefined),
    admission.wait(pendingRecord(), undefined),
  ];
  admission.close(() => new Error("closed"));
  for (const wait of waits) await assert.rejects(wait, /closed/);
  scheduler.close();
});
