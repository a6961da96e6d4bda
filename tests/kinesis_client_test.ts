import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createDefaultKinesisClient, describeError } from "../src/kinesis_client.ts";
import { Producer } from "../src/producer.ts";
import { silentLogger } from "../src/logger.ts";
import { serviceError } from "./support/fake_kinesis.ts";
import { harness } from "./support/harness.ts";
import { collectGarbage } from "./support/runtime.ts";

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

// What `fetch` rejects with when the connection is refused, as each runtime builds it.
function denoRefused(): TypeError {
  return new TypeError("fetch failed", {
    cause: new Error(
      "error sending request for url (http://127.0.0.1:9/): client error (Connect): tcp connect error: Connection refused (os error 111)",
    ),
  });
}

function bunRefused(): TypeError {
  return Object.assign(
    new TypeError("ECONNREFUSED: Unable to connect. Is the computer able to access the url?"),
    { code: "ECONNREFUSED" },
  );
}

test("describeError() calls a fetch failure NetworkError under every runtime, whatever system code it carries", () => {
  for (
    const [error, detail] of [
      [denoRefused(), /Connection refused/],
      [bunRefused(), /ECONNREFUSED: Unable to connect/],
      [
        Object.assign(new TypeError("ECONNRESET: The socket connection was closed"), {
          code: "ECONNRESET",
        }),
        /ECONNRESET/,
      ],
    ] as const
  ) {
    const described = describeError(error, false);
    assert.equal(described.code, "NetworkError");
    assert.match(described.message, detail, "the detail of the failure is kept");
  }
});

test("describeError() keeps the code of an error that is not a fetch failure", () => {
  const own = Object.assign(new Error("The Kinesis client could not be created"), {
    name: "ClientError",
  });
  assert.equal(describeError(own, false).code, "ClientError");
  const service = Object.assign(new Error("Stream x not found"), {
    name: "ResourceNotFoundException",
    $metadata: { httpStatusCode: 400 },
    $fault: "client",
  });
  assert.equal(describeError(service, false).code, "ResourceNotFoundException");
  assert.equal(describeError(bunRefused(), true).code, "RequestTimeout");
});

test("Producer names a refused connection NetworkError in its attempts under every runtime", async () => {
  const { producer, clock, kinesis } = harness({ recordTtlMs: 500 });
  let call = 0;
  kinesis.putHook = () => (call++ % 2 === 0 ? bunRefused() : denoRefused());
  const pending = producer.put({ partitionKey: "k", data: "x" });
  await clock.advance(1_000);
  const result = await pending;
  assert.equal(result.errorCode, "Expired");
  const codes = new Set(result.attempts.slice(0, -1).map((attempt) => attempt.errorCode));
  assert.deepEqual([...codes], ["NetworkError"]);
  assert.match(result.errorMessage!, /last error: NetworkError: /);
  await producer.close();
});

// Node's fetch loses the abort of a request the SDK built once that request is garbage
// collected (src/_holding_fetch.ts): the call rejects but the connection stays
// open, so a close() or a request timeout does not hang up and the request may still apply.
test("The default client hangs up when its call is aborted, even after a garbage collection", async () => {
  const arrived = Promise.withResolvers<void>();
  const hungUp = Promise.withResolvers<void>();
  const server = http.createServer((req) => {
    // Never answered: only the client can end this request.
    req.resume();
    req.socket.once("close", () => hungUp.resolve());
    arrived.resolve();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const client = await createDefaultKinesisClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" },
  });
  let bound: ReturnType<typeof setTimeout> | undefined;
  try {
    const controller = new AbortController();
    const call = client.putRecords(
      { StreamName: "s", Records: [{ Data: new Uint8Array([1]), PartitionKey: "k" }] },
      { signal: controller.signal },
    ).then(() => "answered", (error: Error) => error.name);
    await arrived.promise;
    collectGarbage();
    controller.abort();
    assert.equal(await call, "AbortError");
    // A bound, not a measurement: the hang-up follows the abort at once when it comes.
    const outcome = await Promise.race([
      hungUp.promise.then(() => "hung up"),
      new Promise<string>((resolve) => bound = setTimeout(resolve, 5_000, "still open")),
    ]);
    assert.equal(outcome, "hung up", "the aborted request kept its connection open");
  } finally {
    clearTimeout(bound);
    await client.close?.();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
