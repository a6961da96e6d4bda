// Every fault of the chaos proxy, observed through the real SDK against kinesalite, with the
// stream read back afterwards: what the client is told must match what was stored, except
// for the faults after forwarding, whose stored records the proxy lists in unconfirmed().
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  type KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
  type PutRecordsRequestEntry,
  type PutRecordsResultEntry,
} from "@aws-sdk/client-kinesis";
import { type Emulator, startKinesalite } from "../support/emulators.ts";
import {
  createStream,
  createTestClient,
  hashRange,
  listAllShards,
  openShardFor,
  partitionKeyHash,
  uniqueStreamName,
  withTimeout,
} from "../support/kinesis_sdk.ts";
import {
  type ChaosProxy,
  type ChaosProxyOptions,
  startChaosProxy,
} from "../support/chaos_proxy.ts";
import { type PutResult, readStream, reconcile } from "../support/readback.ts";
import { runtimeName } from "../support/runtime.ts";

/** What one PutRecords call through the proxy came back with. */
interface Outcome {
  entries: PutRecordsRequestEntry[];
  /** Set when the call returned. */
  results?: PutRecordsResultEntry[];
  failedRecordCount?: number;
  /** Set when the call threw. */
  error?: { name: string; status: number | undefined };
}

let kinesalite: Emulator | undefined;
let direct: KinesisClient;
let batchCounter = 0;

function entries(count: number): PutRecordsRequestEntry[] {
  const batch = batchCounter++;
  return Array.from({ length: count }, (_, index) => ({
    PartitionKey: `pk-${batch}-${index}`,
    Data: new TextEncoder().encode(`payload-${batch}-${index}`),
  }));
}

async function put(
  client: KinesisClient,
  stream: string,
  records: PutRecordsRequestEntry[],
  timeoutMs = 10_000,
): Promise<Outcome> {
  try {
    const output = await withTimeout(
      timeoutMs,
      (abortSignal) =>
        client.send(new PutRecordsCommand({ StreamName: stream, Records: records }), {
          abortSignal,
        }),
    );
    return {
      entries: records,
      results: output.Records ?? [],
      failedRecordCount: output.FailedRecordCount ?? 0,
    };
  } catch (error) {
    const { name, $metadata } = error as { name: string; $metadata?: { httpStatusCode?: number } };
    return { entries: records, error: { name, status: $metadata?.httpStatusCode } };
  }
}

/** The records a client was told succeeded: only from calls whose result count matched. */
function successes(outcomes: Outcome[]): PutResult[] {
  const told: PutResult[] = [];
  for (const outcome of outcomes) {
    if (outcome.results === undefined || outcome.results.length !== outcome.entries.length) {
      continue;
    }
    outcome.results.forEach((result, index) => {
      const entry = outcome.entries[index];
      if (result.ErrorCode !== undefined || entry === undefined) return;
      told.push({
        shardId: result.ShardId ?? "",
        sequenceNumber: result.SequenceNumber ?? "",
        data: entry.Data ?? new Uint8Array(),
        partitionKey: entry.PartitionKey ?? "",
      });
    });
  }
  return told;
}

function errorCodes(outcomes: Outcome[]): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const outcome of outcomes) {
    for (const result of outcome.results ?? []) {
      if (result.ErrorCode !== undefined) {
        codes[result.ErrorCode] = (codes[result.ErrorCode] ?? 0) + 1;
      }
    }
  }
  return codes;
}

/**
 * Reads the stream back and checks the proxy's honesty: every success is stored at its
 * position, and every stored record the client was not told about is one the proxy hid
 * after forwarding. Duplicates can only be extra copies of hidden records (Deno's fetch
 * re-sends a request whose reused connection was reset; see the test below).
 */
async function verify(stream: string, proxy: ChaosProxy, outcomes: Outcome[]) {
  await proxy.settled();
  const contents = await readStream(direct, stream);
  const told = successes(outcomes);
  const report = reconcile(contents.records, told);
  assert.deepEqual(
    { missing: report.missing, mismatched: report.mismatched },
    { missing: 0, mismatched: 0 },
    JSON.stringify(report.examples),
  );
  const hidden = new Set(
    proxy.unconfirmed().map((record) => `${record.shardId}/${record.sequenceNumber}`),
  );
  const toldPositions = new Set(told.map((result) => `${result.shardId}/${result.sequenceNumber}`));
  const untold = contents.records.filter((record) =>
    !toldPositions.has(`${record.shardId}/${record.sequenceNumber}`)
  );
  for (const record of untold) {
    assert.ok(
      hidden.has(`${record.shardId}/${record.sequenceNumber}`),
      `stored but never reported: ${record.shardId}/${record.sequenceNumber}`,
    );
  }
  assert.equal(untold.length, proxy.counts.recordsUnconfirmed);
  assert.equal(contents.records.length, told.length + untold.length);
  assert.ok(report.duplicates <= untold.length);
  return {
    found: contents.records.length,
    told: told.length,
    untold: untold.length,
    duplicates: report.duplicates,
  };
}

async function withProxy(
  options: Omit<ChaosProxyOptions, "upstream">,
  run: (proxy: ChaosProxy, client: KinesisClient, stream: string) => Promise<void>,
  shardCount = 2,
): Promise<void> {
  assert.ok(kinesalite !== undefined);
  const stream = uniqueStreamName("chaos");
  await createStream(direct, stream, { shardCount });
  const proxy = await startChaosProxy({ upstream: kinesalite.endpoint, ...options });
  const client = createTestClient(proxy.endpoint, { maxAttempts: 1 });
  try {
    await run(proxy, client, stream);
  } finally {
    client.destroy();
    await proxy.close();
  }
}

describe("ChaosProxy", () => {
  before(async () => {
    kinesalite = await startKinesalite();
    direct = createTestClient(kinesalite.endpoint, { maxAttempts: 1 });
  });

  after(async () => {
    direct?.destroy();
    await kinesalite?.stop();
  });

  test("ChaosProxy forwards every call untouched when no fault is configured", async () => {
    await withProxy({}, async (proxy, client, stream) => {
      await client.send(new ListShardsCommand({ StreamName: stream }));
      const outcomes = [
        await put(client, stream, entries(50)),
        await put(client, stream, entries(50)),
      ];
      assert.ok(outcomes.every((outcome) => outcome.failedRecordCount === 0));
      const { found, untold } = await verify(stream, proxy, outcomes);
      assert.equal(found, 100);
      assert.equal(untold, 0);
      const counts = proxy.counts;
      assert.deepEqual(counts.byOperation, { ListShards: 1, PutRecords: 2 });
      assert.equal(counts.unparsed, 0, "the SDK speaks AWS JSON 1.1 on the wire");
      assert.equal(counts.forwarded, 3);
      assert.equal(counts.records, 100);
      assert.equal(counts.recordsForwarded, 100);
    });
  });

  test("ChaosProxy per-record throttles and InternalFailures fail only those entries, which are not stored", async () => {
    await withProxy(
      { seed: 7, rates: { recordThrottle: 0.2, recordInternalFailure: 0.1 } },
      async (proxy, client, stream) => {
        const outcomes: Outcome[] = [];
        for (let call = 0; call < 5; call++) outcomes.push(await put(client, stream, entries(100)));
        const counts = proxy.counts;
        assert.ok(counts.recordThrottle > 50 && counts.recordInternalFailure > 20);
        assert.deepEqual(errorCodes(outcomes), {
          ProvisionedThroughputExceededException: counts.recordThrottle,
          InternalFailure: counts.recordInternalFailure,
        });
        for (const outcome of outcomes) {
          assert.equal(outcome.results?.length, 100);
          const failed = outcome.results?.filter((result) => result.ErrorCode !== undefined);
          assert.equal(outcome.failedRecordCount, failed?.length);
        }
        assert.equal(
          counts.recordsForwarded,
          500 - counts.recordThrottle - counts.recordInternalFailure,
        );
        const { found, told } = await verify(stream, proxy, outcomes);
        assert.equal(found, counts.recordsForwarded);
        assert.equal(told, counts.recordsForwarded);
      },
    );
  });

  test("ChaosProxy answers whole requests with 500, 503 and throttling 400s without forwarding them", async () => {
    await withProxy({}, async (proxy, client, stream) => {
      const expected = [
        ["http500", "InternalFailure", 500],
        ["http503", "ServiceUnavailable", 503],
        ["throttle400", "ProvisionedThroughputExceededException", 400],
        ["limitExceeded400", "LimitExceededException", 400],
      ] as const;
      const outcomes: Outcome[] = [];
      for (const [fault, name, status] of expected) {
        proxy.configure({ rates: { [fault]: 1 } });
        const outcome = await put(client, stream, entries(10));
        outcomes.push(outcome);
        assert.deepEqual(outcome.error, { name, status });
        assert.equal(proxy.counts[fault], 1);
      }
      assert.equal(proxy.counts.forwarded, 0);
      const { found } = await verify(stream, proxy, outcomes);
      assert.equal(found, 0);
    });
  });

  test("ChaosProxy resets the connection before forwarding: the call fails and nothing is stored", async () => {
    await withProxy({ rates: { resetBeforeForward: 1 } }, async (proxy, client, stream) => {
      const outcome = await put(client, stream, entries(20));
      assert.ok(outcome.error !== undefined && outcome.error.status === undefined);
      assert.equal(proxy.counts.resetBeforeForward, 1);
      assert.equal(proxy.counts.forwarded, 0);
      const { found } = await verify(stream, proxy, [outcome]);
      assert.equal(found, 0);
    });
  });

  test("ChaosProxy resets the connection after forwarding: the call fails but the records are stored", async () => {
    await withProxy({ rates: { resetAfterForward: 1 } }, async (proxy, client, stream) => {
      const outcome = await put(client, stream, entries(20));
      assert.ok(outcome.error !== undefined && outcome.error.status === undefined);
      // The call is the client's first on its connection, so no runtime re-sends it.
      const { found, untold } = await verify(stream, proxy, [outcome]);
      assert.equal(found, 20);
      assert.equal(untold, 20);
      assert.equal(proxy.counts.resetAfterForward, 1);
      assert.equal(proxy.counts.responsesLost, 1);
      assert.ok(proxy.unconfirmed().every((record) => record.fault === "resetAfterForward"));
    });
  });

  test("A reset on a reused connection makes Deno's fetch send the request again, and Bun's and Node's fetch not", async () => {
    await withProxy({}, async (proxy, client, stream) => {
      const warmUp = await put(client, stream, entries(5));
      assert.equal(warmUp.failedRecordCount, 0);
      proxy.configure({ rates: { resetAfterForward: 1 } });
      const outcome = await put(client, stream, entries(5));
      assert.ok(outcome.error !== undefined && outcome.error.status === undefined);
      const resends = runtimeName === "deno" ? 1 : 0;
      assert.equal(proxy.counts.byOperation.PutRecords, 2 + resends);
      const { found, untold, duplicates } = await verify(stream, proxy, [warmUp, outcome]);
      assert.deepEqual({ found, untold, duplicates }, {
        found: 10 + 5 * resends,
        untold: 5 + 5 * resends,
        duplicates: 5 * resends,
      });
    });
  });

  test("ChaosProxy drops a response after forwarding: the client gives up and the records are stored", async () => {
    await withProxy(
      { rates: { dropResponse: 1 }, dropHoldMs: 60_000 },
      async (proxy, client, stream) => {
        const outcome = await put(client, stream, entries(15), 300);
        assert.equal(outcome.error?.name, "AbortError");
        const { found, untold } = await verify(stream, proxy, [outcome]);
        assert.equal(found, 15);
        assert.equal(untold, 15);
        assert.equal(proxy.counts.dropResponse, 1);
        assert.equal(proxy.counts.responsesLost, 1);
      },
    );
  });

  test("ChaosProxy delays responses: one the client waited for arrives, one it gave up on is lost", async () => {
    await withProxy(
      { rates: { delayResponse: 1 }, delayMs: 50 },
      async (proxy, client, stream) => {
        const delivered = await put(client, stream, entries(10));
        assert.equal(delivered.failedRecordCount, 0);
        proxy.configure({ delayMs: 60_000 });
        const abandoned = await put(client, stream, entries(10), 300);
        assert.equal(abandoned.error?.name, "AbortError");
        const { found, told, untold } = await verify(stream, proxy, [delivered, abandoned]);
        assert.deepEqual({ found, told, untold }, { found: 20, told: 10, untold: 10 });
        assert.equal(proxy.counts.delayResponse, 2);
        assert.equal(proxy.counts.responsesLost, 1);
      },
    );
  });

  test("ChaosProxy returns one result too few without forwarding: nothing is stored", async () => {
    await withProxy({ rates: { wrongCountBeforeForward: 1 } }, async (proxy, client, stream) => {
      const outcome = await put(client, stream, entries(12));
      assert.equal(outcome.results?.length, 11);
      assert.equal(proxy.counts.wrongCountBeforeForward, 1);
      assert.equal(proxy.counts.forwarded, 0);
      const { found } = await verify(stream, proxy, [outcome]);
      assert.equal(found, 0);
    });
  });

  test("ChaosProxy returns one result too few after forwarding: every record is stored but unconfirmed", async () => {
    await withProxy({ rates: { wrongCountAfterForward: 1 } }, async (proxy, client, stream) => {
      const outcome = await put(client, stream, entries(12));
      assert.equal(outcome.results?.length, 11);
      const { found, untold } = await verify(stream, proxy, [outcome]);
      assert.deepEqual({ found, untold }, { found: 12, untold: 12 });
      assert.equal(proxy.counts.wrongCountAfterForward, 1);
    });
  });

  test("ChaosProxy throttles every record routed to the hot shard, by partition key and by explicit hash key", async () => {
    await withProxy({}, async (proxy, client, stream) => {
      const shards = await listAllShards(direct, stream);
      const hot = shards[1];
      assert.ok(hot?.ShardId !== undefined);
      const [startingHashKey, endingHashKey] = hashRange(hot);
      proxy.configure({ hotShard: { shardId: hot.ShardId, startingHashKey, endingHashKey } });
      const records = entries(200);
      records.forEach((record, index) => {
        if (index % 4 === 0) record.ExplicitHashKey = (BigInt(index) * 2n ** 120n).toString();
      });
      const outcome = await put(client, stream, records);
      const hotIndexes = records.flatMap((record, index) => {
        const hash = record.ExplicitHashKey !== undefined
          ? BigInt(record.ExplicitHashKey)
          : partitionKeyHash(record.PartitionKey ?? "");
        return openShardFor(shards, hash)?.ShardId === hot.ShardId ? [index] : [];
      });
      assert.ok(hotIndexes.length > 50 && hotIndexes.length < 150);
      const throttled = (outcome.results ?? []).flatMap((result, index) =>
        result.ErrorCode === "ProvisionedThroughputExceededException" ? [index] : []
      );
      assert.deepEqual(throttled, hotIndexes);
      assert.equal(proxy.counts.hotShardThrottle, hotIndexes.length);
      assert.ok(
        outcome.results?.every((result) =>
          result.ErrorCode !== undefined || result.ShardId !== hot.ShardId
        ),
      );
      proxy.configure({ hotShard: undefined });
      const cooled = await put(client, stream, entries(50));
      assert.equal(cooled.failedRecordCount, 0);
      await verify(stream, proxy, [outcome, cooled]);
    });
  });

  test("ChaosProxy faults only the configured operations", async () => {
    await withProxy({ rates: { http500: 1 } }, async (proxy, client, stream) => {
      const listed = await client.send(new ListShardsCommand({ StreamName: stream }));
      assert.equal(listed.Shards?.length, 2);
      proxy.configure({ operations: ["PutRecords", "ListShards"] });
      await assert.rejects(client.send(new ListShardsCommand({ StreamName: stream })), {
        name: "InternalFailure",
      });
      assert.equal(proxy.counts.http500, 1);
    });
  });

  test("ChaosProxy makes the same decisions from the same seed", async () => {
    const failedPositions: string[][] = [];
    for (let run = 0; run < 2; run++) {
      await withProxy(
        { seed: 42, rates: { recordThrottle: 0.3, recordInternalFailure: 0.1 } },
        async (_proxy, client, stream) => {
          const outcome = await put(client, stream, entries(100));
          failedPositions.push(
            (outcome.results ?? []).flatMap((result, index) =>
              result.ErrorCode === undefined ? [] : [`${index}:${result.ErrorCode}`]
            ),
          );
        },
      );
    }
    assert.ok((failedPositions[0]?.length ?? 0) > 20);
    assert.deepEqual(failedPositions[0], failedPositions[1]);
  });

  test("ChaosProxy.configure() rejects a rate outside [0, 1] and a group of rates above 1", async () => {
    // Nothing is sent, so the upstream need not exist.
    const upstream = "http://127.0.0.1:9";
    await assert.rejects(startChaosProxy({ upstream, rates: { http500: 2 } }), RangeError);
    await using proxy = await startChaosProxy({ upstream });
    assert.throws(() => proxy.configure({ rates: { http500: 1.5 } }), RangeError);
    assert.throws(() => proxy.configure({ rates: { recordThrottle: -0.1 } }), RangeError);
    assert.throws(
      () => proxy.configure({ rates: { http500: 0.6, http503: 0.5 } }),
      /must sum to at most 1/,
    );
    assert.throws(() => proxy.configure({ delayMs: -1 }), RangeError);
    proxy.configure({ rates: { http500: 0.5, recordThrottle: 0.5, resetAfterForward: 0.5 } });
  });

  test("ChaosProxy under mixed faults: every success is stored at its position and every other stored record is unconfirmed", async () => {
    await withProxy(
      {
        seed: 2024,
        delayMs: 60_000,
        dropHoldMs: 60_000,
        rates: {
          recordThrottle: 0.1,
          recordInternalFailure: 0.05,
          resetBeforeForward: 0.03,
          http500: 0.03,
          http503: 0.03,
          throttle400: 0.03,
          limitExceeded400: 0.03,
          wrongCountBeforeForward: 0.03,
          resetAfterForward: 0.04,
          dropResponse: 0.04,
          delayResponse: 0.04,
          wrongCountAfterForward: 0.04,
        },
      },
      async (proxy, client, stream) => {
        const outcomes: Outcome[] = [];
        // Four calls in flight at a time, as a producer would have.
        for (let wave = 0; wave < 15; wave++) {
          outcomes.push(
            ...(await Promise.all(
              Array.from({ length: 4 }, () => put(client, stream, entries(50), 500)),
            )),
          );
        }
        const { found, told, untold } = await verify(stream, proxy, outcomes);
        const counts = proxy.counts;
        // More under Deno, whose fetch re-sends some requests after a reset.
        assert.ok(counts.records >= 3000);
        // Which request draws which fault depends on arrival order; the group totals do not.
        const total = (faults: ReadonlyArray<keyof typeof counts>) =>
          faults.reduce((sum, fault) => sum + Number(counts[fault]), 0);
        assert.ok(counts.recordThrottle > 0 && counts.recordInternalFailure > 0);
        assert.ok(
          total(["resetBeforeForward", "http500", "http503", "throttle400", "limitExceeded400"]) >
            0,
        );
        assert.ok(total(["resetAfterForward", "dropResponse", "delayResponse"]) > 0);
        assert.ok(counts.responsesLost > 0);
        assert.ok(told > 1000 && untold > 0 && found === told + untold);
      },
      4,
    );
  });
});
