// The direct transport (src/_direct_client.ts), the default client's since 0.2.0: it reaches
// the endpoint the SDK's own rules choose, asks the SDK's credential provider before each
// call, turns every kind of answer into the error the SDK transport gives (so describeError()
// reads both alike), and the SDK transport stays selectable.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http from "node:http";
import process from "node:process";
import {
  DescribeStreamSummaryCommand,
  KinesisClient as SdkKinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
} from "@aws-sdk/client-kinesis";
import {
  DirectKinesisClient,
  type DirectKinesisClientOptions,
  type SdkEndpointConfig,
} from "../src/_direct_client.ts";
import {
  createDefaultKinesisClient,
  describeError,
  type KinesisTransport,
} from "../src/kinesis_client.ts";
import { SignatureV4 } from "@smithy/signature-v4";
import { producerOn, startKinesalite, useEmulator } from "./support/emulators.ts";
import { createStream } from "./support/kinesis_sdk.ts";

const CREDENTIALS = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };
const ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/events";
const ENTRY = { Data: Uint8Array.of(1), PartitionKey: "k" };

function signal(): { signal: AbortSignal } {
  return { signal: new AbortController().signal };
}

/** A direct client on an SDK client's configuration, sending through a recording `fetch`. */
function recordingClient(
  sdkConfig: Record<string, unknown>,
  answer: () => Response = () => new Response("{}"),
  send?: typeof fetch,
) {
  const sdk = new SdkKinesisClient({ credentials: CREDENTIALS, ...sdkConfig });
  const urls: string[] = [];
  const dates: string[] = [];
  const client = new DirectKinesisClient({
    config: sdk.config as unknown as SdkEndpointConfig,
    instructions: {
      PutRecords: PutRecordsCommand.getEndpointParameterInstructions(),
      ListShards: ListShardsCommand.getEndpointParameterInstructions(),
      DescribeStreamSummary: DescribeStreamSummaryCommand.getEndpointParameterInstructions(),
    } as DirectKinesisClientOptions["instructions"],
    credentials: () => Promise.resolve(CREDENTIALS),
    fetch: ((url: URL, init: RequestInit) => {
      urls.push(String(url));
      dates.push((init.headers as Record<string, string>)["x-amz-date"]!);
      return send === undefined ? Promise.resolve(answer()) : send(url, init);
    }) as typeof fetch,
    onClose: () => sdk.destroy(),
    now: () => Date.UTC(2026, 11, 1, 12, 0, 0),
  });
  return { client, urls, dates };
}

describe("The direct transport's endpoint", () => {
  test("is the one the SDK's rules choose: the regional endpoint, or the account's for a stream ARN", async () => {
    const { client, urls } = recordingClient({ region: "us-east-1" });
    await client.putRecords({ StreamName: "events", Records: [ENTRY] }, signal());
    await client.putRecords({ StreamARN: ARN, Records: [ENTRY] }, signal());
    await client.listShards({ StreamARN: ARN }, signal());
    await client.describeStreamSummary({ StreamName: "events" }, signal());
    client.close();
    assert.deepEqual(urls, [
      "https://kinesis.us-east-1.amazonaws.com/",
      "https://123456789012.data-kinesis.us-east-1.amazonaws.com/",
      "https://123456789012.control-kinesis.us-east-1.amazonaws.com/",
      "https://kinesis.us-east-1.amazonaws.com/",
    ]);
  });

  test("is the caller's endpoint, path included, as the SDK uses it", async () => {
    const { client, urls } = recordingClient({
      region: "eu-west-1",
      endpoint: "http://127.0.0.1:4567/proxy/",
    });
    await client.putRecords({ StreamARN: ARN, Records: [ENTRY] }, signal());
    client.close();
    assert.deepEqual(urls, ["http://127.0.0.1:4567/proxy/"]);
  });

  test("ends its path with a slash, as the SDK's AWS JSON 1.1 serializer does", async () => {
    const { client, urls } = recordingClient({
      region: "eu-west-1",
      endpoint: "https://proxy.example.com:8443/kinesis?ignored=1",
    });
    await client.putRecords({ StreamName: "events", Records: [ENTRY] }, signal());
    client.close();
    assert.deepEqual(urls, ["https://proxy.example.com:8443/kinesis/"]);
  });

  test("is AWS_ENDPOINT_URL_KINESIS when the caller named none, as the SDK reads it", async () => {
    const saved = process.env.AWS_ENDPOINT_URL_KINESIS;
    process.env.AWS_ENDPOINT_URL_KINESIS = "http://127.0.0.1:4568";
    try {
      const { client, urls } = recordingClient({ region: "us-east-1" });
      await client.putRecords({ StreamARN: ARN, Records: [ENTRY] }, signal());
      client.close();
      assert.deepEqual(urls, ["http://127.0.0.1:4568/"]);
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_KINESIS;
      else process.env.AWS_ENDPOINT_URL_KINESIS = saved;
    }
  });

  test("follows the SDK's FIPS setting", async () => {
    const { client, urls } = recordingClient({ region: "us-east-1", useFipsEndpoint: true });
    await client.putRecords({ StreamName: "events", Records: [ENTRY] }, signal());
    client.close();
    assert.deepEqual(urls, ["https://kinesis-fips.us-east-1.amazonaws.com/"]);
  });
});

test("The direct transport signs by the server's clock once they differ by five minutes or more, as the SDK does", async () => {
  let serverDate = "Tue, 01 Dec 2026 12:04:00 GMT";
  const { client, dates } = recordingClient(
    { region: "us-east-1" },
    () => new Response("{}", { headers: { date: serverDate } }),
  );
  const call = () => client.putRecords({ StreamName: "s", Records: [ENTRY] }, signal());
  await call(); // 4 minutes ahead: not skewed
  await call();
  serverDate = "Tue, 01 Dec 2026 13:00:00 GMT"; // an hour ahead
  await call();
  await call();
  client.close();
  assert.deepEqual(dates, [
    "20261201T120000Z",
    "20261201T120000Z",
    "20261201T120000Z",
    "20261201T130000Z",
  ]);
});

test("The direct transport reads a null member as absent, as the SDK does (kinesis-local writes them)", async () => {
  const shard = {
    ShardId: "shardId-000000000000",
    ParentShardId: null,
    HashKeyRange: { StartingHashKey: "0", EndingHashKey: "1" },
    SequenceNumberRange: { StartingSequenceNumber: "1", EndingSequenceNumber: null },
  };
  const entry = { SequenceNumber: "1", ShardId: "shardId-000000000000", ErrorCode: null };
  const answers = [{ Shards: [shard], NextToken: null }, {
    FailedRecordCount: 0,
    Records: [entry],
  }];
  let next = 0;
  const { client } = recordingClient(
    { region: "us-east-1" },
    () => new Response(JSON.stringify(answers[next++])),
  );
  const listed = await client.listShards({ StreamName: "s" }, signal());
  const put = await client.putRecords({ StreamName: "s", Records: [ENTRY] }, signal());
  client.close();
  assert.deepEqual(listed, {
    Shards: [{
      ShardId: "shardId-000000000000",
      HashKeyRange: { StartingHashKey: "0", EndingHashKey: "1" },
      SequenceNumberRange: { StartingSequenceNumber: "1" },
    }],
  });
  assert.deepEqual(put.Records, [{ SequenceNumber: "1", ShardId: "shardId-000000000000" }]);
});

/** One scripted answer: status, headers, body. */
type Answer = [status: number, headers: Record<string, string>, body: string];

/** A loopback server that answers the n-th request with `answers[n]`. */
async function scriptedServer(answers: readonly Answer[]) {
  let next = 0;
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.once("end", () => {
      const [status, headers, body] = answers[Math.min(next++, answers.length - 1)]!;
      res.writeHead(status, headers);
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const JSON_TYPE = { "content-type": "application/x-amz-json-1.1" };
// What each answer must read as through describeError(), under both transports.
const ANSWERS: [Answer, string][] = [
  [[
    400,
    JSON_TYPE,
    '{"__type":"com.amazonaws.kinesis.v20131202#ResourceNotFoundException","message":"Stream s not found"}',
  ], "ResourceNotFoundException"],
  [[400, {
    "x-amzn-ErrorType": "ProvisionedThroughputExceededException:http://internal.amazon.com/",
  }, '{"Message":"Rate exceeded"}'], "ProvisionedThroughputExceededException"],
  [[400, JSON_TYPE, '{"__type":"UnrecognizedClientException"}'], "UnrecognizedClientException"],
  // AWS JSON 1.1 reads `__type` before `code` and the header.
  [[
    400,
    { "x-amzn-ErrorType": "InternalFailure" },
    '{"code":"LimitExceededException","__type":"ExpiredTokenException"}',
  ], "ExpiredTokenException"],
  [[400, JSON_TYPE, '{"Code":"LimitExceededException"}'], "LimitExceededException"],
  [[500, JSON_TYPE, '{"__type":"InternalFailure","message":"boom"}'], "InternalFailure"],
  [[500, {}, ""], "Unknown"],
  [[400, JSON_TYPE, "{}"], "Unknown"],
  [[503, { "content-type": "text/html" }, "<html>Service Unavailable</html>"], "NetworkError"],
  [[200, {}, "not json"], "NetworkError"],
  [[413, {}, ""], "RequestEntityTooLarge"],
  [
    [413, { "content-type": "text/html" }, "<html>Request Entity Too Large</html>"],
    "RequestEntityTooLarge",
  ],
];

async function describedAnswers(transport: KinesisTransport) {
  const server = await scriptedServer(ANSWERS.map(([answer]) => answer));
  const client = await createDefaultKinesisClient({
    endpoint: server.endpoint,
    region: "us-east-1",
    credentials: CREDENTIALS,
    transport,
  });
  const described: { code: string; message: string }[] = [];
  try {
    for (let i = 0; i < ANSWERS.length; i++) {
      await client.putRecords({ StreamName: "s", Records: [ENTRY] }, signal()).then(
        () => assert.fail(`answer ${i} was taken as a success`),
        (error: unknown) => described.push(describeError(error, false)),
      );
    }
  } finally {
    await client.close?.();
    await server.close();
  }
  return described;
}

test("The direct transport names each kind of error answer as the SDK transport does", async () => {
  const direct = await describedAnswers("direct");
  const sdk = await describedAnswers("sdk");
  assert.deepEqual(direct.map((d) => d.code), ANSWERS.map(([, code]) => code));
  assert.deepEqual(sdk.map((d) => d.code), ANSWERS.map(([, code]) => code));
  assert.equal(direct[0]!.message, "Stream s not found");
  assert.equal(direct[1]!.message, "Rate exceeded");
});

test("The direct transport signs with the SDK's credentials, refreshed as the SDK refreshes them", async () => {
  const server = await scriptedServer([[
    200,
    JSON_TYPE,
    '{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]}',
  ]]);
  let asked = 0;
  const client = await createDefaultKinesisClient({
    endpoint: server.endpoint,
    region: "us-east-1",
    // Credentials that expire within the SDK's refresh window: it asks again for each call.
    credentials: () => {
      asked++;
      return Promise.resolve({
        ...CREDENTIALS,
        accessKeyId: `AKID${asked}`,
        sessionToken: `token${asked}`,
        expiration: new Date(Date.now() + 1_000),
      });
    },
  });
  try {
    for (let i = 0; i < 3; i++) {
      const output = await client.putRecords({ StreamName: "s", Records: [ENTRY] }, signal());
      assert.equal(output.Records?.[0]?.SequenceNumber, "1");
      const sent = server.seen.at(-1)!;
      assert.match(String(sent.authorization), new RegExp(`Credential=AKID${asked}/`));
      assert.equal(sent["x-amz-security-token"], `token${asked}`);
    }
  } finally {
    await client.close?.();
    await server.close();
  }
  assert.ok(asked >= 3, `the provider was asked ${asked} times for 3 calls`);
  const last = server.seen.at(-1)!;
  assert.equal(last["x-amz-target"], "Kinesis_20131202.PutRecords");
  assert.equal(last["content-type"], "application/x-amz-json-1.1");
});

test("The direct transport signs and sends once more when a refused signature corrected its clock, as the SDK's retry does", async () => {
  // The server's clock is an hour ahead of the client's (12:00).
  const headers = { ...JSON_TYPE, date: "Tue, 01 Dec 2026 13:00:00 GMT" };
  const refused: Answer = [
    400,
    headers,
    '{"__type":"InvalidSignatureException","message":"Signature expired"}',
  ];
  const stored: Answer = [
    200,
    headers,
    '{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"}]}',
  ];
  // Refused, then stored; then refused again with no clock to correct.
  const server = await scriptedServer([refused, stored, refused]);
  const { client } = recordingClient(
    { region: "us-east-1", endpoint: server.endpoint },
    undefined,
    fetch,
  );
  try {
    const output = await client.putRecords({ StreamName: "s", Records: [ENTRY] }, signal());
    assert.equal(output.Records?.[0]?.SequenceNumber, "1");
    assert.deepEqual(server.seen.map((headers) => headers["x-amz-date"]), [
      "20261201T120000Z",
      "20261201T130000Z",
    ]);
    await assert.rejects(
      client.putRecords({ StreamName: "s", Records: [ENTRY] }, signal()),
      { name: "InvalidSignatureException" },
    );
    assert.equal(server.seen.length, 3);
  } finally {
    client.close();
    await server.close();
  }
});

test("Both transports sign and send once more when a refused signature corrected their clock", async () => {
  // The server's clock is an hour ahead of this machine's.
  const date = new Date(Date.now() + 3_600_000).toUTCString();
  const headers = { ...JSON_TYPE, date };
  for (const transport of ["direct", "sdk"] as const) {
    const server = await scriptedServer([
      [400, headers, '{"__type":"InvalidSignatureException","message":"Signature expired"}'],
      [200, headers, '{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"s"}]}'],
    ]);
    const client = await createDefaultKinesisClient({
      endpoint: server.endpoint,
      region: "us-east-1",
      credentials: CREDENTIALS,
      transport,
    });
    try {
      const output = await client.putRecords({ StreamName: "s", Records: [ENTRY] }, signal());
      assert.equal(output.Records?.[0]?.SequenceNumber, "1", transport);
      const [refused, sent] = server.seen.map((seen) => String(seen["x-amz-date"]));
      assert.equal(server.seen.length, 2, transport);
      assert.ok(sent! > refused!, `${transport}: ${sent} was not signed an hour later`);
    } finally {
      await client.close?.();
      await server.close();
    }
  }
});

/**
 * A loopback server that checks each request's signature as AWS does, from what arrived:
 * method, path, query, the signed headers as received (the `host` that `fetch` sent) and
 * the body, signed again by @smithy/signature-v4. Answers 200 when they agree, 403 else.
 */
async function verifyingServer() {
  const sha256 = new SdkKinesisClient({ region: "us-east-1" }).config.sha256;
  const checked: { url: string; ok: boolean }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    req.on("end", async () => {
      const authorization = String(req.headers.authorization);
      const [, region, service, names] =
        /Credential=[^/]+\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+),/.exec(
          authorization,
        )!;
      const headers: Record<string, string> = {};
      for (const name of names!.split(";")) headers[name] = String(req.headers[name]);
      const url = new URL(req.url!, "http://unused");
      const amzDate = headers["x-amz-date"]!;
      const signed = await new SignatureV4({
        credentials: CREDENTIALS,
        region: region!,
        service: service!,
        sha256,
        applyChecksum: false,
      }).sign({
        method: req.method!,
        protocol: "http:",
        hostname: headers.host!,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers,
        body: Buffer.concat(chunks),
      }, {
        signingDate: new Date(
          `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 11)}:${
            amzDate.slice(11, 13)
          }:${amzDate.slice(13)}`,
        ),
      });
      const ok = signed.headers.authorization === authorization;
      checked.push({ url: req.url!, ok });
      res.writeHead(ok ? 200 : 403, JSON_TYPE);
      res.end(
        ok ? '{"FailedRecordCount":0,"Records":[]}' : '{"__type":"InvalidSignatureException"}',
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    checked,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test("The direct transport's signature holds for what fetch sends: host and port, a path, a session token", async () => {
  const server = await verifyingServer();
  try {
    for (const path of ["", "/prefix", "/a%20b/c"]) {
      const client = await createDefaultKinesisClient({
        endpoint: `http://127.0.0.1:${server.port}${path}`,
        region: "eu-west-1",
        credentials: {
          ...CREDENTIALS,
          sessionToken: "FwoGZXIvYXdzEJr//////////wEaDEXAMPLE+token=",
        },
      });
      try {
        await client.putRecords({ StreamARN: ARN, Records: [ENTRY, ENTRY] }, signal());
        await client.listShards({ StreamName: "s", ShardFilter: { Type: "AT_LATEST" } }, signal());
      } finally {
        await client.close?.();
      }
    }
  } finally {
    await server.close();
  }
  assert.deepEqual(server.checked, [
    { url: "/", ok: true },
    { url: "/", ok: true },
    { url: "/prefix/", ok: true },
    { url: "/prefix/", ok: true },
    { url: "/a%20b/c/", ok: true },
    { url: "/a%20b/c/", ok: true },
  ]);
});

describe("The SDK transport, when selected", () => {
  const env = useEmulator(startKinesalite);

  test("carries a producer's records to kinesalite", async () => {
    await createStream(env.client, "sdk-transport", { shardCount: 2 });
    const producer = producerOn(env.emulator, { stream: "sdk-transport", transport: "sdk" });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => producer.put({ partitionKey: `k${i}`, data: `r${i}` })),
    );
    await producer.close();
    assert.equal(results.filter((result) => result.success).length, 200);
    assert.equal(new Set(results.map((result) => result.shardId)).size, 2);
  });
});
