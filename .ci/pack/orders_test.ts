import { test } from "node:test";
import assert from "node:assert/strict";
import { Producer } from "@webkpl/kpl";
import { InMemoryKinesis } from "@webkpl/kpl/testing";
import { type Order, publishOrders } from "./orders.ts";

const orders: Order[] = [
  { id: "o1", customer: "alice", total: 10 },
  { id: "o2", customer: "bob", total: 25 },
  { id: "o3", customer: "alice", total: 7 },
];

test("publishOrders stores every order under its customer, through a throttle", async () => {
  const kinesis = new InMemoryKinesis({ streams: { orders: 2 } });
  // The first entry Kinesis sees is throttled once; the producer must retry it.
  const throttle = kinesis.fail({ outcome: "throttle", entries: true, times: 1 });
  {
    await using producer = new Producer({ stream: "orders", kinesisClient: kinesis.client() });
    assert.deepEqual(await publishOrders(producer, orders), []);
  }
  assert.equal(throttle.hits, 1);
  const byCustomer = kinesis.recordsByPartitionKey("orders");
  const ids = (customer: string) =>
    byCustomer.get(customer)!.map((record) => JSON.parse(new TextDecoder().decode(record.data)).id);
  assert.deepEqual(ids("alice").sort(), ["o1", "o3"]);
  assert.deepEqual(ids("bob"), ["o2"]);
});

test("publishOrders reports every order when the stream is gone", async () => {
  const kinesis = new InMemoryKinesis({ streams: { orders: 2 } });
  kinesis.fail({ outcome: "resourceNotFound" });
  await using producer = new Producer({ stream: "orders", kinesisClient: kinesis.client() });
  assert.deepEqual(await publishOrders(producer, orders), ["o1", "o2", "o3"]);
  assert.equal(kinesis.records("orders").length, 0);
});
