import { test } from "node:test";
import assert from "node:assert/strict";
import { describeError } from "../src/kinesis_client.ts";
import { Producer } from "../src/producer.ts";
import { silentLogger } from "../src/logger.ts";
import { serviceError } from "./support/fake_kinesis.ts";
import { createServer } from "node:net";

test("describeError() keeps a service error's name as its code", () => {
  assert.deepEqual(describeError(serviceError("ResourceNotFoundException", "no stream"), false), {
    code: "ResourceNotFoundException",
    message: "no stream",
  });
  const custom = Object.assign(new Error("slow down"), { name: "ThrottlingException" });
  assert.equal(describeError(custom, false).code, "ThrottlingException");
});

test("describeError() reads transport failures as NetworkError and timeouts as RequestTimeout", () => {
  assert.equal(describeError(new TypeError("fetch failed"), false).code, "NetworkError");
  assert.equal(
    describeError(new DOMException("aborted", "AbortError"), false).code,
    "NetworkError",
  );
  assert.equal(describeError(new Error("socket hang up"), false).code, "NetworkError");
  assert.equal(describeError("a string", false).code, "NetworkError");
  assert.equal(describeError(new TypeError("fetch failed"), true).code, "RequestTimeout");
});

test("The default client reports a refused connection as NetworkError, retried until the TTL", async () => {
  // Bind and close a port so it is free and refuses connections.
  const port = await new Promise<number>((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as { port: number };
      server.close(() => resolve(address.port));
    });
  });
  const producer = new Producer({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
    stream: "s",
    recordTtlMs: 400,
    logger: silentLogger,
  });
  const result = await producer.put({ partitionKey: "k", data: "x" });
  await producer.close();
  assert.equal(result.success, false);
  assert.equal(result.errorCode, "Expired");
  assert.ok(result.attempts.some((attempt) => attempt.errorCode === "NetworkError"));
  assert.match(result.errorMessage!, /NetworkError/);
});

test("The default client fails every record at once, with ClientError, when no region is known", async () => {
  const env =
    (globalThis as { process?: { env: Record<string, string | undefined> } }).process!.env;
  const saved = {
    AWS_REGION: env.AWS_REGION,
    AWS_DEFAULT_REGION: env.AWS_DEFAULT_REGION,
    AWS_CONFIG_FILE: env.AWS_CONFIG_FILE,
  };
  delete env.AWS_REGION;
  delete env.AWS_DEFAULT_REGION;
  // A developer's ~/.aws/config may name a region; point the SDK at no config at all.
  env.AWS_CONFIG_FILE = "/nonexistent/webkpl-test-config";
  try {
    const producer = new Producer({
      endpoint: "http://127.0.0.1:9",
      credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
      stream: "s",
      logger: silentLogger,
    });
    const result = await producer.put({ partitionKey: "k", data: "x" });
    await producer.close();
    assert.equal(result.success, false);
    assert.equal(result.errorCode, "ClientError");
    assert.match(result.errorMessage!, /[Rr]egion/);
    assert.equal(result.attempts.length, 1);
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
  }
});
