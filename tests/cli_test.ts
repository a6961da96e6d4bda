// The command line, run as a child process of the current runtime against kinesalite, with
// every record read back from the stream.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Socket } from "node:net";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  formatSummary,
  HELP,
  parseArguments,
  type PutCommand,
  putRecords,
  UsageError,
} from "../cli.ts";
import type { PutRecordsInput } from "../src/kinesis_client.ts";
import { FakeKinesis } from "./support/fake_kinesis.ts";
import { type Emulator, startKinesalite } from "./support/emulators.ts";
import { createStream, createTestClient, uniqueStreamName } from "./support/kinesis_sdk.ts";
import { readStream } from "./support/readback.ts";
import { scriptArgs } from "./support/runtime.ts";

const CLI = fileURLToPath(new URL("../cli.ts", import.meta.url));
const CHILD_BOUND_MS = 90_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI running in a child of this runtime, its standard input still open. */
interface RunningCli {
  readonly pid: number;
  /** Standard error so far. */
  stderr(): string;
  /** Writes to standard input; `end` closes it. */
  write(text: string, end?: boolean): void;
  /** Resolves when the child has exited. */
  readonly done: Promise<Run>;
}

function startCli(args: string[], env: Record<string, string | undefined> = {}): RunningCli {
  const childEnv: Record<string, string | undefined> = {
    ...process.env,
    AWS_ACCESS_KEY_ID: "AKIDTEST",
    AWS_SECRET_ACCESS_KEY: "test-secret",
    AWS_REGION: "us-east-1",
    NO_COLOR: "1",
    ...env,
  };
  for (const [key, value] of Object.entries(childEnv)) {
    if (value === undefined) delete childEnv[key];
  }
  const child = spawn(process.execPath, scriptArgs(CLI, args), {
    stdio: ["pipe", "pipe", "pipe"],
    env: childEnv as Record<string, string>,
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.on("data", (chunk: string) => (stderr += chunk));
  child.stdin!.on("error", () => {});
  const done = new Promise<Run>((resolve) => {
    // A bound, not a measurement: a CLI that never ends is killed and reported.
    const timer = setTimeout(() => process.kill(child.pid!, "SIGKILL"), CHILD_BOUND_MS);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === null ? null : -1), stdout, stderr });
    });
  });
  return {
    pid: child.pid!,
    stderr: () => stderr,
    write: (text, end = false) => {
      if (end) child.stdin!.end(text);
      else child.stdin!.write(text);
    },
    done,
  };
}

/** Runs the CLI in a child of this runtime with `input` on its standard input. */
function runCli(
  args: string[],
  input = "",
  env: Record<string, string | undefined> = {},
): Promise<Run> {
  const running = startCli(args, env);
  running.write(input, true);
  return running.done;
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
      rejectedPath: undefined,
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
      "Option '--stream' must be a stream name (1 to 128 letters, digits, '_', '.' or '-') or a stream ARN (arn:<partition>:kinesis:<region>:<12-digit account>:stream/<name>): got 'no spaces'",
    ],
    [
      ["put", "--stream", "s", "--endpoint", "not a url"],
      "Option '--endpoint' must be an http:// or https:// URL: got 'not a url'",
    ],
    [
      ["put", "--stream", "s", "--endpoint", "localhost:4567"],
      "Option '--endpoint' must be an http:// or https:// URL: got 'localhost:4567'",
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
    "webkpl put: 10,000 records to 'events' in 2.00 s: 9,998 stored, 2 failed, 1 line rejected, 7 retries (4,999 records/s)\n" +
      "  failures by code: ResourceNotFoundException: 2\n",
  );
});

test("formatSummary() says '1 record', '1 line' and '1 retry' in the singular", () => {
  const text = formatSummary({
    stream: "events",
    records: 1,
    succeeded: 1,
    failed: 0,
    rejected: 1,
    retries: 1,
    errorCodes: {},
    elapsedMs: 1000,
    error: undefined,
  });
  assert.match(
    text,
    /: 1 record to 'events' in 1\.00 s: 1 stored, 0 failed, 1 line rejected, 1 retry \(/,
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
        emulator.endpoint,
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
    const contents = await readStream(client, stream);
    assert.deepEqual(contents.records.map((record) => decode(record.data)).sort(), [
      "good-1",
      "good-2",
    ]);
  });

  test("cli put to a stream that does not exist exits 2 with one line naming ResourceNotFoundException", async () => {
    const stream = uniqueStreamName("cli-missing");
    const lines = Array.from({ length: 20_000 }, (_, i) => `lost ${i}`);
    const run = await runCli(
      ["put", "--stream", stream, "--endpoint", emulator.endpoint],
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
      ["put", "--stream", "s", "--endpoint", emulator.endpoint],
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

// ---------------------------------------------------------------------------
// putRecords() in process, on an in-process Kinesis: what the CLI prints and writes.

/** A parsed `put` command with the given extra flags. */
function putCommand(...flags: string[]): PutCommand {
  const command = parseArguments(["put", "--stream", "s", "--progress", "never", ...flags]);
  assert.equal(command.name, "put");
  return (command as { put: PutCommand }).put;
}

function textInput(text: string): ReadableStream<Uint8Array> {
  return ReadableStream.from([text]).pipeThrough(new TextEncoderStream());
}

/** Waits for `check`, polling; a bound, not a measurement. */
async function eventually(check: () => boolean, what: string, bound = 10_000): Promise<void> {
  for (let waited = 0; !check(); waited += 20) {
    assert.ok(waited < bound, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("putRecords() keeps rejected lines out of the failures file, which feeds back in one command", async () => {
  const dir = await mkdtemp(join(tmpdir(), "webkpl-feed-"));
  try {
    const failuresPath = join(dir, "failed.ndjson");
    const rejectedPath = join(dir, "rejected.ndjson");
    const kinesis = new FakeKinesis({ s: 1 });
    // Records keyed bad-* are refused for good the first time round.
    kinesis.putHook = (input: PutRecordsInput, call: number) => {
      if (call > 0) return undefined;
      const refused = (i: number) => input.Records[i]!.PartitionKey.startsWith("bad");
      const output = kinesis.store(input, (i) => !refused(i));
      output.Records = output.Records!.map((entry, i) =>
        refused(i) ? { ErrorCode: "ValidationException", ErrorMessage: "refused" } : entry
      );
      return output;
    };
    const input = [
      JSON.stringify({ partitionKey: "good-1", data: "g1" }),
      "{not json",
      JSON.stringify({ partitionKey: "bad-1", data: "b1", explicitHashKey: "12" }),
      JSON.stringify({ data: "no key" }),
      JSON.stringify({ partitionKey: "bad-2", data: { nested: true } }),
    ].join("\n");
    const first = await putRecords(
      textInput(input),
      {
        ...putCommand("--format", "json", "--aggregation", "off"),
        failuresPath,
        rejectedPath,
      },
      { stderr: () => {}, producer: { kinesisClient: kinesis } },
    );
    assert.equal(first.failed, 2);
    assert.equal(first.rejected, 2);
    const failed = (await readFile(failuresPath, "utf8")).trim().split("\n");
    assert.equal(failed.length, 2, "only failed records in the failures file");
    const rejected = (await readFile(rejectedPath, "utf8")).trim().split("\n");
    assert.deepEqual(rejected.map((line) => JSON.parse(line).line), [2, 4]);

    // The retry: the failures file as it is, with --format json.
    const retryFailures = join(dir, "failed-again.ndjson");
    const again = await putRecords(
      textInput(await readFile(failuresPath, "utf8")),
      { ...putCommand("--format", "json", "--aggregation", "off"), failuresPath: retryFailures },
      { stderr: () => {}, producer: { kinesisClient: kinesis } },
    );
    assert.equal(again.rejected, 0, "no line of the failures file is rejected");
    assert.equal(again.succeeded, 2);
    const stored = kinesis.stored.filter((record) => record.partitionKey.startsWith("bad"));
    assert.deepEqual(
      stored.map((record) => [record.partitionKey, new TextDecoder().decode(record.data)]).sort(),
      [["bad-1", "b1"], ["bad-2", '{"nested":true}']],
    );
    assert.equal(stored.find((record) => record.partitionKey === "bad-1")!.explicitHashKey, "12");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("putRecords() rejects a line as soon as it outgrows the record size, without waiting for its end", async () => {
  const kinesis = new FakeKinesis({ s: 1 });
  let stderr = "";
  const chunk = new TextEncoder().encode("x".repeat(65_536));
  const maxRecordSize = 1024 * 1024;
  let sent = 0;
  let rejectedAt: number | undefined;
  // An endless line: the source stops only once the rejection is out (or at a bound).
  const input = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (rejectedAt === undefined && stderr.includes('"errorCode":"InvalidInput"')) {
        rejectedAt = sent;
      }
      if (rejectedAt !== undefined || sent > 4 * maxRecordSize) {
        controller.enqueue(new TextEncoder().encode("\nafter\n"));
        controller.close();
        return;
      }
      controller.enqueue(chunk);
      sent += chunk.length;
    },
  }, { highWaterMark: 0 });
  const summary = await putRecords(input, putCommand(), {
    stderr: (text) => (stderr += text),
    producer: { kinesisClient: kinesis, maxRecordSize },
  });
  assert.ok(rejectedAt !== undefined, "the line was rejected before its end");
  assert.ok(rejectedAt <= maxRecordSize + 2 * chunk.length, `rejected after ${rejectedAt} bytes`);
  assert.equal(summary.rejected, 1);
  assert.equal(summary.succeeded, 1, "the next line still goes out");
  assert.match(stderr, /"line":1,.*longer than 1048576 characters/);
});

test("putRecords() says at once when the endpoint does not answer, outside a terminal", async () => {
  const down = () => Promise.reject(new TypeError("fetch failed"));
  const writes: string[] = [];
  const summary = await putRecords(textInput("a\n"), putCommand("--record-ttl-ms", "300"), {
    stderr: (text) => void writes.push(text),
    producer: { kinesisClient: { listShards: down, putRecords: down } },
  });
  assert.equal(summary.failed, 1);
  assert.match(writes[0]!, /^webkpl: NetworkError: fetch failed; records will be retried/);
  assert.ok(!writes.join("").includes("\x1b[K"), "no progress line outside a terminal");
});

test("putRecords() progress: warnings on their own line, retries counted while records are in flight", async () => {
  const writes: string[] = [];
  let lists = 0;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let puts = 0;
  const kinesis = new FakeKinesis({ s: 1 });
  const client = {
    // The start-up check and the first listing fail; the map heals on its retry.
    listShards: (
      input: Parameters<FakeKinesis["listShards"]>[0],
      options: { signal: AbortSignal },
    ) =>
      ++lists <= 2
        ? Promise.reject(new TypeError("fetch failed"))
        : kinesis.listShards(input, options),
    putRecords: async (input: PutRecordsInput, options: { signal: AbortSignal }) => {
      if (puts++ === 0) {
        return {
          FailedRecordCount: input.Records.length,
          Records: input.Records.map(() => ({
            ErrorCode: "ProvisionedThroughputExceededException",
            ErrorMessage: "slow down",
          })),
        };
      }
      await released;
      return kinesis.putRecords(input, options);
    },
  };
  const progressShown = () => writes.some((text) => text.includes("outstanding"));
  let fed = false;
  const input = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (fed) {
        await eventually(() => puts >= 2, "the retry to be in flight");
        await eventually(
          () => writes.some((text) => /retries [1-9]/.test(text)),
          "the progress line to count the retry",
        );
        release();
        controller.close();
        return;
      }
      // The first record only once progress is on screen, so the warning it causes must
      // clear the line first.
      await eventually(progressShown, "a progress line");
      fed = true;
      controller.enqueue(new TextEncoder().encode("a\n"));
    },
  }, { highWaterMark: 0 });
  const summary = await putRecords(input, putCommand("--progress", "always"), {
    stderr: (text) => void writes.push(text),
    producer: { kinesisClient: client },
  });
  assert.equal(summary.succeeded, 1);
  assert.equal(summary.retries, 1);
  const warning = writes.findIndex((text) => text.includes("Listing the shards"));
  assert.ok(warning > 0, "the producer's warning went to the CLI's output");
  assert.match(writes[warning]!, /^webkpl: Listing the shards of 's' failed .*\n$/);
  const before = writes.slice(0, warning).filter((text) => text.startsWith("\r"));
  assert.equal(before.at(-1), "\r\x1b[K", "the progress line was cleared before the warning");
});

// ---------------------------------------------------------------------------
// Signals: a child CLI against an endpoint that accepts connections and never answers,
// so records stay in flight.

describe("cli put stopped by a signal", () => {
  let endpoint: string;
  let dir: string;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    dir = await mkdtemp(join(tmpdir(), "webkpl-signal-"));
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  function start(failures: string, closeTimeoutMs: number): RunningCli {
    return startCli([
      "put",
      "--stream",
      "s",
      "--endpoint",
      endpoint,
      // The start-up check waits this long for the silent endpoint, then warns.
      "--request-timeout-ms",
      "1000",
      "--max-outstanding-records",
      "4",
      "--progress",
      "always",
      "--failures",
      failures,
      "--close-timeout-ms",
      String(closeTimeoutMs),
    ]);
  }

  test("SIGINT: stops reading, closes within the timeout, writes every unsettled record to failures, prints the summary, exits 130", async () => {
    const failures = join(dir, "interrupted.ndjson");
    const cli = start(failures, 200);
    const lines = Array.from({ length: 10 }, (_, i) => `line ${i}`);
    cli.write(lines.join("\n") + "\n");
    // Four records are admitted (in flight, never answered); the others wait for room.
    await eventually(() => /outstanding 4/.test(cli.stderr()), "four records in flight", 60_000);
    process.kill(cli.pid, "SIGINT");
    const run = await cli.done;
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /SIGINT: stopped reading/);
    assert.match(run.stderr, /webkpl put: 10 records to 's' in .*: 0 stored, 10 failed/);
    assert.match(run.stderr, /stopped early: stopped by SIGINT/);
    const written = (await readFile(failures, "utf8")).trim().split("\n").map((line) =>
      JSON.parse(line)
    );
    assert.deepEqual(written.map((entry) => entry.data).sort(), [...lines].sort());
    assert.ok(written.every((entry) => entry.errorCode === "ProducerClosed"));
  });

  test("SIGTERM twice: the second exits at once, without waiting for the close timeout", async () => {
    const failures = join(dir, "terminated.ndjson");
    const cli = start(failures, 600_000);
    cli.write("a\nb\n");
    await eventually(() => /outstanding 2/.test(cli.stderr()), "two records in flight", 60_000);
    process.kill(cli.pid, "SIGTERM");
    await eventually(() => /SIGTERM: stopped reading/.test(cli.stderr()), "the first stop");
    process.kill(cli.pid, "SIGTERM");
    const run = await cli.done;
    assert.equal(run.code, 143, run.stderr);
    assert.match(run.stderr, /SIGTERM again: exiting at once/);
  });
});
