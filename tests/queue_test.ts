import assert from "node:assert/strict";
import { test } from "node:test";
import { Queue } from "../src/_queue.ts";

test("Queue takes items in the order they came", () => {
  const queue = new Queue<number>();
  assert.equal(queue.shift(), undefined);
  for (let i = 0; i < 5; i++) queue.push(i);
  assert.equal(queue.size, 5);
  assert.equal(queue.peek(), 0);
  assert.deepEqual([queue.shift(), queue.shift()], [0, 1]);
  assert.equal(queue.size, 3);
  assert.deepEqual(queue.drain(), [2, 3, 4]);
  assert.equal(queue.size, 0);
  assert.equal(queue.peek(), undefined);
});

test("Queue keeps its order across compaction, pushing while it takes", () => {
  const queue = new Queue<number>();
  let next = 0;
  let expected = 0;
  for (let round = 0; round < 10_000; round++) {
    queue.push(next++);
    queue.push(next++);
    assert.equal(queue.shift(), expected++);
  }
  assert.equal(queue.size, 10_000);
  const rest = queue.drain();
  assert.equal(rest.length, 10_000);
  assert.ok(rest.every((item, i) => item === expected + i));
});
