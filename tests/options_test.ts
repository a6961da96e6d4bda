import { test } from "node:test";
import assert from "node:assert/strict";
import { Producer } from "../src/producer.ts";
import type { ProducerOptions } from "../src/options.ts";

/** Builds a producer from options a user might have typed, bypassing the type checker. */
function create(options: Record<string, unknown>): Producer {
  return new Producer(options as ProducerOptions);
}

test("Producer() refuses an unknown option and names the nearest valid one", () => {
  assert.throws(
    () => create({ recordMaxBufferedTime: 5000 }),
    (error: unknown) =>
      error instanceof TypeError && /'recordMaxBufferedTime'/.test(error.message) &&
      /did you mean 'recordMaxBufferedTimeMs'\?/.test(error.message),
  );
  assert.throws(() => create({ maxOutstandingRecord: 10 }), /did you mean 'maxOutstandingRecords'/);
  assert.throws(() => create({ Region: "us-east-1" }), /did you mean 'region'/);
  assert.throws(() => create({ kinesisclient: {} }), /did you mean 'kinesisClient'/);
  // Nothing close: the key is named, no suggestion is invented.
  assert.throws(
    () => create({ zzzzzzzzzzzzzzzzzzzzzzzzzzzzzz: 1 }),
    (error: unknown) =>
      error instanceof TypeError && /'zzzz/.test(error.message) &&
      !/did you mean/.test(error.message),
  );
});

test("Producer() accepts every documented option name", () => {
  const producer = create({
    region: "us-east-1",
    endpoint: "http://127.0.0.1:4567",
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret", sessionToken: "t" },
    stream: "s",
    aggregationEnabled: true,
    aggregationMaxCount: 10,
    aggregationMaxSize: 51200,
    collectionMaxCount: 500,
    collectionMaxSize: 5242880,
    recordMaxBufferedTimeMs: 100,
    recordTtlMs: 30000,
    rateLimit: 150,
    failIfThrottled: false,
    maxOutstandingRecords: 10,
    maxOutstandingBytes: 1048576,
    maxRecordSize: 1048576,
    maxInFlightRequests: 24,
    maxInFlightBytes: 16777216,
    requestTimeoutMs: 6000,
    transport: "sdk",
    metricsLevel: "none",
    metricsGranularity: "stream",
    metricsUploadIntervalMs: 60000,
    random: Math.random,
  });
  assert.equal(producer.closed, false);
});

test("Producer() requires 'endpoint' to be an http or https URL", () => {
  for (const endpoint of ["localhost:4567", "127.0.0.1:4567", "ftp://host/", "http://", 42]) {
    assert.throws(
      () => create({ endpoint }),
      (error: unknown) => error instanceof TypeError && /'endpoint'/.test(error.message),
      `endpoint ${String(endpoint)}`,
    );
  }
  for (const endpoint of ["http://127.0.0.1:4567", "https://kinesis.us-east-1.amazonaws.com"]) {
    assert.equal(create({ endpoint }).closed, false);
  }
});

test('Producer() takes \'transport\' as "direct" or "sdk" and names any other value', () => {
  for (const transport of ["http", "SDK", "", true, {}]) {
    assert.throws(
      () => create({ transport }),
      (error: unknown) =>
        error instanceof TypeError &&
        /'transport' must be one of 'direct', 'sdk'/.test(error.message),
      `transport ${String(transport)}`,
    );
  }
  for (const transport of ["direct", "sdk", undefined]) {
    assert.equal(create({ transport }).closed, false);
  }
});

test("Producer() throws a TypeError, not a RangeError, for a region that is not a string", () => {
  for (const region of [42, true, {}, ""]) {
    assert.throws(
      () => create({ region }),
      (error: unknown) =>
        error instanceof TypeError && !(error instanceof RangeError) &&
        /'region' must be a non-empty string/.test(error.message),
    );
  }
});

test("Producer() checks the shape of 'credentials' and never shows their values", () => {
  const bad: unknown[] = [
    { accessKeyId: "AKIDTEST" },
    { secretAccessKey: "super-secret" },
    { accessKeyId: "AKIDTEST", secretAccessKey: 7 },
    { accessKeyId: "AKIDTEST", secretAccessKey: "super-secret", sessionToken: 1 },
    "AKIDTEST:super-secret",
    null,
  ];
  for (const credentials of bad) {
    assert.throws(
      () => create({ credentials }),
      (error: unknown) =>
        error instanceof TypeError && /'credentials'/.test(error.message) &&
        !/super-secret|AKIDTEST/.test(error.message),
      JSON.stringify(credentials),
    );
  }
  assert.equal(create({ credentials: () => Promise.resolve({}) }).closed, false);
});

test("Producer's constructor names the option it rejects", () => {
  const cases: [Record<string, unknown>, RegExp, typeof TypeError | typeof RangeError][] = [
    [
      { collectionMaxCount: 900 },
      /'collectionMaxCount' must be an integer between 1 and 500: current value is 900/,
      RangeError,
    ],
    [{ collectionMaxSize: 100 }, /'collectionMaxSize'/, RangeError],
    [{ aggregationMaxSize: 10 }, /'aggregationMaxSize'/, RangeError],
    [{ aggregationMaxCount: 0 }, /'aggregationMaxCount'/, RangeError],
    [{ recordTtlMs: 50 }, /'recordTtlMs'/, RangeError],
    [{ recordMaxBufferedTimeMs: -1 }, /'recordMaxBufferedTimeMs'/, RangeError],
    [{ rateLimit: 0 }, /'rateLimit'/, RangeError],
    [{ maxOutstandingRecords: 0 }, /'maxOutstandingRecords'/, RangeError],
    [{ maxOutstandingBytes: 10 }, /'maxOutstandingBytes'/, RangeError],
    [{ maxRecordSize: 11 * 1024 * 1024 }, /'maxRecordSize'/, RangeError],
    [{ maxInFlightRequests: 0 }, /'maxInFlightRequests'/, RangeError],
    [
      { maxInFlightBytes: 0 },
      /'maxInFlightBytes' must be an integer of at least 1: current value is 0/,
      RangeError,
    ],
    [{ maxInFlightBytes: 1.5 }, /'maxInFlightBytes'/, RangeError],
    [{ maxInFlightBytes: "32MiB" }, /'maxInFlightBytes' must be an integer/, TypeError],
    [{ requestTimeoutMs: 10 }, /'requestTimeoutMs'/, RangeError],
    [{ metricsUploadIntervalMs: 0 }, /'metricsUploadIntervalMs'/, RangeError],
    [
      { metricsLevel: "verbose" },
      /'metricsLevel' must be one of 'none', 'summary', 'detailed'/,
      TypeError,
    ],
    [{ metricsGranularity: "host" }, /'metricsGranularity'/, TypeError],
    [{ aggregationEnabled: "yes" }, /'aggregationEnabled' must be a boolean/, TypeError],
    [{ endpoint: "not a url" }, /'endpoint' must be an http:\/\/ or https:\/\/ URL/, TypeError],
    [{ stream: "no spaces allowed" }, /'stream'/, TypeError],
    [{ kinesisClient: {} }, /'kinesisClient'/, TypeError],
    [{ metricsSink: {} }, /'metricsSink'/, TypeError],
    [{ logger: console.log }, /'logger'/, TypeError],
  ];
  for (const [options, message, type] of cases) {
    assert.throws(() => create(options), (error: unknown) => {
      assert.ok(error instanceof type, `${JSON.stringify(options)} threw ${error}`);
      assert.match((error as Error).message, message);
      return true;
    });
  }
});
