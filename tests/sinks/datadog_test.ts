import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { DatadogSink, type DatadogSinkOptions } from "../../sinks/datadog.ts";
import type { Clock, TimerHandle } from "../../src/clock.ts";
import type {
  MetricDimensions,
  MetricEvent,
  MetricName,
  MetricSnapshot,
  MetricUnit,
} from "../../src/metrics_sink.ts";
import {
  type DatadogCapture,
  MAX_PAYLOAD_BYTES,
  startDatadogCapture,
} from "../support/datadog_capture.ts";
import { CapturingLogger } from "../support/capturing_logger.ts";

const API_KEY = "dd-api-0123456789abcdef0123456789abcdef";
const APP_KEY = "dd-app-fedcba9876543210fedcba9876543210fedc";

/** A clock whose timers fire at once, recording the delays the sink asked for. */
class InstantClock implements Clock {
  readonly delays: number[] = [];
  now(): number {
    return Date.now();
  }
  setTimer(callback: () => void, delayMs: number): TimerHandle {
    this.delays.push(delayMs);
    queueMicrotask(callback);
    return this.delays.length;
  }
  clearTimer(): void {}
  setPersistent(): void {}
}

async function withCapture(
  options: Partial<DatadogSinkOptions>,
  body: (sink: DatadogSink, capture: DatadogCapture, clock: InstantClock) => Promise<void>,
): Promise<void> {
  const capture = await startDatadogCapture(API_KEY);
  const clock = new InstantClock();
  const sink = new DatadogSink({
    apiKey: API_KEY,
    baseUrl: capture.url,
    clock,
    logger: new CapturingLogger(),
    ...options,
  });
  try {
    await body(sink, capture, clock);
  } finally {
    sink.close();
    await capture.close();
  }
}

function snapshot(
  name: MetricName,
  unit: MetricUnit,
  dimensions: MetricDimensions,
  values: number[],
  window: { windowStart: number; windowEnd: number },
): MetricSnapshot {
  return {
    name,
    unit,
    dimensions,
    count: values.length,
    sum: values.reduce((a, b) => a + b, 0),
    min: values.length === 0 ? 0 : Math.min(...values),
    max: values.length === 0 ? 0 : Math.max(...values),
    ...window,
  };
}

function event(
  name: MetricName,
  unit: MetricUnit,
  value: number,
  timestamp: number,
  dimensions: MetricDimensions,
): MetricEvent {
  return { name, unit, value, timestamp, dimensions };
}

test("DatadogSink.export() sends counts and the pending gauge to v2 series and raw distributions to v1", async () => {
  await withCapture(
    { appKey: APP_KEY, tags: ["env:test"], host: "producer-1" },
    async (sink, capture) => {
      const startSeconds = Math.floor(Date.now() / 1000);
      const windowStart = startSeconds * 1000 - 60_000;
      const windowEnd = startSeconds * 1000;
      const shard = { stream: "orders", shard: "shardId-000000000001" };
      const buffering = [12, 250, 40, 7];
      buffering.forEach((value, i) =>
        sink.record(event("BufferingTime", "Milliseconds", value, windowStart + i * 400, shard))
      );
      sink.record(event("RequestTime", "Milliseconds", 31.5, windowStart + 5000, {
        stream: "orders",
      }));
      // Samples that the snapshots count must not come through record() twice.
      sink.record(event("UserRecordsPut", "Count", 1, windowStart, shard));
      for (const [offset, value] of [[0, 4], [100, 9], [2000, 3], [59_000, 0]]) {
        sink.record(event("UserRecordsPending", "Count", value!, windowStart + offset!, {
          stream: "orders",
        }));
      }
      await sink.export([
        snapshot("UserRecordsPut", "Count", shard, [1, 1, 0, 1], { windowStart, windowEnd }),
        snapshot("UserRecordsDataPut", "Bytes", shard, [100, 2048, 0], {
          windowStart,
          windowEnd,
        }),
        snapshot("ErrorsByCode", "Count", { ...shard, error_code: "InternalFailure" }, [1], {
          windowStart,
          windowEnd,
        }),
        snapshot("BufferingTime", "Milliseconds", shard, buffering, { windowStart, windowEnd }),
        snapshot("UserRecordsPending", "Count", { stream: "orders" }, [4, 9, 3, 0], {
          windowStart,
          windowEnd,
        }),
        snapshot("AllErrors", "Count", {}, [], { windowStart, windowEnd }),
      ]);
      const endSeconds = Math.ceil(Date.now() / 1000);

      assert.deepEqual(capture.violations, []);
      assert.deepEqual(capture.requests.map((request) => [request.path, request.status]), [
        ["/api/v2/series", 202],
        ["/api/v1/distribution_points", 202],
      ]);
      for (const request of capture.requests) {
        assert.equal(request.headers["dd-api-key"], API_KEY);
        assert.equal(request.headers["dd-application-key"], APP_KEY);
        assert.equal(request.headers["content-type"], "application/json");
      }

      const byMetric = new Map(capture.series.map((entry) => [entry.metric, entry]));
      assert.deepEqual([...byMetric.keys()].sort(), [
        "webkpl.ErrorsByCode",
        "webkpl.UserRecordsDataPut",
        "webkpl.UserRecordsPending",
        "webkpl.UserRecordsPut",
      ]);
      assert.deepEqual(byMetric.get("webkpl.UserRecordsPut"), {
        metric: "webkpl.UserRecordsPut",
        type: 1,
        interval: 60,
        points: [{ timestamp: startSeconds - 60, value: 3 }],
        tags: ["env:test", "stream:orders", "shard:shardId-000000000001"],
        resources: [{ name: "producer-1", type: "host" }],
      });
      assert.equal(byMetric.get("webkpl.UserRecordsDataPut")!.unit, "byte");
      assert.equal(byMetric.get("webkpl.UserRecordsDataPut")!.points[0]!.value, 2148);
      assert.deepEqual(byMetric.get("webkpl.ErrorsByCode")!.tags, [
        "env:test",
        "stream:orders",
        "shard:shardId-000000000001",
        "error_code:InternalFailure",
      ]);
      const pending = byMetric.get("webkpl.UserRecordsPending")!;
      assert.equal(pending.type, 3);
      assert.equal(pending.interval, undefined);
      assert.deepEqual(pending.points, [
        { timestamp: startSeconds - 60, value: 9 },
        { timestamp: startSeconds - 58, value: 3 },
        { timestamp: startSeconds - 1, value: 0 },
      ]);

      const distributions = new Map(capture.distributions.map((entry) => [entry.metric, entry]));
      const bufferingEntry = distributions.get("webkpl.BufferingTime")!;
      assert.deepEqual(bufferingEntry.points, [
        [startSeconds - 60, [12, 250, 40]],
        [startSeconds - 59, [7]],
      ]);
      assert.equal(bufferingEntry.host, "producer-1");
      assert.deepEqual(bufferingEntry.tags, [
        "env:test",
        "stream:orders",
        "shard:shardId-000000000001",
      ]);
      assert.deepEqual(distributions.get("webkpl.RequestTime")!.points, [
        [startSeconds - 55, [31.5]],
      ]);

      const timestamps = [
        ...capture.series.flatMap((entry) => entry.points.map((point) => point.timestamp)),
        ...capture.distributions.flatMap((entry) => entry.points.map((point) => point[0])),
      ];
      for (const timestamp of timestamps) {
        assert.ok(timestamp >= startSeconds - 60 && timestamp <= endSeconds, `${timestamp}`);
      }
    },
  );
});

test("DatadogSink totals: counts sum to the truth and distributions carry every raw sample", async () => {
  await withCapture({ metricPrefix: "kpl." }, async (sink, capture) => {
    const now = Date.now();
    const truth = { put: 0, retries: 0, retrySamples: 0 };
    const snapshots: MetricSnapshot[] = [];
    for (let export_ = 0; export_ < 3; export_++) {
      const windowStart = now - (3 - export_) * 10_000;
      const windowEnd = windowStart + 10_000;
      const puts: number[] = [];
      for (let i = 0; i < 500; i++) {
        const success = i % 7 === 0 ? 0 : 1;
        puts.push(success);
        truth.put += success;
        const retries = i % 5;
        truth.retries += retries;
        truth.retrySamples++;
        sink.record(event("RetriesPerRecord", "Count", retries, windowStart + i * 20, {
          stream: "s",
        }));
      }
      snapshots.length = 0;
      snapshots.push(snapshot("UserRecordsPut", "Count", { stream: "s" }, puts, {
        windowStart,
        windowEnd,
      }));
      await sink.export(snapshots);
    }
    assert.deepEqual(capture.violations, []);
    const put = capture.series.filter((entry) => entry.metric === "kpl.UserRecordsPut")
      .flatMap((entry) => entry.points).reduce((total, point) => total + point.value, 0);
    assert.equal(put, truth.put);
    const retryValues = capture.distributions
      .filter((entry) => entry.metric === "kpl.RetriesPerRecord")
      .flatMap((entry) => entry.points.flatMap((point) => point[1]));
    assert.equal(retryValues.length, truth.retrySamples);
    assert.equal(retryValues.reduce((a, b) => a + b, 0), truth.retries);
  });
});

test("DatadogSink.export() splits payloads under 512000 bytes without losing a sample", async () => {
  await withCapture({ maxBufferedSamples: 200_000 }, async (sink, capture) => {
    const now = Date.now();
    const second = Math.floor(now / 1000) * 1000;
    let sum = 0;
    // 150,000 long values in one second of one series: one point must be cut in pieces.
    for (let i = 0; i < 150_000; i++) {
      const value = 1000 + i / 7;
      sum += value;
      sink.record(event("RequestTime", "Milliseconds", value, second, { stream: "s" }));
    }
    const snapshots: MetricSnapshot[] = [];
    for (let i = 0; i < 6000; i++) {
      snapshots.push(snapshot(
        "KinesisRecordsPut",
        "Count",
        {
          stream: "s",
          shard: `shardId-${String(i).padStart(12, "0")}`,
        },
        [1, 1],
        { windowStart: now - 1000, windowEnd: now },
      ));
    }
    await sink.export(snapshots);
    assert.deepEqual(capture.violations, []);
    const seriesRequests = capture.requests.filter((r) => r.path === "/api/v2/series");
    const distributionRequests = capture.requests.filter((r) =>
      r.path === "/api/v1/distribution_points"
    );
    assert.ok(seriesRequests.length >= 2, `${seriesRequests.length} series requests`);
    assert.ok(distributionRequests.length >= 2, `${distributionRequests.length} requests`);
    for (const request of capture.requests) {
      assert.equal(request.status, 202);
      assert.ok(request.bytes <= MAX_PAYLOAD_BYTES, `${request.bytes} bytes`);
    }
    assert.equal(capture.series.length, 6000);
    assert.equal(capture.series.reduce((total, entry) => total + entry.points[0]!.value, 0), 12000);
    const values = capture.distributions.flatMap((entry) =>
      entry.points.flatMap((point) => point[1])
    );
    assert.equal(values.length, 150_000);
    assert.ok(Math.abs(values.reduce((a, b) => a + b, 0) - sum) < 1e-6 * sum);
  });
});

test("DatadogSink retries a 429 with back-off and then succeeds, sending the data once", async () => {
  await withCapture({}, async (sink, capture, clock) => {
    capture.script([429, 429], { retryAfter: "2" });
    const now = Date.now();
    await sink.export([
      snapshot("UserRecordsReceived", "Count", { stream: "s" }, [1, 1, 1], {
        windowStart: now - 1000,
        windowEnd: now,
      }),
    ]);
    assert.deepEqual(capture.requests.map((request) => request.status), [429, 429, 202]);
    assert.equal(clock.delays.length, 2);
    for (const delay of clock.delays) {
      assert.ok(delay >= 2000 && delay <= 30_000, `Retry-After honoured: ${delay}`);
    }
    assert.equal(capture.series.length, 1);
    assert.equal(capture.series[0]!.points[0]!.value, 3);
  });
});

test("DatadogSink backs off exponentially on 5xx and gives up after maxRetries, then recovers", async () => {
  await withCapture({ maxRetries: 3 }, async (sink, capture, clock) => {
    capture.script([500, 502, 503, 500, 500]);
    const now = Date.now();
    const window = { windowStart: now - 1000, windowEnd: now };
    sink.record(event("RequestTime", "Milliseconds", 5, now - 500, { stream: "s" }));
    await assert.rejects(
      sink.export([snapshot("UserRecordsPut", "Count", { stream: "s" }, [1], window)]),
      {
        message:
          'Datadog /api/v2/series request answered HTTP 500 {"errors":["scripted failure"]} after 4 attempts; 2 of 2 requests of this export were not sent',
      },
    );
    assert.equal(capture.requests.length, 4, "one try and three retries, nothing more");
    assert.equal(clock.delays.length, 3);
    clock.delays.forEach((delay, i) => {
      const ceiling = 500 * 2 ** i;
      assert.ok(delay >= ceiling / 2 && delay <= ceiling, `delay ${i}: ${delay}`);
    });

    capture.script([]);
    await sink.export([snapshot("UserRecordsPut", "Count", { stream: "s" }, [1], window)]);
    assert.equal(capture.series.length, 1, "the next export goes through");
  });
});

test("DatadogSink gives up, without hanging, when connections are refused or never answered", async () => {
  const closed = await startDatadogCapture(API_KEY);
  const refusedUrl = closed.url;
  await closed.close();
  const clock = new InstantClock();
  const refused = new DatadogSink({ apiKey: API_KEY, baseUrl: refusedUrl, clock, maxRetries: 2 });
  const now = Date.now();
  const snapshots = [
    snapshot("UserRecordsPut", "Count", {}, [1], { windowStart: now - 1000, windowEnd: now }),
  ];
  await assert.rejects(refused.export(snapshots), /request failed: .* after 3 attempts;/);
  assert.equal(clock.delays.length, 2);
  refused.close();

  await withCapture({ maxRetries: 0, requestTimeoutMs: 50 }, async (sink, capture) => {
    capture.script([0]);
    await assert.rejects(
      sink.export(snapshots),
      /request failed: TimeoutError: .* after 1 attempt;/,
    );
    assert.equal(capture.requests.length, 1);
  });
});

test("DatadogSink does not retry a refused request (403) and reports it", async () => {
  await withCapture({ apiKey: "wrong-key-0000" }, async (sink, capture, clock) => {
    const now = Date.now();
    await assert.rejects(
      sink.export([
        snapshot("UserRecordsPut", "Count", {}, [1], { windowStart: now - 1000, windowEnd: now }),
      ]),
      /answered HTTP 403 .*Forbidden.* after 1 attempt;/,
    );
    assert.equal(capture.requests.length, 1);
    assert.equal(clock.delays.length, 0);
  });
});

test("DatadogSink keeps the keys out of logs, error messages and stacks", async () => {
  const logger = new CapturingLogger();
  await withCapture({ appKey: APP_KEY, logger, maxRetries: 1 }, async (sink, capture) => {
    const now = Date.now();
    const window = { windowStart: now - 1000, windowEnd: now };
    const errors: unknown[] = [];
    // A server that echoes the keys back in its error body.
    capture.script([500, 400], { body: JSON.stringify({ errors: [API_KEY, APP_KEY] }) });
    await sink.export([snapshot("UserRecordsPut", "Count", {}, [1], window)]).catch((error) =>
      errors.push(error)
    );
    // A fetch that puts the key in its own error.
    const leaky = new DatadogSink({
      apiKey: API_KEY,
      appKey: APP_KEY,
      baseUrl: capture.url,
      logger,
      maxRetries: 1,
      clock: new InstantClock(),
      fetch: (_url, init) =>
        Promise.reject(new Error(`connect failed with headers ${JSON.stringify(init.headers)}`)),
    });
    await leaky.export([snapshot("UserRecordsPut", "Count", {}, [1], window)]).catch((error) =>
      errors.push(error)
    );
    assert.throws(() => new DatadogSink({ apiKey: 42 as unknown as string }), (error: Error) => {
      errors.push(error);
      return true;
    });

    assert.equal(errors.length, 3);
    assert.ok(logger.lines().length >= 2, "the retries were logged");
    const texts = [
      ...logger.lines(),
      ...errors.map((error) => `${(error as Error).message}\n${(error as Error).stack}`),
      ...errors.map((error) => String((error as Error).cause ?? "")),
    ];
    for (const text of texts) {
      assert.ok(!text.includes(API_KEY), `API key leaked: ${text}`);
      assert.ok(!text.includes(APP_KEY), `application key leaked: ${text}`);
    }
    assert.match(String((errors[0] as Error).message), /\[redacted\]/);
  });
});

test("DatadogSink reads DD_API_KEY and DD_APP_KEY from the environment when not given", async () => {
  const saved = [process.env.DD_API_KEY, process.env.DD_APP_KEY];
  process.env.DD_API_KEY = API_KEY;
  process.env.DD_APP_KEY = APP_KEY;
  const capture = await startDatadogCapture(API_KEY);
  try {
    const sink = new DatadogSink({ baseUrl: capture.url, logger: new CapturingLogger() });
    const now = Date.now();
    await sink.export([
      snapshot("UserRecordsPut", "Count", {}, [1], { windowStart: now - 1000, windowEnd: now }),
    ]);
    assert.equal(capture.requests[0]!.headers["dd-api-key"], API_KEY);
    assert.equal(capture.requests[0]!.headers["dd-application-key"], APP_KEY);
  } finally {
    if (saved[0] === undefined) delete process.env.DD_API_KEY;
    else process.env.DD_API_KEY = saved[0];
    if (saved[1] === undefined) delete process.env.DD_APP_KEY;
    else process.env.DD_APP_KEY = saved[1];
    await capture.close();
  }
});

test("DatadogSink.record() keeps at most maxBufferedSamples and counts the drops", async () => {
  const logger = new CapturingLogger();
  await withCapture({ maxBufferedSamples: 10, logger }, async (sink, capture) => {
    const now = Date.now();
    for (let i = 0; i < 15; i++) {
      sink.record(event("BufferingTime", "Milliseconds", i, now, { stream: "s" }));
    }
    sink.record(event("BufferingTime", "Milliseconds", Number.NaN, now, { stream: "s" }));
    assert.equal(sink.droppedSamples, 6);
    await sink.export([]);
    assert.equal(capture.distributions[0]!.points[0]![1].length, 10);
    assert.ok(logger.lines().some((line) => line.includes("dropped 6 raw samples")));
    await sink.export([]);
    assert.equal(capture.requests.length, 1, "an empty export sends nothing");
  });
});

test("DatadogSink ignores samples after close and rejects exports", async () => {
  const sink = new DatadogSink({ apiKey: API_KEY, fetch: () => Promise.reject(new Error("x")) });
  sink.close();
  sink.record(event("RequestTime", "Milliseconds", 1, Date.now(), {}));
  assert.equal(sink.droppedSamples, 0);
  await assert.rejects(sink.export([]), /DatadogSink as it is closed/);
});

test("new DatadogSink() rejects bad options with the option's name", () => {
  const saved = process.env.DD_API_KEY;
  delete process.env.DD_API_KEY;
  try {
    assert.throws(() => new DatadogSink({}), {
      name: "TypeError",
      message:
        "Cannot create DatadogSink as 'apiKey' must be a non-empty string, or DD_API_KEY must be set: current type is undefined",
    });
  } finally {
    if (saved !== undefined) process.env.DD_API_KEY = saved;
  }
  assert.throws(() => new DatadogSink({ apiKey: API_KEY, site: "https://x" }), RangeError);
  assert.throws(() => new DatadogSink({ apiKey: API_KEY, baseUrl: "ftp://x" }), RangeError);
  assert.throws(() => new DatadogSink({ apiKey: API_KEY, metricPrefix: "9x" }), RangeError);
  assert.throws(() => new DatadogSink({ apiKey: API_KEY, tags: [""] }), RangeError);
  assert.throws(
    () => new DatadogSink({ apiKey: API_KEY, maxRetries: 11 }),
    /'maxRetries' must be an integer between 0 and 10: current value is 11/,
  );
  assert.throws(() => new DatadogSink({ apiKey: API_KEY, maxBufferedSamples: -1 }), RangeError);
});
