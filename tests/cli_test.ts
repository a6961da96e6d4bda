// The command line, run as a child process of the current runtime against kinesalite, with
// every record read back from the stream.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatSummary, HELP, parseArguments, UsageError } from "../cli.ts";
import { type Emulator, startKinesalite } from "./support/emulators.ts";
import { createStream, createTestClient, uniqueStreamName } from "./support/kinesis_sdk.ts";
import { readStream } from "./support/readback.ts";
import { runScript, type ScriptRun } from "./support/runtime.ts";

const CLI = fileURLToPath(new URL("../cli.ts", import.meta.url));
const CHILD_BOUND_MS = 90_000;

/** Runs the CLI in a child of this runtime with `input` on its standard input. */
function runCli(args: string[], input = ""): Promise<ScriptRun> {
  return runScript(CLI, args, {
    input,
    env: {
      AWS_ACCESS_KEY_ID: "AKIDTEST",
      AWS_SECRET_ACCESS_KEY: "test-secret",
      AWS_REGION: "us-east-1",
      NO_COLOR: "1",
    },
    boundMs: CHILD_BOUND_MS,
  });
}

/** An explicit hash key in quarter `i % 4` of the hash space. */
function hashKeyFor(i: number): bigint {
  return BigInt(i % 4) * (1n << 126n) + BigInt(i);
}

function decode(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

test("parseArguments() maps flags onto producer options", () => {
  const command = parseArguments([
    "put",
    "--stream",
    "events",
    "--region=eu-west-1",
    "--endpoint",
    "http://127.0.0.1:4567",
    "--aggregation",
    "off",
    "--max-outstanding-records",
    "500",
    "--rate-limit=80",
    "--fail-if-throttled",
    "--format",
    "json",
    "--key-field",
    "user.id",
    "--failures",
    "failed.ndjson",
    "--progress",
    "never",
  ]);
  assert.deepEqual(command, {
    name: "put",
    put: {
      stream: "events",
      format: "json",
      keyField: "user.id",
      randomKey: false,
      failuresPath: "failed.ndjson",
      progress: "never",
      closeTimeoutMs: 30_000,
      producer: {
        stream: "events",
        region: "eu-west-1",
        endpoint: "http://127.0.0.1:4567",
        aggregationEnabled: false,
        maxOutstandingRecords: 500,
        rateLimit: 80,
        failIfThrottled: true,
      },
    },
  });
  assert.deepEqual(parseArguments([]), { name: "help" });
  assert.deepEqual(parseArguments(["put", "--stream", "s", "-h"]), { name: "help" });
});

test("parseArguments() names the flag in every usage error", () => {
  const cases: [string[], string][] = [
    [["put"], "Option '--stream' is required"],
    [["send"], "Unknown command 'send': the only command is 'put'"],
    [["put", "--stream", "s", "--shards", "4"], "Unknown option '--shards'"],
    [["put", "--stream"], "Option '--stream' needs a value"],
    [
      ["put", "--stream", "s", "--rate-limit", "fast"],
      "Option '--rate-limit' must be a number: got 'fast'",
    ],
    [
      ["put", "--stream", "s", "--max-outstanding-records", "0"],
      "Option '--max-outstanding-records' must be an integer of at least 1: got 0",
    ],
    [
      ["put", "--stream", "no spaces"],
      "Option '--stream' must be a stream name of 1 to 128 letters, digits, '_', '.' or '-': got 'no spaces'",
    ],
    [
      ["put", "--stream", "s", "--endpoint", "not a url"],
      "Option '--endpoint' must be a URL: got 'not a url'",
    ],
    [
      ["put", "--stream", "s", "--aggregation", "maybe"],
      "Option '--aggregation' must be one of on, off: got 'maybe'",
    ],
    [["put", "--stream", "s", "--key-field", "id"], "Option '--key-field' needs '--format json'"],
    [["put", "--stream", "s", "--random-key=yes"], "Option '--random-key' takes no value"],
    [
      ["put", "--stream", "s", "--close-timeout-ms", "-1"],
      "Option '--close-timeout-ms' must be a number of at least 0: got -1",
    ],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseArguments(args), (error) => {
      assert.ok(error instanceof UsageError, `${args.join(" ")}: ${error}`);
      assert.equal(error.message, message);
      return true;
    });
  }
});

test("formatSummary() reports counts, rate and failures by code", () => {
  const text = formatSummary({
    stream: "events",
    records: 10_000,
    succeeded: 9_998,
    failed: 2,
    rejected: 1,
    retries: 7,
    errorCodes: { ResourceNotFoundException: 2 },
    elapsedMs: 2000,
    error: undefined,
  });
  assert.equal(
    text,
    "webkpl put: 10,000 records to 'events' in 2.00 s: 9,998 stored, 2 failed, 1 lines rejected, 7 retries (4,999 records/s)\n" +
      "  failures by code: ResourceNotFoundException: 2\n",
  );
});

test("cli --help prints the usage on stdout and exits 0", async () => {
  const run = await runCli(["--help"]);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, HELP);
  for (const flag of ["--stream", "--format", "--key-field", "--failures", "--aggregation"]) {
    assert.ok(run.stdout.includes(flag), flag);
  }
});

test("cli put with a bad flag exits 2 and names the flag on stderr", async () => {
  const run = await runCli(["put", "--stream", "s", "--max-in-flight-requests", "1000"]);
  assert.equal(run.code, 2);
  assert.equal(run.stdout, "");
  assert.match(
    run.stderr,
    /Option '--max-in-flight-requests' must be an integer between 1 and 256: got 1000/,
  );
});

test("cli put exits 1 naming a failures file it cannot create", async () => {
  const run = await runCli(
    ["put", "--stream", "s", "--failures", "/nonexistent-dir/failures.ndjson"],
    "x\n",
  );
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^webkpl: .*nonexistent-dir\/failures\.ndjson/m);
});

describe("cli put against kinesalite", () => {
  let emulator: Emulator;
  let client: ReturnType<typeof createTestClient>;
  let dir: string;

  before(async () => {
    emulator = await startKinesalite();
    client = createTestClient(emulator.endpoint);
    dir = await mkdtemp(join(tmpdir(), "webkpl-cli-"));
  });

  after(async () => {
    client?.destroy();
    await emulator?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test("cli put sends 10,000 plain lines; every line is in the stream once", async () => {
    const stream = uniqueStreamName("cli-lines");
    await createStream(client, stream, { shardCount: 4 });
    const lines = Array.from({ length: 10_000 }, (_, i) => `line ${i} ${"x".repeat(i % 50)}`);
    const run = await runCli(
      ["put", "--stream", stream, "--endpoint", emulator.endpoint],
      lines.join("\r\n") + "\n\n",
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      /10,000 records to '.*' in [\d.]+ s: 10,000 stored, 0 failed, 0 lines rejected/,
    );
    assert.ok(!run.stderr.includes("\x1b[K"), "no progress when stderr is not a terminal");
    const contents = await readStream(client, stream);
    const found = contents.records.map((record) => decode(record.data));
    assert.equal(found.length, 10_000);
    assert.deepEqual(found.sort(), [...lines].sort());
    assert.equal(new Set(contents.records.map((r) => r.partitionKey)).size, 10_000, "random keys");
  });

  test("cli put --format json sends 10,000 envelopes with their keys and explicit hash keys", async () => {
    const stream = uniqueStreamName("cli-json");
    await createStream(client, stream, { shardCount: 4 });
    const records = Array.from({ length: 10_000 }, (_, i) => ({
      partitionKey: `user-${i % 300}`,
      data: i % 10 === 0 ? { n: i, nested: [i] } : `event-${i}`,
      ...(i % 7 === 0 ? { explicitHashKey: String(hashKeyFor(i)) } : {}),
    }));
    const run = await runCli(
      ["put", "--stream", stream, "--endpoint", emulator.endpoint, "--format", "json"],
      records.map((record) => JSON.stringify(record)).join("\n"),
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /10,000 stored, 0 failed/);
    const contents = await readStream(client, stream);
    assert.equal(contents.records.length, 10_000);
    const expected = records.map((record) =>
      [
        record.partitionKey,
        typeof record.data === "string" ? record.data : JSON.stringify(record.data),
      ].join(" ")
    ).sort();
    const found = contents.records.map((record) => `${record.partitionKey} ${decode(record.data)}`)
      .sort();
    assert.deepEqual(found, expected);
    // Records with an explicit hash key land on the shard whose range holds that key,
    // whatever their partition key hashes to.
    const ranges = new Map(
      contents.shards.map((shard) => [shard.ShardId, [
        BigInt(shard.HashKeyRange!.StartingHashKey!),
        BigInt(shard.HashKeyRange!.EndingHashKey!),
      ]]),
    );
    let routed = 0;
    for (const record of contents.records) {
      const i = Number(/(\d+)/.exec(decode(record.data))?.[1] ?? "-1");
      if (i % 7 !== 0) continue;
      const [start, end] = ranges.get(record.shardId)!;
      const hash = hashKeyFor(i);
      assert.ok(start! <= hash && hash <= end!, `record ${i} is on ${record.shardId}`);
      routed++;
    }
    assert.equal(routed, Math.ceil(10_000 / 7));
  });

  test("cli put --key-field sends each line unchanged, keyed by the field", async () => {
    const stream = uniqueStreamName("cli-key");
    await createStream(client, stream, { shardCount: 2 });
    const lines = Array.from(
      { length: 500 },
      (_, i) => JSON.stringify({ user: { id: i % 20 }, seq: i }),
    );
    const run = await runCli(
      [
        "put",
        "--stream",
        stream,
        "--endpoint",
        emulator.endpoint,
        "--format=json",
        "--key-field=user.id",
        "--aggregation=off",
      ],
      lines.join("\n"),
    );
    assert.equal(run.code, 0, run.stderr);
    const contents = await readStream(client, stream);
    assert.equal(contents.kinesisRecords, 500, "one Kinesis record per line without aggregation");
    for (const record of contents.records) {
      const line = decode(record.data);
      assert.ok(lines.includes(line));
      assert.equal(record.partitionKey, String(JSON.parse(line).user.id));
    }
  });

  test("cli put rejects bad lines with their line numbers, sends the rest and exits 1", async () => {
    const stream = uniqueStreamName("cli-bad");
    await createStream(client, stream, { shardCount: 1 });
    const failures = join(dir, "bad.ndjson");
    const input = [
      JSON.stringify({ partitionKey: "a", data: "good-1" }),
      "{not json",
      JSON.stringify({ partitionKey: "", data: "empty key" }),
      JSON.stringify({ partitionKey: "b", data: "x", explicitHashKey: "007" }),
      JSON.stringify({ data: "no key" }),
      JSON.stringify({ partitionKey: "c", data: "good-2" }),
    ].join("\n");
    const run = await runCli(
      [
        "put",
        "--stream",
        stream,
        "--endpoint",
        emulator.endpoint,
        "--format",
        "json",
        "--failures",
        failures,
      ],
      input,
    );
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /2 stored, 0 failed, 4 lines rejected/);
    const rejected = (await readFile(failures, "utf8")).trim().split("\n").map((line) =>
      JSON.parse(line)
    );
    assert.deepEqual(rejected.map((entry) => [entry.line, entry.errorCode]), [
      [2, "InvalidInput"],
      [3, "InvalidInput"],
      [4, "InvalidInput"],
      [5, "InvalidInput"],
    ]);
    assert.match(rejected[1].errorMessage, /Partition key must not be empty/);
    assert.match(rejected[2].errorMessage, /canonical decimal/);
    assert.match(rejected[3].errorMessage, /no 'partitionKey' field/);
    const contents = await readStream(client, stream);
    assert.deepEqual(contents.records.map((record) => decode(record.data)).sort(), [
      "good-1",
      "good-2",
    ]);
  });

  test("cli put to a stream that does not exist exits 1 with JSON lines naming ResourceNotFoundException", async () => {
    const stream = uniqueStreamName("cli-missing");
    const lines = Array.from({ length: 20 }, (_, i) => `lost ${i}`);
    const run = await runCli(
      ["put", "--stream", stream, "--endpoint", emulator.endpoint],
      lines.join("\n"),
    );
    assert.equal(run.code, 1);
    assert.match(run.stderr, /0 stored, 20 failed/);
    assert.match(run.stderr, /failures by code: ResourceNotFoundException: 20/);
    const failures = run.stderr.split("\n").filter((line) => line.startsWith("{")).map((line) =>
      JSON.parse(line)
    );
    assert.equal(failures.length, 20);
    assert.ok(failures.every((failure) => failure.errorCode === "ResourceNotFoundException"));
    assert.deepEqual(failures.map((failure) => failure.data).sort(), [...lines].sort());
    assert.ok(failures.every((failure) => typeof failure.partitionKey === "string"));

    const file = join(dir, "missing.ndjson");
    const again = await runCli(
      ["put", "--stream", stream, "--endpoint", emulator.endpoint, "--failures", file],
      lines.join("\n"),
    );
    assert.equal(again.code, 1);
    assert.doesNotMatch(again.stderr, /^\{/m, "failures went to the file, not stderr");
    const written = (await readFile(file, "utf8")).trim().split("\n").map((line) =>
      JSON.parse(line)
    );
    assert.equal(written.length, 20);
    assert.ok(written.every((failure) => failure.errorCode === "ResourceNotFoundException"));
  });
});
