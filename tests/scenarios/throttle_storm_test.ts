// Scenario 4, throttle storm: one shard throttled without end, then the same with
// failIfThrottled; the other shards' records go through and the throttled ones fail
// honestly. docs/faults.md lists every scenario.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Shard } from "@aws-sdk/client-kinesis";
import { createDefaultKinesisClient } from "../../src/kinesis_client.ts";
import { Producer } from "../../src/producer.ts";
import {
  createStream,
  hashRange,
  listAllShards,
  openShardFor,
  uniqueStreamName,
} from "../support/kinesis_sdk.ts";
import { startChaosProxy } from "../support/chaos_proxy.ts";
import { readStream } from "../support/readback.ts";
import {
  checkStream,
  dishonestFailure,
  Ledger,
  type LedgerEntry,
  scenarioRow,
} from "../support/ledger.ts";
import { CapturingLogger } from "../support/capturing_logger.ts";
import { recordingClient } from "../support/recording_client.ts";
import { credentials, hashOf, records, useKinesalite } from "../support/fault_scenario.ts";

const scenario = useKinesalite();

describe("Scenario 4: throttle storm", () => {
  /** The default SDK client, recording every call so requests can be counted per shard. */
  async function countingClient(endpoint: string, shards: Shard[]) {
    const started = performance.now();
    const recording = recordingClient(
      await createDefaultKinesisClient({ endpoint, region: "us-east-1", credentials }),
    );
    /** Requests carrying entries routed to `shardId`, per whole second from start to now. */
    function perSecond(shardId: string): number[] {
      const seconds: number[] = Array.from(
        { length: Math.floor((performance.now() - started) / 1000) },
        () => 0,
      );
      for (const call of recording.calls) {
        if (call.kind !== "putRecords") continue;
        const routed = call.input.Records.some((entry) =>
          openShardFor(
            shards,
            hashOf({
              partitionKey: entry.PartitionKey,
              explicitHashKey: entry.ExplicitHashKey,
            }),
          )?.ShardId === shardId
        );
        if (!routed) continue;
        const second = Math.floor((call.startedAt - started) / 1000);
        while (seconds.length <= second) seconds.push(0);
        seconds[second]!++;
      }
      return seconds;
    }
    return { client: recording.client, perSecond };
  }

  async function storm(failIfThrottled: boolean) {
    const started = performance.now();
    const stream = uniqueStreamName(failIfThrottled ? "stormfail" : "storm");
    await createStream(scenario.direct, stream, { shardCount: 4 });
    const shards = await listAllShards(scenario.direct, stream);
    const hot = shards[1]!;
    const [startingHashKey, endingHashKey] = hashRange(hot);
    await using proxy = await startChaosProxy({
      upstream: scenario.kinesalite.endpoint,
      hotShard: { shardId: hot.ShardId!, startingHashKey, endingHashKey },
    });
    const counting = await countingClient(proxy.endpoint, shards);
    // Longer than the longest throttle pause (5 s) with room to spare on a loaded machine, so
    // every record gets an attempt to name (6 s left a record with none in one loaded run).
    const ttlMs = 8_000;
    const logger = new CapturingLogger();
    const producer = new Producer({
      stream,
      kinesisClient: counting.client,
      recordTtlMs: ttlMs,
      failIfThrottled,
      logger,
    });
    const ledger = new Ledger();
    // Three seconds of steady traffic, so the hot shard's request rate can be read per second.
    const source = records(failIfThrottled ? "f4b" : "f4", 6_000, 4);
    for (let wave = 0; wave < 30; wave++) {
      for (let i = 0; i < 200; i++) await ledger.put(producer, source.next().value!);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await producer.close();
    await ledger.allSettled();
    await proxy.settled();
    const settlement = ledger.settlement();
    const contents = await readStream(scenario.direct, stream);
    const check = checkStream(contents.records, ledger, proxy.unconfirmed());
    scenario.rows.push(scenarioRow({
      scenario: `4 throttle storm${failIfThrottled ? ", failIfThrottled" : ""}`,
      records: ledger.entries.length,
      settlement,
      check,
      timeMs: performance.now() - started,
    }));
    const isHot = (entry: LedgerEntry) =>
      openShardFor(shards, hashOf(entry.record))?.ShardId === hot.ShardId;
    return { ledger, settlement, check, counting, hot: hot.ShardId!, shards, isHot, ttlMs, logger };
  }

  test("Producer keeps the other shards at full speed while one shard is throttled without end, and backs the hot shard off", async () => {
    const { ledger, settlement, check, counting, hot, shards, isHot, ttlMs, logger } = await storm(
      false,
    );
    assert.deepEqual([settlement.settled, settlement.neverSettled], [6_000, 0]);
    assert.deepEqual(
      { missing: check.missing, mismatched: check.mismatched, unexplained: check.unexplained },
      { missing: 0, mismatched: 0, unexplained: 0 },
    );
    const hotEntries = ledger.entries.filter(isHot);
    const coldEntries = ledger.entries.filter((entry) => !isHot(entry));
    assert.ok(hotEntries.length > 500 && coldEntries.length > 3_000);
    for (const entry of coldEntries) {
      assert.equal(entry.result!.success, true, String(entry.result!.errorMessage));
      assert.equal(entry.result!.attempts.length, 1, "a record of a healthy shard is sent once");
    }
    for (const entry of hotEntries) {
      assert.equal(entry.result!.errorCode, "Expired");
      assert.match(entry.result!.errorMessage!, /ProvisionedThroughputExceededException/);
      assert.equal(dishonestFailure(entry.result!, ttlMs), undefined);
    }
    const hotRate = counting.perSecond(hot);
    const coldRate = counting.perSecond(shards[2]!.ShardId!);
    console.log(
      `requests per second: hot shard ${hotRate.join(" ")}; a healthy shard ${coldRate.join(" ")}`,
    );
    // Without backoff a throttled shard is retried every ~70 ms (half the buffering time
    // plus the collector's linger), over ten times a second; with it, the pause doubles
    // from 100 ms to 5 s, so after the first two seconds about one request a second
    // reaches the hot shard (a slow run only lowers the rate).
    const late = hotRate.slice(2);
    for (const [second, count] of late.entries()) {
      assert.ok(count <= 3, `${count} hot-shard requests in second ${second + 2}`);
    }
    assert.ok(
      late.reduce((sum, count) => sum + count, 0) <= 2 * late.length,
      `hot shard after two seconds: ${late.join(" ")}`,
    );
    // Compared with a healthy shard while records flowed (its first three seconds), the
    // backed-off hot shard gets a third of the requests or fewer, until the run ends.
    const mean = (counts: number[]) =>
      counts.reduce((sum, count) => sum + count, 0) / Math.max(1, counts.length);
    const healthy = mean(coldRate.slice(0, 3));
    assert.ok(mean(late) * 3 <= healthy, `hot ${mean(late)}/s vs healthy ${healthy}/s`);
    assert.deepEqual(logger.lines("error"), []);
  });

  test("Producer with failIfThrottled fails the hot shard's records at their first throttle and delivers the rest", async () => {
    const { ledger, settlement, check, isHot, logger } = await storm(true);
    assert.deepEqual([settlement.settled, settlement.neverSettled], [6_000, 0]);
    assert.deepEqual(
      { missing: check.missing, mismatched: check.mismatched, unexplained: check.unexplained },
      { missing: 0, mismatched: 0, unexplained: 0 },
    );
    for (const entry of ledger.entries) {
      const result = entry.result!;
      assert.equal(result.attempts.length, 1);
      if (isHot(entry)) {
        assert.equal(result.errorCode, "ProvisionedThroughputExceededException");
      } else {
        assert.equal(result.success, true, String(result.errorMessage));
      }
    }
    assert.deepEqual(logger.lines("error"), []);
  });
});
