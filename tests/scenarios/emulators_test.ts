// What the emulators and the SDK really do, checked against both emulators. The producer is
// written from these facts (wire protocol, ListShards filter and paging, resharding, where
// PutRecords puts a record), so each one is a test that fails when a new version changes it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import {
  type KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
  type PutRecordsRequestEntry,
  type Shard,
} from "@aws-sdk/client-kinesis";
import { type Emulator, startKinesalite, startKinesisLocal } from "../support/emulators.ts";
import {
  createStream,
  createTestClient,
  hashRange,
  isOpen,
  listAllShards,
  mergeShards,
  openShardFor,
  partitionKeyHash,
  recordHashKey,
  splitShard,
  uniqueStreamName,
} from "../support/kinesis_sdk.ts";
import {
  deaggregate,
  type FoundRecord,
  type PutResult,
  readStream,
  reconcile,
} from "../support/readback.ts";

const MAX_HASH = 2n ** 128n - 1n;
const require = createRequire(import.meta.url);
const agg = require("aws-kinesis-agg") as {
  RecordAggregator: new () => {
    addUserRecord(record: { partitionKey: string; explicitHashKey?: string; data: Buffer }): void;
    build(): { partitionKey: string; data: Buffer; ExplicitHashKey?: string };
  };
};

interface EmulatorFacts {
  /** ListShards with ShardFilter {Type: AT_LATEST} leaves closed shards out. */
  atLatestOmitsClosed: boolean;
  /** ListShards honours MaxResults and returns a NextToken for the rest. */
  pagesWithNextToken: boolean;
}

const emulators: Array<{
  name: string;
  start: () => Promise<Emulator>;
  facts: EmulatorFacts;
}> = [
  {
    name: "kinesalite",
    start: () => startKinesalite(),
    facts: { atLatestOmitsClosed: false, pagesWithNextToken: false },
  },
  {
    name: "kinesis-local",
    start: () => startKinesisLocal(),
    facts: { atLatestOmitsClosed: true, pagesWithNextToken: true },
  },
];

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

async function putRecords(
  client: KinesisClient,
  stream: string,
  entries: PutRecordsRequestEntry[],
): Promise<Array<{ ShardId: string; SequenceNumber: string }>> {
  const output = await client.send(new PutRecordsCommand({ StreamName: stream, Records: entries }));
  assert.equal(output.FailedRecordCount ?? 0, 0);
  const results = output.Records ?? [];
  assert.equal(results.length, entries.length);
  return results.map((result) => {
    assert.ok(result.ShardId !== undefined && result.SequenceNumber !== undefined);
    return { ShardId: result.ShardId, SequenceNumber: result.SequenceNumber };
  });
}

/** Whether a process runs; an exited orphan stays a zombie until init reaps it. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true;
  }
}

function ids(shards: readonly Shard[]): string[] {
  return shards.map((shard) => shard.ShardId ?? "").sort();
}

for (const { name, start, facts } of emulators) {
  describe(name, () => {
    let emulator: Emulator | undefined;
    let client: KinesisClient;

    before(async () => {
      emulator = await start();
      client = createTestClient(emulator.endpoint, { maxAttempts: 1 });
    });

    after(async () => {
      client?.destroy();
      await emulator?.stop();
    });

    test(`${name} listens on 127.0.0.1 only, not on the rest of the loopback range`, async () => {
      assert.ok(emulator !== undefined);
      const port = Number(new URL(emulator.endpoint).port);
      // Linux routes all of 127/8 to lo: a wildcard listener would accept on 127.0.0.2.
      const reached = await new Promise<boolean>((resolve) => {
        const socket = connect({ host: "127.0.0.2", port });
        socket.once("connect", () => {
          socket.destroy();
          resolve(true);
        });
        socket.once("error", () => resolve(false));
      });
      assert.equal(reached, false);
    });

    test(`${name} SplitShard closes the parent and opens two children that split its range`, async () => {
      const stream = uniqueStreamName("split");
      await createStream(client, stream, { shardCount: 2 });
      const [parent] = await listAllShards(client, stream);
      assert.ok(parent?.ShardId !== undefined);
      const [start, end] = hashRange(parent);
      const middle = await splitShard(client, stream, { shardId: parent.ShardId });

      const shards = await listAllShards(client, stream);
      assert.equal(shards.length, 4);
      const closed = shards.filter((shard) => !isOpen(shard));
      assert.deepEqual(ids(closed), [parent.ShardId]);
      const children = shards.filter((shard) => shard.ParentShardId === parent.ShardId);
      assert.equal(children.length, 2);
      assert.ok(children.every(isOpen));
      const ranges = children.map(hashRange).sort((a, b) => (a[0] < b[0] ? -1 : 1));
      assert.deepEqual(ranges, [[start, middle - 1n], [middle, end]]);
    });

    test(`${name} MergeShards closes both parents and opens one child over their joint range`, async () => {
      const stream = uniqueStreamName("merge");
      await createStream(client, stream, { shardCount: 3 });
      const [first, second] = await listAllShards(client, stream);
      assert.ok(first?.ShardId !== undefined && second?.ShardId !== undefined);
      await mergeShards(client, stream, {
        shardId: first.ShardId,
        adjacentShardId: second.ShardId,
      });

      const shards = await listAllShards(client, stream);
      assert.deepEqual(ids(shards.filter((shard) => !isOpen(shard))), [
        first.ShardId,
        second.ShardId,
      ]);
      const child = shards.find((shard) => shard.ParentShardId === first.ShardId);
      assert.ok(child !== undefined && isOpen(child));
      assert.equal(child.AdjacentParentShardId, second.ShardId);
      assert.deepEqual(hashRange(child), [hashRange(first)[0], hashRange(second)[1]]);
    });

    test(
      facts.atLatestOmitsClosed
        ? `${name} ListShards with ShardFilter AT_LATEST lists only the open shards`
        : `${name} ListShards ignores ShardFilter AT_LATEST and lists closed shards too`,
      async () => {
        const stream = uniqueStreamName("latest");
        await createStream(client, stream, { shardCount: 2 });
        await splitShard(client, stream, { shardId: "shardId-000000000000" });
        const all = await listAllShards(client, stream);
        const latest = await listAllShards(client, stream, { filter: { Type: "AT_LATEST" } });
        assert.equal(all.length, 4);
        const open = all.filter(isOpen);
        assert.equal(open.length, 3);
        assert.deepEqual(ids(latest), ids(facts.atLatestOmitsClosed ? open : all));
      },
    );

    test(
      facts.pagesWithNextToken
        ? `${name} ListShards pages by MaxResults and NextToken`
        : `${name} ListShards ignores MaxResults and never returns a NextToken`,
      async () => {
        const stream = uniqueStreamName("pages");
        await createStream(client, stream, { shardCount: 5 });
        const first = await client.send(
          new ListShardsCommand({ StreamName: stream, MaxResults: 2 }),
        );
        if (facts.pagesWithNextToken) {
          assert.equal(first.Shards?.length, 2);
          assert.ok(first.NextToken !== undefined);
        } else {
          assert.equal(first.Shards?.length, 5);
          assert.equal(first.NextToken, undefined);
        }
        const paged = await listAllShards(client, stream, { pageSize: 2 });
        assert.deepEqual(ids(paged), ids(await listAllShards(client, stream)));
        assert.equal(new Set(ids(paged)).size, 5);
      },
    );

    test(`${name} PutRecords puts a record with ExplicitHashKey on the open shard that holds the key`, async () => {
      const stream = uniqueStreamName("ehk");
      await createStream(client, stream, { shardCount: 4 });
      await splitShard(client, stream, { shardId: "shardId-000000000001" });
      const shards = await listAllShards(client, stream);
      // Both ends of every range, closed parents' included, plus the extremes of the space.
      const keys = new Set<bigint>([0n, MAX_HASH]);
      for (const shard of shards) for (const key of hashRange(shard)) keys.add(key);
      const entries = [...keys].map((key, index) => ({
        PartitionKey: `pk-${index}`,
        ExplicitHashKey: key.toString(),
        Data: bytes(`ehk-${index}`),
      }));
      const results = await putRecords(client, stream, entries);
      results.forEach((result, index) => {
        const expected = openShardFor(shards, BigInt(entries[index]?.ExplicitHashKey ?? ""));
        assert.equal(
          result.ShardId,
          expected?.ShardId,
          `hash key ${entries[index]?.ExplicitHashKey}`,
        );
      });
    });

    test(`${name} PutRecords puts a record without ExplicitHashKey on the open shard that holds MD5(partition key)`, async () => {
      const stream = uniqueStreamName("md5");
      await createStream(client, stream, { shardCount: 5 });
      await mergeShards(client, stream, {
        shardId: "shardId-000000000002",
        adjacentShardId: "shardId-000000000003",
      });
      const shards = await listAllShards(client, stream);
      const entries = Array.from({ length: 300 }, (_, index) => ({
        PartitionKey: `user-${index}-ü`,
        Data: bytes(`md5-${index}`),
      }));
      const results = await putRecords(client, stream, entries);
      const landed = new Set<string>();
      results.forEach((result, index) => {
        const key = entries[index]?.PartitionKey ?? "";
        assert.equal(result.ShardId, openShardFor(shards, partitionKeyHash(key))?.ShardId, key);
        landed.add(result.ShardId);
      });
      assert.equal(landed.size, shards.filter(isOpen).length);
    });

    test(`${name} readStream() finds every record on closed and open shards, aggregated ones deaggregated by aws-kinesis-agg`, async () => {
      const stream = uniqueStreamName("readback");
      await createStream(client, stream, { shardCount: 2 });
      const expected: PutResult[] = [];
      let next = 0;
      async function putBatch(): Promise<void> {
        const raw = Array.from({ length: 20 }, () => {
          const index = next++;
          return { partitionKey: `raw-${index}`, data: bytes(`raw-payload-${index}`) };
        });
        const groups = Array.from(
          { length: 3 },
          (_, group) =>
            Array.from({ length: 4 }, (_, member) => {
              const index = next++;
              return {
                partitionKey: `agg-${group}-${member % 2}`,
                data: bytes(`agg-payload-${index}`),
                ...(member === 1 ? { explicitHashKey: "12345" } : {}),
              };
            }),
        );
        const entries: PutRecordsRequestEntry[] = raw.map((record) => ({
          PartitionKey: record.partitionKey,
          Data: record.data,
        }));
        for (const group of groups) {
          const aggregator = new agg.RecordAggregator();
          for (const record of group) {
            aggregator.addUserRecord({ ...record, data: Buffer.from(record.data) });
          }
          const encoded = aggregator.build();
          entries.push({
            PartitionKey: "a",
            ExplicitHashKey: recordHashKey(group[0] ?? { partitionKey: "" }).toString(),
            Data: new Uint8Array(encoded.data),
          });
        }
        const results = await putRecords(client, stream, entries);
        raw.forEach((record, index) => {
          const result = results[index];
          assert.ok(result !== undefined);
          expected.push({
            shardId: result.ShardId,
            sequenceNumber: result.SequenceNumber,
            data: record.data,
            partitionKey: record.partitionKey,
          });
        });
        groups.forEach((group, offset) => {
          const result = results[raw.length + offset];
          assert.ok(result !== undefined);
          group.forEach((record, subSequenceNumber) =>
            expected.push({
              shardId: result.ShardId,
              sequenceNumber: result.SequenceNumber,
              subSequenceNumber,
              data: record.data,
              partitionKey: record.partitionKey,
            })
          );
        });
      }
      await putBatch();
      await splitShard(client, stream, { shardId: "shardId-000000000000" });
      await putBatch();

      const contents = await readStream(client, stream);
      assert.equal(contents.shards.length, 4);
      assert.equal(contents.kinesisRecords, 2 * (20 + 3));
      const report = reconcile(contents.records, expected);
      assert.deepEqual(
        {
          put: report.put,
          found: report.found,
          duplicates: report.duplicates,
          missing: report.missing,
          mismatched: report.mismatched,
          unexpected: report.unexpected,
        },
        { put: 64, found: 64, duplicates: 0, missing: 0, mismatched: 0, unexpected: 0 },
      );
      const closedParent = contents.records.filter((record) =>
        record.shardId === "shardId-000000000000"
      );
      assert.ok(
        closedParent.length > 0,
        "records put before the split are read from the closed parent",
      );
      const aggregated = contents.records.filter((record) => record.aggregated);
      assert.equal(aggregated.length, 24);
      assert.deepEqual(
        aggregated.map((record) => record.explicitHashKey),
        Array.from({ length: 6 }, () => [undefined, "12345", undefined, undefined]).flat(),
      );
    });
  });
}

describe("SDK and launchers", () => {
  test("The SDK sends Kinesis calls as AWS JSON 1.1 with X-Amz-Target Kinesis_20131202.<Operation>", async () => {
    await using kinesalite = await startKinesalite();
    const client = createTestClient(kinesalite.endpoint, { maxAttempts: 1 });
    const seen: string[] = [];
    // The last finalize step sees the request exactly as the fetch handler will send it.
    client.middlewareStack.add(
      (next) => (args) => {
        const request = args.request as { headers: Record<string, string>; body: unknown };
        const body = typeof request.body === "string"
          ? request.body
          : new TextDecoder().decode(request.body as Uint8Array);
        seen.push(
          `${request.headers["content-type"]} ${request.headers["x-amz-target"]} ${
            body.startsWith("{") ? "json" : "other"
          }`,
        );
        return next(args);
      },
      { step: "finalizeRequest", priority: "low" },
    );
    try {
      const stream = uniqueStreamName("protocol");
      await createStream(client, stream);
      await client.send(
        new PutRecordsCommand({
          StreamName: stream,
          Records: [{ PartitionKey: "k", Data: bytes("x") }],
        }),
      );
    } finally {
      client.destroy();
    }
    assert.equal(seen[0], "application/x-amz-json-1.1 Kinesis_20131202.CreateStream json");
    assert.equal(seen.at(-1), "application/x-amz-json-1.1 Kinesis_20131202.PutRecords json");
  });

  test("stop() ends the emulator process by pid and can be called twice", async () => {
    const kinesalite = await startKinesalite();
    assert.match(kinesalite.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    process.kill(kinesalite.pid, 0);
    await kinesalite.stop();
    await kinesalite.stop();
    assert.throws(() => process.kill(kinesalite.pid, 0), { code: "ESRCH" });
  });

  test("startKinesalite() rejects with the spawn error when node cannot be run", async () => {
    await assert.rejects(
      startKinesalite({ nodePath: "/nonexistent/node" }),
      /could not be spawned/,
    );
  });

  test("An emulator under the loopback preload exits by itself when its parent dies", async () => {
    // A node parent starts kinesalite the way the launcher does, reports its pid once it
    // listens, and exits without stopping it.
    const parent = spawn("node", [
      "-e",
      `const { spawn } = require("node:child_process");
      const child = spawn("node", ["--require", process.env.PRELOAD, process.env.CLI], {
        env: { ...process.env, WEBKPL_LOOPBACK_FREE_PORTS: "1", WEBKPL_EXIT_WITH_PARENT: "1" },
        stdio: ["ignore", "pipe", "ignore"],
      });
      child.stdout.on("data", (chunk) => {
        if (String(chunk).includes("Listening at")) {
          process.stdout.write("pid " + child.pid + "\\n", () => process.exit(0));
        }
      });`,
    ], {
      env: {
        ...process.env,
        PRELOAD: fileURLToPath(new URL("../support/_loopback_preload.cjs", import.meta.url)),
        CLI: fileURLToPath(new URL("../../node_modules/kinesalite/cli.js", import.meta.url)),
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    parent.stdout.setEncoding("utf8");
    parent.stdout.on("data", (chunk: string) => output += chunk);
    await new Promise((resolve) => parent.once("close", resolve));
    const pid = Number(/pid (\d+)/.exec(output)?.[1]);
    assert.ok(pid > 0, `parent printed: ${output}`);
    let alive = true;
    try {
      for (let poll = 0; poll < 200 && alive; poll++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        alive = isRunning(pid);
      }
      assert.equal(alive, false, "the orphaned emulator is still running");
    } finally {
      if (alive) process.kill(pid, "SIGKILL");
    }
  });

  test("kinesalite exits when ListShards is sent a NextToken, so a lister must only echo tokens it was given", async () => {
    await using kinesalite = await startKinesalite();
    const client = createTestClient(kinesalite.endpoint, { maxAttempts: 1 });
    try {
      const stream = uniqueStreamName("token");
      await createStream(client, stream);
      await assert.rejects(client.send(new ListShardsCommand({ NextToken: `${stream}::x` })));
      await assert.rejects(listAllShards(client, stream));
    } finally {
      client.destroy();
    }
  });
});

describe("readback", () => {
  function found(index: number, overrides: Partial<FoundRecord> = {}): FoundRecord {
    return {
      shardId: "shardId-000000000001",
      sequenceNumber: `${1000 + index}`,
      subSequenceNumber: 0,
      aggregated: false,
      partitionKey: `pk-${index}`,
      explicitHashKey: undefined,
      data: bytes(`payload-${index}`),
      ...overrides,
    };
  }
  function put(index: number, overrides: Partial<PutResult> = {}): PutResult {
    return {
      shardId: "shardId-000000000001",
      sequenceNumber: `${1000 + index}`,
      data: `payload-${index}`,
      partitionKey: `pk-${index}`,
      ...overrides,
    };
  }

  test("reconcile() counts nothing wrong when every result is found once at its position", () => {
    const report = reconcile([found(0), found(1), found(2)], [put(0), put(1), put(2)]);
    assert.deepEqual(
      [
        report.put,
        report.found,
        report.duplicates,
        report.missing,
        report.mismatched,
        report.unexpected,
      ],
      [3, 3, 0, 0, 0, 0],
    );
  });

  test("reconcile() counts missing, duplicated, misplaced and unexpected records", () => {
    const stream = [
      found(0),
      found(0, { sequenceNumber: "2000" }),
      found(1, { shardId: "shardId-000000000002" }),
      found(2, { partitionKey: "other" }),
      found(9),
    ];
    const report = reconcile(stream, [put(0), put(1), put(2), put(3)]);
    assert.equal(report.duplicates, 1);
    assert.equal(report.missing, 1);
    assert.equal(report.mismatched, 2);
    assert.equal(report.unexpected, 1);
    assert.deepEqual(report.examples.missing.map((result) => result.data), ["payload-3"]);
    assert.deepEqual(report.examples.duplicates.map((record) => record.sequenceNumber), ["2000"]);
  });

  test("reconcile() matches by sub-sequence number inside an aggregated record", () => {
    const records = [
      found(0, { subSequenceNumber: 0 }),
      found(1, { subSequenceNumber: 1, sequenceNumber: "1000" }),
    ];
    const swapped = reconcile(records, [
      put(0, { subSequenceNumber: 1 }),
      put(1, { sequenceNumber: "1000", subSequenceNumber: 0 }),
    ]);
    assert.equal(swapped.mismatched, 2);
    const right = reconcile(records, [
      put(0, { subSequenceNumber: 0 }),
      put(1, { sequenceNumber: "1000", subSequenceNumber: 1 }),
    ]);
    assert.equal(right.mismatched, 0);
  });

  test("deaggregate() gives no explicit hash key to user records aws-kinesis-agg encoded without one", () => {
    const aggregator = new agg.RecordAggregator();
    aggregator.addUserRecord({ partitionKey: "a", data: Buffer.from("first") });
    aggregator.addUserRecord({
      partitionKey: "b",
      explicitHashKey: "42",
      data: Buffer.from("second"),
    });
    const encoded = aggregator.build();
    const records = deaggregate("shardId-000000000000", {
      data: new Uint8Array(encoded.data),
      partitionKey: encoded.partitionKey,
      sequenceNumber: "7",
    });
    assert.deepEqual(
      records.map((
        r,
      ) => [
        r.partitionKey,
        r.explicitHashKey,
        r.subSequenceNumber,
        new TextDecoder().decode(r.data),
      ]),
      [["a", undefined, 0, "first"], ["b", "42", 1, "second"]],
    );
    assert.ok(records.every((r) => r.aggregated && r.sequenceNumber === "7"));
  });

  test("deaggregate() passes a record that is not aggregated through as sub-sequence 0", () => {
    const [record, ...rest] = deaggregate("shardId-000000000003", {
      data: bytes("plain"),
      partitionKey: "pk",
      sequenceNumber: "9",
    });
    assert.equal(rest.length, 0);
    assert.deepEqual(
      { ...record, data: new TextDecoder().decode(record?.data) },
      {
        shardId: "shardId-000000000003",
        sequenceNumber: "9",
        subSequenceNumber: 0,
        aggregated: false,
        partitionKey: "pk",
        explicitHashKey: undefined,
        data: "plain",
      },
    );
  });

  test("deaggregate() throws when an aggregated record's checksum is wrong", () => {
    const aggregator = new agg.RecordAggregator();
    aggregator.addUserRecord({ partitionKey: "a", data: Buffer.from("first") });
    aggregator.addUserRecord({ partitionKey: "b", data: Buffer.from("second") });
    const corrupt = new Uint8Array(aggregator.build().data);
    corrupt[corrupt.length - 1] = (corrupt[corrupt.length - 1] ?? 0) ^ 0xff;
    assert.throws(
      () =>
        deaggregate("shardId-000000000000", {
          data: corrupt,
          partitionKey: "a",
          sequenceNumber: "1",
        }),
      /checksum/,
    );
  });
});
