// Producer.ready(): the start-up check that finds a configuration no record can get past
// once, instead of once per record.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isNotReadyError, type NotReadyError } from "../src/errors.ts";
import { classifyErrorCode, ErrorCodes } from "../src/error_codes.ts";
import { silentLogger } from "../src/logger.ts";
import { Producer } from "../src/producer.ts";
import { harness } from "./support/harness.ts";
import { serviceError } from "./support/fake_kinesis.ts";
import { settle } from "./support/fake_clock.ts";

async function notReady(promise: Promise<unknown>): Promise<NotReadyError> {
  const error = await promise.then(() => undefined, (reason: unknown) => reason);
  assert.ok(isNotReadyError(error), `rejected with a NotReadyError: ${String(error)}`);
  return error;
}

/** Runs `body` with no region anywhere the SDK looks. */
async function withoutRegion(body: () => Promise<void>): Promise<void> {
  const env =
    (globalThis as { process?: { env: Record<string, string | undefined> } }).process!.env;
  const saved = {
    AWS_REGION: env.AWS_REGION,
    AWS_DEFAULT_REGION: env.AWS_DEFAULT_REGION,
    AWS_CONFIG_FILE: env.AWS_CONFIG_FILE,
  };
  delete env.AWS_REGION;
  delete env.AWS_DEFAULT_REGION;
  env.AWS_CONFIG_FILE = "/nonexistent/webkpl-test-config";
  try {
    await body();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
  }
}

test("Producer.ready() resolves when the client answers ListShards for the default stream", async () => {
  const { producer, kinesis } = harness();
  await producer.ready();
  assert.equal(kinesis.listCalls.length >= 1, true);
  assert.equal(kinesis.listCalls[0]!.StreamName, "s");
  await producer.close();
});

test("Producer.ready() without a region rejects once with ClientError; every record after fails with it at once", async () => {
  await withoutRegion(async () => {
    const producer = new Producer({
      endpoint: "http://127.0.0.1:9",
      credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
      stream: "s",
      logger: silentLogger,
    });
    const error = await notReady(producer.ready());
    assert.equal(error.code, ErrorCodes.clientError);
    assert.equal(error.permanent, true);
    assert.match(error.message, /[Rr]egion/);
    assert.doesNotMatch(error.message, /\n|\s+at\s/, "no stack trace in the message");
    const results = await Promise.all(
      [1, 2, 3].map((i) => producer.put({ partitionKey: `k${i}`, data: "x" })),
    );
    await producer.close();
    for (const result of results) {
      assert.equal(result.errorCode, ErrorCodes.clientError);
      assert.equal(result.attempts.length, 1);
      assert.doesNotMatch(result.errorMessage!, /\n/);
    }
  });
});

test("Producer.ready() keeps a client-level permanent failure: later records fail with its code, no PutRecords is sent", async () => {
  const { producer, kinesis, clock } = harness();
  kinesis.listHook = () =>
    serviceError("UnrecognizedClientException", "The security token is invalid");
  const error = await notReady(producer.ready());
  assert.equal(error.code, "UnrecognizedClientException");
  assert.equal(error.permanent, true);
  kinesis.listHook = undefined;
  const pending = producer.put({ partitionKey: "k", data: "x" });
  for (let i = 0; i < 100; i++) await clock.advance(50);
  const result = await pending;
  assert.equal(result.errorCode, "UnrecognizedClientException");
  assert.equal(result.attempts.length, 1);
  assert.equal(kinesis.putCalls.length, 0);
  await producer.close();
});

test("Producer.ready() reports a transient failure as not permanent and keeps nothing", async () => {
  const { producer, kinesis, clock } = harness();
  kinesis.listHook = () => new TypeError("fetch failed");
  const error = await notReady(producer.ready());
  assert.equal(error.code, ErrorCodes.networkError);
  assert.equal(error.permanent, false);
  kinesis.listHook = undefined;
  await producer.ready();
  const pending = producer.put({ partitionKey: "k", data: "x" });
  for (let i = 0; i < 100; i++) await clock.advance(50);
  assert.equal((await pending).success, true);
  await producer.close();
});

test("Producer.ready() reports a missing default stream without failing other streams", async () => {
  const { producer, kinesis, clock } = harness();
  kinesis.shards.set("other", kinesis.shards.get("s")!);
  kinesis.shards.delete("s");
  const error = await notReady(producer.ready());
  assert.equal(error.code, "ResourceNotFoundException");
  assert.equal(error.permanent, true);
  const pending = producer.put({ stream: "other", partitionKey: "k", data: "x" });
  for (let i = 0; i < 100; i++) await clock.advance(50);
  assert.equal((await pending).success, true);
  await producer.close();
});

test("Producer.ready() rejects with the signal's reason when aborted", async () => {
  const hanging = (_input: unknown, { signal }: { signal: AbortSignal }) =>
    new Promise<never>((_resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  const { producer } = harness({ kinesisClient: { listShards: hanging, putRecords: hanging } });
  const controller = new AbortController();
  const ready = producer.ready({ signal: controller.signal });
  await settle();
  controller.abort(new Error("stop"));
  await assert.rejects(ready, /stop/);
  await producer.close();
});

test("A credentials function that throws is CredentialsError, permanent, asked once, not NetworkError", async () => {
  let calls = 0;
  const producer = new Producer({
    region: "us-east-1",
    endpoint: "http://127.0.0.1:9",
    credentials: () => {
      calls++;
      return Promise.reject(new Error("no token file"));
    },
    stream: "s",
    recordTtlMs: 5000,
    logger: silentLogger,
  });
  const error = await notReady(producer.ready());
  assert.equal(error.code, ErrorCodes.credentialsError);
  assert.equal(error.permanent, true);
  assert.match(error.message, /no token file/);
  const result = await producer.put({ partitionKey: "k", data: "x" });
  await producer.close();
  assert.equal(result.errorCode, ErrorCodes.credentialsError);
  assert.equal(result.attempts.length, 1);
  assert.equal(calls, 1);
  assert.equal(classifyErrorCode(ErrorCodes.credentialsError), "permanent");
});

test("Credentials resolved without a secret fail as CredentialsError at once, without a retry", async () => {
  const producer = new Producer({
    region: "us-east-1",
    endpoint: "http://127.0.0.1:9",
    credentials: () => Promise.resolve({ accessKeyId: "AKIDTEST" } as never),
    stream: "s",
    recordTtlMs: 5000,
    logger: silentLogger,
  });
  const result = await producer.put({ partitionKey: "k", data: "x" });
  await producer.close();
  assert.equal(result.errorCode, ErrorCodes.credentialsError);
  assert.match(result.errorMessage!, /secretAccessKey/);
  assert.equal(result.attempts.length, 1);
});

test("A credentials provider that says it can recover is retried (CredentialsUnavailable) until the TTL", async () => {
  const producer = new Producer({
    region: "us-east-1",
    endpoint: "http://127.0.0.1:9",
    credentials: () =>
      Promise.reject(Object.assign(new Error("metadata service busy"), { $retryable: {} })),
    stream: "s",
    recordTtlMs: 400,
    logger: silentLogger,
  });
  const result = await producer.put({ partitionKey: "k", data: "x" });
  await producer.close();
  assert.equal(result.errorCode, ErrorCodes.expired);
  assert.ok(result.attempts.some((a) => a.errorCode === ErrorCodes.credentialsUnavailable));
  assert.equal(classifyErrorCode(ErrorCodes.credentialsUnavailable), "transient");
});
