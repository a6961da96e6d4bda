import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { CloudWatchSink, type CloudWatchSinkOptions } from "../../sinks/cloudwatch.ts";
import type {
  MetricDimensions,
  MetricName,
  MetricSnapshot,
  MetricUnit,
} from "../../src/metrics_sink.ts";
import {
  type CapturedDatum,
  type CloudWatchCapture,
  startCloudWatchCapture,
} from "../support/cloudwatch_capture.ts";
import { CapturingLogger } from "../support/capturing_logger.ts";

const WINDOW_START = 1_700_000_040_000;
const WINDOW_END = 1_700_000_100_000;
const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };

function snapshot(
  name: MetricName,
  unit: MetricUnit,
  dimensions: MetricDimensions,
  values: number[],
): MetricSnapshot {
  return {
    name,
    unit,
    dimensions,
    count: values.length,
    sum: values.reduce((a, b) => a + b, 0),
    min: values.length === 0 ? 0 : Math.min(...values),
    max: values.length === 0 ? 0 : Math.max(...values),
    windowStart: WINDOW_START,
    windowEnd: WINDOW_END,
  };
}

async function withCapture(
  options: Partial<CloudWatchSinkOptions>,
  body: (sink: CloudWatchSink, capture: CloudWatchCapture) => Promise<void>,
): Promise<void> {
  const capture = await startCloudWatchCapture();
  const sink = new CloudWatchSink({
    region: "us-east-1",
    endpoint: capture.url,
    credentials,
    ...options,
  });
  try {
    await body(sink, capture);
  } finally {
    await sink.close();
    await capture.close();
  }
}

function find(datums: CapturedDatum[], name: string, dimensions: string[]): CapturedDatum {
  const found = datums.filter((datum) =>
    datum.name === name && datum.dimensions.join("|") === dimensions.join("|")
  );
  assert.equal(found.length, 1, `${name} {${dimensions.join(", ")}} sent ${found.length} times`);
  return found[0]!;
}

test("CloudWatchSink.export() sends each series as a StatisticValues datum over the SDK's JSON 1.0 wire format", async () => {
  await withCapture({ namespace: "my-app/webkpl", rollUps: false }, async (sink, capture) => {
    await sink.export([
      snapshot("UserRecordsPut", "Count", {
        stream: "orders",
        shard: "shardId-000000000001",
      }, [1, 1, 0, 1]),
      snapshot("BufferingTime", "Milliseconds", {
        stream: "orders",
        shard: "shardId-000000000001",
      }, [12, 250, 40]),
      snapshot("UserRecordsDataPut", "Bytes", { stream: "orders" }, [100, 2048]),
      snapshot("ErrorsByCode", "Count", {
        stream: "orders",
        shard: "shardId-000000000002",
        error_code: "ProvisionedThroughputExceededException",
      }, [1, 1]),
      snapshot("AllErrors", "Count", {}, [0, 1, 0]),
    ]);

    assert.deepEqual(capture.violations, []);
    assert.equal(capture.requests.length, 1);
    const request = capture.requests[0]!;
    assert.equal(request.namespace, "my-app/webkpl");
    assert.equal(request.credentialScope, "us-east-1/monitoring");
    assert.equal(request.gzip, false, "a small body goes uncompressed");
    assert.equal(request.datums.length, 5);

    const put = find(request.datums, "UserRecordsPut", [
      "StreamName=orders",
      "ShardId=shardId-000000000001",
    ]);
    assert.deepEqual(put, {
      name: "UserRecordsPut",
      unit: "Count",
      dimensions: ["StreamName=orders", "ShardId=shardId-000000000001"],
      timestamp: WINDOW_END - 1,
      sampleCount: 4,
      sum: 3,
      minimum: 0,
      maximum: 1,
    });
    const buffering = find(request.datums, "BufferingTime", [
      "StreamName=orders",
      "ShardId=shardId-000000000001",
    ]);
    assert.equal(buffering.unit, "Milliseconds");
    assert.deepEqual(
      [buffering.sampleCount, buffering.sum, buffering.minimum, buffering.maximum],
      [3, 302, 12, 250],
    );
    const bytes = find(request.datums, "UserRecordsDataPut", ["StreamName=orders"]);
    assert.equal(bytes.unit, "Bytes");
    assert.equal(bytes.sum, 2148);
    const errors = find(request.datums, "ErrorsByCode", [
      "ErrorCode=ProvisionedThroughputExceededException",
      "StreamName=orders",
      "ShardId=shardId-000000000002",
    ]);
    assert.equal(errors.sum, 2);
    const all = find(request.datums, "AllErrors", []);
    assert.deepEqual([all.sampleCount, all.sum], [3, 1]);
    for (const datum of request.datums) {
      assert.equal(datum.timestamp, WINDOW_END - 1, "stamped inside its window");
    }
  });
});

test("CloudWatchSink.export() adds the C++ KPL roll-up tree: 2 streams x 2 shards give 7 series per metric", async () => {
  await withCapture({}, async (sink, capture) => {
    const shards: [string, string, number[]][] = [
      ["a", "shardId-000000000000", [1, 1, 1]],
      ["a", "shardId-000000000001", [1, 0]],
      ["b", "shardId-000000000000", [1]],
      ["b", "shardId-000000000001", [0, 0, 1, 1]],
    ];
    await sink.export(
      shards.map(([stream, shard, values]) =>
        snapshot("UserRecordsPut", "Count", { stream, shard }, values)
      ),
    );
    assert.deepEqual(capture.violations, []);
    const datums = capture.datums.filter((datum) => datum.name === "UserRecordsPut");
    assert.equal(datums.length, 7);

    const global = find(datums, "UserRecordsPut", []);
    assert.deepEqual([global.sampleCount, global.sum, global.minimum, global.maximum], [
      10,
      7,
      0,
      1,
    ]);
    const a = find(datums, "UserRecordsPut", ["StreamName=a"]);
    assert.deepEqual([a.sampleCount, a.sum, a.minimum, a.maximum], [5, 4, 0, 1]);
    const b = find(datums, "UserRecordsPut", ["StreamName=b"]);
    assert.deepEqual([b.sampleCount, b.sum, b.minimum, b.maximum], [5, 3, 0, 1]);
    for (const [stream, shard, values] of shards) {
      const leaf = find(datums, "UserRecordsPut", [`StreamName=${stream}`, `ShardId=${shard}`]);
      assert.equal(leaf.sampleCount, values.length);
    }
    // Summed over each level, the counts agree: nothing is lost or counted twice.
    const byDepth = [0, 1, 2].map((depth) =>
      datums.filter((datum) => datum.dimensions.length === depth)
        .reduce((total, datum) => total + datum.sampleCount, 0)
    );
    assert.deepEqual(byDepth, [10, 10, 10]);
  });
});

test("CloudWatchSink.export() rolls ErrorsByCode up to per-code series and a total, never to a stream alone", async () => {
  await withCapture({}, async (sink, capture) => {
    await sink.export([
      snapshot("ErrorsByCode", "Count", {
        stream: "s",
        shard: "shardId-000000000000",
        error_code: "InternalFailure",
      }, [1, 1]),
      snapshot("ErrorsByCode", "Count", {
        stream: "s",
        shard: "shardId-000000000001",
        error_code: "ProvisionedThroughputExceededException",
      }, [1, 1, 1]),
      snapshot("ErrorsByCode", "Count", { stream: "s", error_code: "InternalFailure" }, [1]),
    ]);
    const datums = capture.datums;
    const keys = datums.map((datum) => datum.dimensions.join("|")).sort();
    assert.deepEqual(keys, [
      "",
      "ErrorCode=InternalFailure",
      "ErrorCode=InternalFailure|StreamName=s",
      "ErrorCode=InternalFailure|StreamName=s|ShardId=shardId-000000000000",
      "ErrorCode=ProvisionedThroughputExceededException",
      "ErrorCode=ProvisionedThroughputExceededException|StreamName=s",
      "ErrorCode=ProvisionedThroughputExceededException|StreamName=s|ShardId=shardId-000000000001",
    ]);
    assert.equal(find(datums, "ErrorsByCode", []).sum, 6);
    assert.equal(find(datums, "ErrorsByCode", ["ErrorCode=InternalFailure"]).sum, 3);
    assert.equal(
      find(datums, "ErrorsByCode", ["ErrorCode=InternalFailure", "StreamName=s"]).sum,
      3,
    );
  });
});

test("CloudWatchSink.export() skips series with no samples or values CloudWatch rejects", async () => {
  const logger = new CapturingLogger();
  await withCapture({ rollUps: false, logger }, async (sink, capture) => {
    await sink.export([
      snapshot("UserRecordsPut", "Count", { stream: "s" }, []),
      { ...snapshot("RequestTime", "Milliseconds", { stream: "s" }, [1]), max: Number.NaN },
    ]);
    assert.equal(capture.attempts, 0, "nothing to send, no request");
    assert.deepEqual(logger.at("warn").map((call) => call.message), [
      "CloudWatch sink skipped a RequestTime series holding a value CloudWatch rejects (NaN or infinite)",
    ]);
    await sink.export([snapshot("UserRecordsPut", "Count", { stream: "s" }, [1])]);
    assert.equal(capture.datums.length, 1);
  });
});

test("CloudWatchSink.export() sends 2,500 series as 3 gzip requests of 1000, 1000 and 500 datums", async () => {
  await withCapture({ rollUps: false }, async (sink, capture) => {
    const snapshots: MetricSnapshot[] = [];
    for (let i = 0; i < 2500; i++) {
      const shard = `shardId-${String(i).padStart(12, "0")}`;
      snapshots.push(snapshot("KinesisRecordsPut", "Count", { stream: "big", shard }, [1, i]));
    }
    await sink.export(snapshots);
    assert.deepEqual(capture.violations, []);
    assert.deepEqual(capture.requests.map((request) => request.datums.length), [1000, 1000, 500]);
    for (const request of capture.requests) {
      assert.ok(request.gzip, "bodies above 10 KiB are gzip-compressed by the SDK");
      assert.ok(request.bodyBytes <= 1_000_000);
      assert.ok(request.wireBytes < request.bodyBytes);
    }
    const sum = capture.datums.reduce((total, datum) => total + datum.sum, 0);
    assert.equal(sum, 2500 + (2499 * 2500) / 2);
  });
});

test("CloudWatchSink.export() keeps every request under 1 MB when dimension values are long", async () => {
  await withCapture({ rollUps: false }, async (sink, capture) => {
    const snapshots: MetricSnapshot[] = [];
    for (let i = 0; i < 1000; i++) {
      const error_code = `${String(i).padStart(4, "0")}${"x".repeat(1000)}`;
      snapshots.push(snapshot("ErrorsByCode", "Count", { stream: "s", error_code }, [1]));
    }
    await sink.export(snapshots);
    assert.deepEqual(capture.violations, []);
    assert.ok(capture.requests.length >= 2, `${capture.requests.length} requests`);
    for (const request of capture.requests) assert.ok(request.bodyBytes <= 1_000_000);
    assert.equal(capture.datums.length, 1000);
  });
});

test("CloudWatchSink.export() rejects after the SDK's bounded retries when the service answers 500", async () => {
  await withCapture({ rollUps: false, maxAttempts: 2 }, async (sink, capture) => {
    capture.failWith(500);
    await assert.rejects(
      sink.export([snapshot("UserRecordsPut", "Count", { stream: "s" }, [1])]),
      (error: Error) => {
        assert.match(error.message, /failed for 1 of 1 requests, 1 datums were not stored/);
        assert.match(error.message, /InternalServiceFault/);
        assert.ok(error.cause instanceof Error);
        return true;
      },
    );
    assert.equal(capture.attempts, 2, "one try and one retry, then give up");

    capture.failWith(undefined);
    await sink.export([snapshot("UserRecordsPut", "Count", { stream: "s" }, [1])]);
    assert.equal(capture.datums.length, 1, "the sink recovers with the service");
  });
});

test("CloudWatchSink.export() rejects, without hanging, when the endpoint refuses connections", async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));

  const sink = new CloudWatchSink({
    region: "us-east-1",
    endpoint: `http://127.0.0.1:${port}`,
    credentials,
  });
  try {
    await assert.rejects(
      sink.export([snapshot("UserRecordsPut", "Count", { stream: "s" }, [1])]),
      /CloudWatch PutMetricData failed for 1 of 1 requests/,
    );
  } finally {
    await sink.close();
  }
});

test("CloudWatchSink.export() rejects, without hanging, when the service never answers", async () => {
  await withCapture({ maxAttempts: 1, requestTimeoutMs: 100 }, async (sink, capture) => {
    capture.failWith("hang");
    await assert.rejects(
      sink.export([snapshot("UserRecordsPut", "Count", { stream: "s" }, [1])]),
      /failed for 1 of 1 requests.*timed out|failed for 1 of 1 requests.*Timeout/i,
    );
    assert.equal(capture.attempts, 1);
  });
});

test("CloudWatchSink sends through an injected client and leaves it open", async () => {
  const inputs: { Namespace: string; MetricData: unknown[] }[] = [];
  const sink = new CloudWatchSink({
    client: {
      send(command: object) {
        inputs.push((command as { input: { Namespace: string; MetricData: unknown[] } }).input);
        return Promise.resolve({});
      },
    },
  });
  await sink.start();
  await sink.export([snapshot("RequestTime", "Milliseconds", { stream: "s" }, [5, 7])]);
  await sink.close();
  assert.equal(inputs.length, 1);
  assert.equal(inputs[0]!.Namespace, "KinesisProducerLibrary");
  assert.equal(inputs[0]!.MetricData.length, 2, "the stream series and its global roll-up");
});

test("CloudWatchSink.export() rejects once the sink is closed", async () => {
  const sink = new CloudWatchSink({ client: { send: () => Promise.resolve({}) } });
  await sink.close();
  await assert.rejects(
    sink.export([snapshot("UserRecordsPut", "Count", {}, [1])]),
    /CloudWatchSink as it is closed/,
  );
});

test("new CloudWatchSink() rejects bad options with the option's name and value", () => {
  assert.throws(() => new CloudWatchSink({}), {
    name: "TypeError",
    message:
      "Cannot create CloudWatchSink as 'region' must be a non-empty string when no 'client' is given: current value is undefined",
  });
  assert.throws(
    () => new CloudWatchSink({ region: "us-east-1", namespace: "AWS/Kinesis" }),
    RangeError,
  );
  assert.throws(() => new CloudWatchSink({ region: "us-east-1", namespace: "" }), RangeError);
  assert.throws(
    () => new CloudWatchSink({ region: "us-east-1", maxAttempts: 0 }),
    /'maxAttempts' must be an integer between 1 and 10: current value is 0/,
  );
  assert.throws(
    () => new CloudWatchSink({ region: "us-east-1", requestTimeoutMs: -1 }),
    RangeError,
  );
  assert.equal(new CloudWatchSink({ region: "eu-west-1" }).namespace, "KinesisProducerLibrary");
});
