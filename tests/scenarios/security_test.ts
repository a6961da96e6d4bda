// No credential or API key ever reaches a log line, a result or an error, whatever fails;
// TLS certificates are verified by default.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:https";
import { readdirSync, readFileSync } from "node:fs";
import { inspect } from "node:util";
import { Producer } from "../../src/producer.ts";
import type { ProducerOptions } from "../../src/options.ts";
import type { RecordResult } from "../../src/record.ts";
import { CloudWatchSink } from "../../sinks/cloudwatch.ts";
import { DatadogSink } from "../../sinks/datadog.ts";
import { type Emulator, startKinesalite, startKinesisLocal } from "../support/emulators.ts";
import { createStream, createTestClient, uniqueStreamName } from "../support/kinesis_sdk.ts";
import { startChaosProxy } from "../support/chaos_proxy.ts";
import { CapturingLogger } from "../support/capturing_logger.ts";
import { refusedEndpoint, startErrorServer } from "../support/error_server.ts";
import { startDatadogCapture } from "../support/datadog_capture.ts";

const ACCESS_KEY_ID = "AKIDSECRETa7c41f0e9b";
const SECRET_ACCESS_KEY = "sk-SECRET-3b8d2f60a1c94e7d";
const SESSION_TOKEN = "st-SECRET-91e4c7d2f0a85b36";
const DD_API_KEY = "dd-SECRET-5a0b6c1d8e2f4a97";
const DD_APP_KEY = "dd-app-SECRET-2e7f0c4b9a1d";
const SECRETS = [ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN, DD_API_KEY, DD_APP_KEY];
const credentials = {
  accessKeyId: ACCESS_KEY_ID,
  secretAccessKey: SECRET_ACCESS_KEY,
  sessionToken: SESSION_TOKEN,
};

/**
 * Every secret found anywhere in `value`: its strings, its errors' messages, stacks and
 * causes, own properties enumerable or not, map and set entries, byte arrays as text, and
 * what `console.log` would print of it.
 */
function leaks(value: unknown): string[] {
  const found = new Set<string>();
  const seen = new Set<unknown>();
  const decoder = new TextDecoder();
  const scan = (text: string) => {
    for (const secret of SECRETS) if (text.includes(secret)) found.add(secret);
  };
  const walk = (item: unknown, depth: number): void => {
    if (typeof item === "string") return scan(item);
    if (typeof item !== "object" || item === null || seen.has(item) || depth > 12) return;
    seen.add(item);
    if (item instanceof Uint8Array) return scan(decoder.decode(item));
    if (item instanceof Error) scan(`${String(item)}\n${item.stack ?? ""}`);
    if (item instanceof Map) {
      for (const [key, entry] of item) {
        walk(key, depth + 1);
        walk(entry, depth + 1);
      }
    }
    if (item instanceof Set) { for (const entry of item) walk(entry, depth + 1); }
    for (const key of Reflect.ownKeys(item)) {
      const descriptor = Object.getOwnPropertyDescriptor(item, key);
      if (descriptor !== undefined && "value" in descriptor) walk(descriptor.value, depth + 1);
    }
  };
  walk(value, 0);
  scan(inspect(value, { showHidden: true, depth: 12, maxArrayLength: 1_000 }));
  return [...found];
}

/** Every logged argument, every result and every error thrown must be clean. */
function assertClean(what: string, logger: CapturingLogger, extra: unknown[] = []): void {
  for (const call of logger.calls) {
    assert.deepEqual(
      leaks([call.message, ...call.data]),
      [],
      `${what}: ${call.level} ${call.message}`,
    );
  }
  for (const item of extra) {
    assert.deepEqual(leaks(item), [], `${what}: ${inspect(item).slice(0, 300)}`);
  }
}

let kinesalite: Emulator;

before(async () => {
  kinesalite = await startKinesalite();
});

after(async () => {
  await kinesalite?.stop();
});

describe("Secrets stay out of logs, results and errors", () => {
  test("leaks() finds a secret hidden deep in an error, a byte array or a map", () => {
    const hidden = new Error("request failed", {
      cause: {
        $response: { headers: new Map([["authorization", `Credential=${ACCESS_KEY_ID}/x`]]) },
      },
    });
    Object.defineProperty(hidden, "secret", { value: SECRET_ACCESS_KEY, enumerable: false });
    assert.deepEqual(leaks(hidden).sort(), [ACCESS_KEY_ID, SECRET_ACCESS_KEY].sort());
    assert.deepEqual(leaks([new TextEncoder().encode(`token ${SESSION_TOKEN}`)]), [SESSION_TOKEN]);
    assert.deepEqual(leaks({ message: "fine" }), []);
  });

  async function putThrough(options: ProducerOptions, count = 10): Promise<{
    logger: CapturingLogger;
    results: RecordResult[];
    closeError: unknown;
  }> {
    const logger = new CapturingLogger();
    const producer = new Producer({
      region: "us-east-1",
      credentials,
      stream: "events",
      recordTtlMs: 1_000,
      logger,
      ...options,
    });
    const results = await Promise.all(
      Array.from(
        { length: count },
        (_, i) => producer.put({ partitionKey: `k${i}`, data: `x${i}` }),
      ),
    );
    let closeError: unknown;
    await producer.close().catch((error) => closeError = error);
    return { logger, results, closeError };
  }

  test("Producer leaks no credential when the endpoint refuses connections", async () => {
    const { logger, results, closeError } = await putThrough({ endpoint: await refusedEndpoint() });
    assert.ok(results.every((result) => result.errorCode === "Expired"));
    assert.ok(logger.at("warn").length > 0, "the failed listings were logged");
    assertClean("refused", logger, [results, closeError]);
  });

  test("Producer leaks no credential when every request fails with a 500", async () => {
    const stream = uniqueStreamName("secret500");
    const direct = createTestClient(kinesalite.endpoint);
    await createStream(direct, stream);
    direct.destroy();
    await using proxy = await startChaosProxy({
      upstream: kinesalite.endpoint,
      rates: { http500: 1 },
    });
    const { logger, results, closeError } = await putThrough({ endpoint: proxy.endpoint, stream });
    assert.ok(results.every((result) => /InternalFailure/.test(result.errorMessage ?? "")));
    assertClean("500", logger, [results, closeError]);
  });

  for (
    const [status, type] of [
      [403, "AccessDeniedException"],
      [400, "UnrecognizedClientException"],
      [400, "InvalidSignatureException"],
    ] as const
  ) {
    test(`Producer leaks no credential when Kinesis answers ${type}`, async () => {
      await using server = await startErrorServer({ status, type, message: `Refused: ${type}` });
      const { logger, results, closeError } = await putThrough({ endpoint: server.endpoint });
      assert.ok(
        results.every((result) => result.errorCode === type || result.errorCode === "Expired"),
      );
      // The credentials did go out (signed, with the session token): the test would see them.
      assert.ok(
        server.headers.some((headers) => String(headers.authorization).includes(ACCESS_KEY_ID)),
      );
      assertClean(type, logger, [results, closeError]);
    });
  }

  test("CloudWatchSink leaks no credential when its endpoint refuses connections or refuses the request", async () => {
    await using server = await startErrorServer({
      status: 403,
      type: "AccessDenied",
      message: "User is not authorized to perform cloudwatch:PutMetricData",
    });
    for (const endpoint of [await refusedEndpoint(), server.endpoint]) {
      const sinkLogger = new CapturingLogger();
      const sink = new CloudWatchSink({
        region: "us-east-1",
        endpoint,
        credentials,
        maxAttempts: 1,
        logger: sinkLogger,
      });
      const { logger, results, closeError } = await putThrough({
        endpoint: kinesalite.endpoint,
        stream: "no-such-stream",
        metricsLevel: "detailed",
        metricsSink: sink,
      });
      assert.ok(logger.at("error").some((call) => /metrics export failed/.test(call.message)));
      assertClean(`CloudWatch ${endpoint}`, logger, [results, closeError]);
      assertClean(`CloudWatch ${endpoint}`, sinkLogger);
    }
  });

  test("DatadogSink leaks no API key when the API fails, even when the answer echoes the key", async () => {
    const capture = await startDatadogCapture(DD_API_KEY);
    try {
      capture.script(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? 500 : 403)), {
        body: JSON.stringify({ errors: [`Invalid API key ${DD_API_KEY} / ${DD_APP_KEY}`] }),
      });
      const sinkLogger = new CapturingLogger();
      const sink = new DatadogSink({
        apiKey: DD_API_KEY,
        appKey: DD_APP_KEY,
        baseUrl: capture.url,
        maxRetries: 1,
        logger: sinkLogger,
      });
      const { logger, results, closeError } = await putThrough({
        endpoint: kinesalite.endpoint,
        stream: "no-such-stream",
        metricsLevel: "detailed",
        metricsSink: sink,
      });
      assert.ok(logger.at("error").some((call) => /metrics export failed/.test(call.message)));
      assert.ok(capture.requests.length > 0 && capture.requests.every((r) => r.status >= 400));
      assertClean("Datadog", logger, [results, closeError]);
      assert.ok(sinkLogger.calls.length > 0, "the sink logged its retries");
      assertClean("Datadog", sinkLogger);
    } finally {
      await capture.close();
    }
  });

  test("Constructors leak no secret in the errors they throw for bad options", () => {
    const attempts: Array<() => unknown> = [
      () => new Producer({ credentials, endpoint: "not a url" }),
      () => new Producer({ credentials, stream: "bad name!" }),
      () => new Producer({ credentials, recordTtlMs: 1 }),
      () => new CloudWatchSink({ credentials, maxAttempts: 0 }),
      () => new CloudWatchSink({ credentials }),
      () => new DatadogSink({ apiKey: DD_API_KEY, appKey: DD_APP_KEY, site: "not a site!" }),
      () => new DatadogSink({ apiKey: DD_API_KEY, appKey: DD_APP_KEY, maxRetries: -1 }),
      () => new DatadogSink({ apiKey: DD_API_KEY, tags: [5 as unknown as string] }),
      () => new DatadogSink({ apiKey: DD_API_KEY, appKey: 5 as unknown as string }),
    ];
    for (const attempt of attempts) {
      assert.throws(attempt, (error: unknown) => {
        assert.deepEqual(leaks(error), [], inspect(error));
        return true;
      });
    }
  });
});

describe("TLS verification", () => {
  test("Producer's default client rejects kinesis-local's self-signed certificate", async () => {
    await using emulator = await startKinesisLocal();
    const tlsEndpoint = emulator.tlsEndpoint!;
    assert.match(tlsEndpoint, /^https:\/\/127\.0\.0\.1:\d+$/);
    // The TLS port does serve Kinesis: with verification off by hand, ListStreams answers.
    const status = await new Promise<number>((resolve, reject) => {
      const call = request(`${tlsEndpoint}/`, {
        method: "POST",
        rejectUnauthorized: false,
        headers: {
          "content-type": "application/x-amz-json-1.1",
          "x-amz-target": "Kinesis_20131202.ListStreams",
          "x-amz-date": "20240101T000000Z",
          authorization:
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00",
        },
      }, (response) => {
        response.resume();
        response.once("end", () => resolve(response.statusCode ?? 0));
      });
      call.once("error", reject);
      call.end("{}");
    });
    assert.equal(status, 200);

    const logger = new CapturingLogger();
    const producer = new Producer({
      endpoint: tlsEndpoint,
      region: "us-east-1",
      credentials,
      stream: "events",
      recordTtlMs: 1_000,
      logger,
    });
    const result = await producer.put({ partitionKey: "k", data: "x" });
    await producer.close();
    assert.equal(result.success, false);
    assert.equal(result.errorCode, "Expired");
    assert.match(result.errorMessage!, /last error: NetworkError/);
    assert.ok(
      logger.at("warn").some((call) =>
        /Listing the shards .* failed \(NetworkError/.test(call.message)
      ),
      "the listing failed on the certificate too",
    );
  });

  test("Nothing in src/ or sinks/ turns certificate verification off", () => {
    const sources = ["src", "sinks"].flatMap((dir) =>
      readdirSync(new URL(`../../${dir}/`, import.meta.url))
        .filter((name) => name.endsWith(".ts"))
        .map((name) => readFileSync(new URL(`../../${dir}/${name}`, import.meta.url), "utf8"))
    );
    assert.ok(sources.length > 10);
    for (
      const pattern of [
        /rejectUnauthorized/,
        /NODE_TLS_REJECT_UNAUTHORIZED/,
        /unsafely/i,
        /createHttpClient/,
        /checkServerIdentity/,
      ]
    ) {
      assert.ok(sources.every((source) => !pattern.test(source)), String(pattern));
    }
  });
});
