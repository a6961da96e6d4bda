// cli.ts: its argument parsing, its summary, and putRecords() on a fake Kinesis; a few runs as a
// child process that need no stream. Runs against kinesalite and under signals are in
// tests/scenarios/cli_put_test.ts and tests/scenarios/cli_signals_test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
import { InMemoryKinesis } from "../testing.ts";
import { eventually, runCli } from "./support/cli_process.ts";

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

for (const flag of ["--failures", "--rejected"]) {
  test(`cli put exits 2 before reading, naming a ${flag} file it cannot create`, async () => {
    const run = await runCli(["put", "--stream", "s", flag, "/nonexistent-dir/out.ndjson"], "x\n");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^webkpl: .*nonexistent-dir\/out\.ndjson/m);
    assert.doesNotMatch(run.stderr, /records? to 's'/, "no summary: nothing was read");
  });
}

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

test("putRecords() keeps rejected lines out of the failures file, which feeds back in one command", async () => {
  const dir = await mkdtemp(join(tmpdir(), "webkpl-feed-"));
  try {
    const failuresPath = join(dir, "failed.ndjson");
    const rejectedPath = join(dir, "rejected.ndjson");
    const model = new InMemoryKinesis({ streams: { s: 1 } });
    const kinesis = model.client();
    // Records keyed bad-* are refused for good the first time round.
    model.fail({
      outcome: { code: "ValidationException", message: "refused" },
      entries: true,
      when: ({ call, entry }) => call === 0 && entry!.PartitionKey.startsWith("bad"),
    });
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
    const stored = model.records("s").filter((record) => record.partitionKey.startsWith("bad"));
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
