// cli put as a user runs it: a child process of the current runtime against kinesalite, with
// every record read back from the stream.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startKinesalite, useEmulator } from "../support/emulators.ts";
import { createStream, uniqueStreamName } from "../support/kinesis_sdk.ts";
import { readStream } from "../support/readback.ts";
import { runCli } from "../support/cli_process.ts";

/** An explicit hash key in quarter `i % 4` of the hash space. */
function hashKeyFor(i: number): bigint {
  return BigInt(i % 4) * (1n << 126n) + BigInt(i);
}

function decode(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

describe("cli put against kinesalite", () => {
  const env = useEmulator(startKinesalite);
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "webkpl-cli-"));
  });

  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test("cli put sends 10,000 plain lines; every line is in the stream once", async () => {
    const stream = uniqueStreamName("cli-lines");
    await createStream(env.client, stream, { shardCount: 4 });
    const lines = Array.from({ length: 10_000 }, (_, i) => `line ${i} ${"x".repeat(i % 50)}`);
    const run = await runCli(
      ["put", "--stream", stream, "--endpoint", env.emulator.endpoint],
      lines.join("\r\n") + "\n\n",
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      /10,000 records to '.*' in [\d.]+ s: 10,000 stored, 0 failed, 0 lines rejected/,
    );
    assert.ok(!run.stderr.includes("\x1b[K"), "no progress when stderr is not a terminal");
    const contents = await readStream(env.client, stream);
    const found = contents.records.map((record) => decode(record.data));
    assert.equal(found.length, 10_000);
    assert.deepEqual(found.sort(), [...lines].sort());
    assert.equal(new Set(contents.records.map((r) => r.partitionKey)).size, 10_000, "random keys");
  });

  test("cli put --format json sends 10,000 envelopes with their keys and explicit hash keys", async () => {
    const stream = uniqueStreamName("cli-json");
    await createStream(env.client, stream, { shardCount: 4 });
    const records = Array.from({ length: 10_000 }, (_, i) => ({
      partitionKey: `user-${i % 300}`,
      data: i % 10 === 0 ? { n: i, nested: [i] } : `event-${i}`,
      ...(i % 7 === 0 ? { explicitHashKey: String(hashKeyFor(i)) } : {}),
    }));
    const run = await runCli(
      ["put", "--stream", stream, "--endpoint", env.emulator.endpoint, "--format", "json"],
      records.map((record) => JSON.stringify(record)).join("\n"),
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /10,000 stored, 0 failed/);
    const contents = await readStream(env.client, stream);
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
    await createStream(env.client, stream, { shardCount: 2 });
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
        env.emulator.endpoint,
        "--format=json",
        "--key-field=user.id",
        "--aggregation=off",
      ],
      lines.join("\n"),
    );
    assert.equal(run.code, 0, run.stderr);
    const contents = await readStream(env.client, stream);
    assert.equal(contents.kinesisRecords, 500, "one Kinesis record per line without aggregation");
    for (const record of contents.records) {
      const line = decode(record.data);
      assert.ok(lines.includes(line));
      assert.equal(record.partitionKey, String(JSON.parse(line).user.id));
    }
  });

  test("cli put rejects bad lines with their line numbers, sends the rest and exits 1", async () => {
    const stream = uniqueStreamName("cli-bad");
    await createStream(env.client, stream, { shardCount: 1 });
    const failures = join(dir, "bad.ndjson");
    const rejectedFile = join(dir, "rejected.ndjson");
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
        env.emulator.endpoint,
        "--format",
        "json",
        "--failures",
        failures,
        "--rejected",
        rejectedFile,
      ],
      input,
    );
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /2 stored, 0 failed, 4 lines rejected/);
    assert.equal(await readFile(failures, "utf8"), "", "rejected lines are not failures");
    const rejected = (await readFile(rejectedFile, "utf8")).trim().split("\n").map((line) =>
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
    const contents = await readStream(env.client, stream);
    assert.deepEqual(contents.records.map((record) => decode(record.data)).sort(), [
      "good-1",
      "good-2",
    ]);
  });

  test("cli put to a stream that does not exist exits 2 with one line naming ResourceNotFoundException", async () => {
    const stream = uniqueStreamName("cli-missing");
    const lines = Array.from({ length: 20_000 }, (_, i) => `lost ${i}`);
    const run = await runCli(
      ["put", "--stream", stream, "--endpoint", env.emulator.endpoint],
      lines.join("\n"),
    );
    assert.equal(run.code, 2, run.stderr);
    const printed = run.stderr.trim().split("\n");
    assert.equal(printed.length, 1, run.stderr.slice(0, 500));
    assert.match(printed[0]!, /^webkpl: ResourceNotFoundException: /);
  });

  test("cli put without a region exits 2 with one line naming ClientError, reading nothing", async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i}`);
    const run = await runCli(
      ["put", "--stream", "s", "--endpoint", env.emulator.endpoint],
      lines.join("\n"),
      {
        AWS_REGION: undefined,
        AWS_DEFAULT_REGION: undefined,
        AWS_CONFIG_FILE: "/nonexistent/webkpl-test-config",
      },
    );
    assert.equal(run.code, 2, run.stderr);
    const printed = run.stderr.trim().split("\n");
    assert.equal(printed.length, 1, run.stderr.slice(0, 500));
    assert.match(printed[0]!, /^webkpl: ClientError: .*[Rr]egion/);
  });
});
