// The per-shard gate of `preserveOrder` alone, on the injected clock: one batch per shard
// down the pipeline, records that come back lead the next batch, other shards keep going,
// records wait for a prediction, and a child shard waits for its parent.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { PendingRecord } from "../src/_pending_record.ts";
import { ShardGate } from "../src/_shard_gate.ts";
import { hashKeyFromDecimal } from "../src/hash_key.ts";
import type { RecordResult } from "../src/record.ts";
import { Scheduler } from "../src/scheduler.ts";
import { Shard } from "../src/shard_map.ts";
import { FakeClock } from "./support/fake_clock.ts";
import { pendingRecord } from "./support/records.ts";

const HALF = (1n << 127n).toString();
const parent = new Shard("shardId-0", hashKeyFromDecimal("0"), hashKeyFromDecimal(HALF));
const child = new Shard(
  "shardId-2",
  hashKeyFromDecimal("0"),
  hashKeyFromDecimal((1n << 126n).toString()),
);
const other = new Shard(
  "shardId-1",
  hashKeyFromDecimal((1n << 127n) + 1n + ""),
  hashKeyFromDecimal(((1n << 128n) - 1n).toString()),
);

interface Setup {
  clock: FakeClock;
  gate: ShardGate;
  /** Each batch released, as the records' names. */
  batches: string[][];
  expired: string[];
  /** Where each partition key is predicted; a key missing is not predictable. */
  routes: Map<string, Shard>;
  put(name: string, key: string, options?: { deadline?: number; expiresAt?: number }): void;
  record(name: string): PendingRecord;
  /** Settles records of the last batches, by name. */
  settle(...names: string[]): void;
}

function setup(options: { maxCount?: number; maxSize?: number } = {}): Setup {
  const clock = new FakeClock(0);
  const scheduler = new Scheduler(clock);
  const batches: string[][] = [];
  const expired: string[] = [];
  const names = new Map<PendingRecord, string>();
  const byName = new Map<string, PendingRecord>();
  const routes = new Map<string, Shard>([["a", parent], ["b", other]]);
  const gate = new ShardGate({
    scheduler,
    maxCount: options.maxCount ?? 100,
    maxSize: options.maxSize ?? 51200,
    predict: (record) => routes.get(record.partitionKey) ?? null,
    onRelease: (records) => batches.push(records.map((record) => names.get(record)!)),
    onExpired: (record) => {
      expired.push(names.get(record)!);
      gate.settled(record);
      record.outcome = { success: false } as RecordResult;
    },
  });
  const record = (name: string): PendingRecord => byName.get(name)!;
  return {
    clock,
    gate,
    batches,
    expired,
    routes,
    put(name, key, times = {}) {
      const pending = pendingRecord({ partitionKey: key, now: clock.now(), ...times });
      names.set(pending, name);
      byName.set(name, pending);
      gate.put(pending);
    },
    record,
    settle(...settled) {
      // As the settlement does: counted out first, the outcome set after.
      for (const name of settled) {
        gate.settled(record(name));
        record(name).outcome = { success: true } as RecordResult;
      }
    },
  };
}

test("ShardGate releases one record of a shard at a time when a batch holds one record", async () => {
  const { clock, gate, batches, put, settle } = setup({ maxCount: 1 });
  put("a1", "a");
  put("a2", "a");
  put("a3", "a");
  assert.deepEqual(batches, [["a1"]], "a full batch leaves at once; the next waits for it");
  await clock.advance(1_000);
  assert.deepEqual(batches, [["a1"]], "time alone does not let a second one out");
  settle("a1");
  assert.deepEqual(batches, [["a1"], ["a2"]]);
  settle("a2");
  settle("a3");
  assert.deepEqual(batches, [["a1"], ["a2"], ["a3"]]);
  assert.equal(gate.size, 0);
});

test("ShardGate buffers a shard's records until the first one's deadline, then releases them as one batch", async () => {
  const { clock, batches, put, settle } = setup();
  put("a1", "a", { deadline: 100 });
  await clock.advance(50);
  put("a2", "a", { deadline: 150 });
  assert.deepEqual(batches, []);
  await clock.advance(50);
  assert.deepEqual(batches, [["a1", "a2"]]);
  put("a3", "a", { deadline: 100 });
  put("a4", "a", { deadline: 100 });
  assert.deepEqual(batches.length, 1, "what arrives while a batch is out waits for it");
  settle("a1", "a2");
  assert.deepEqual(batches, [["a1", "a2"], ["a3", "a4"]]);
});

test("ShardGate.flush() releases each idle shard's batch before its deadline", () => {
  const { gate, batches, put } = setup();
  put("a1", "a", { deadline: 100 });
  put("b1", "b", { deadline: 100 });
  gate.flush();
  assert.deepEqual(batches, [["a1"], ["b1"]]);
});

test("ShardGate sends a record that came back ahead of later records, and holds the shard until it is back", async () => {
  const { clock, gate, batches, put, settle, record } = setup({ maxCount: 2 });
  put("a1", "a");
  put("a2", "a");
  assert.deepEqual(batches, [["a1", "a2"]]);
  put("a3", "a", { deadline: 0 });
  settle("a2");
  // a1 failed and waits for its backoff: nothing later of its shard may leave meanwhile.
  await clock.advance(5_000);
  assert.deepEqual(batches, [["a1", "a2"]]);
  gate.put(record("a1"));
  assert.deepEqual(batches, [["a1", "a2"], ["a1", "a3"]]);
  settle("a1", "a3");
  assert.equal(gate.size, 0);
});

test("ShardGate keeps releasing other shards while one shard's batch never comes back", async () => {
  const { clock, batches, put, settle } = setup({ maxCount: 1 });
  put("a1", "a");
  put("a2", "a");
  for (let i = 1; i <= 3; i++) {
    put(`b${i}`, "b");
    await clock.advance(10);
    settle(`b${i}`);
  }
  assert.deepEqual(batches, [["a1"], ["b1"], ["b2"], ["b3"]]);
});

test("ShardGate fails a waiting record whose TTL ran out instead of releasing it, and goes on with the next", async () => {
  const { clock, batches, expired, put, settle } = setup({ maxCount: 1 });
  put("a1", "a");
  put("a2", "a", { expiresAt: 500 });
  put("a3", "a");
  await clock.advance(600);
  settle("a1");
  assert.deepEqual(expired, ["a2"]);
  assert.deepEqual(batches, [["a1"], ["a3"]]);
});

test("ShardGate holds records the map cannot predict, in order, until reroute(), and expires them at their TTL", async () => {
  const { clock, gate, batches, expired, routes, put } = setup();
  routes.delete("a");
  put("a1", "a", { deadline: 0, expiresAt: 1_000 });
  put("b1", "b", { deadline: 0 });
  assert.deepEqual(batches, [], "b1 came after a1 and waits with it");
  await clock.advance(1_000);
  assert.deepEqual(expired, ["a1"]);
  routes.set("a", parent);
  put("a2", "a", { deadline: 0 });
  assert.deepEqual(batches, []);
  gate.reroute();
  assert.deepEqual(batches, [["b1"], ["a2"]]);
});

test("ShardGate holds a child shard's records until the lane of the parent it split from is empty", () => {
  const { gate, batches, routes, put, settle } = setup();
  put("p1", "a");
  put("p2", "a");
  gate.flush();
  assert.deepEqual(batches, [["p1", "p2"]]);
  put("p3", "a", { deadline: 0 });
  // The map learns of the split: the parent closes, new records predict the child.
  parent.closedAt = 1;
  try {
    routes.set("a", child);
    put("c1", "a", { deadline: 0 });
    put("b1", "b", { deadline: 0 });
    assert.deepEqual(batches, [["p1", "p2"], ["b1"]], "the child waits; an unrelated shard not");
    settle("p1", "p2");
    assert.deepEqual(batches, [["p1", "p2"], ["b1"], ["p3"]]);
    settle("p3");
    assert.deepEqual(batches, [["p1", "p2"], ["b1"], ["p3"], ["c1"]]);
    settle("c1", "b1");
    assert.equal(gate.size, 0);
  } finally {
    parent.closedAt = undefined;
  }
});
