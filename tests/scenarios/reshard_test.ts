// Scenario 2, resharding mid-run: two shards split and two others merge while 20,000
// records flow in waves, on kinesis-local and on kinesalite. Nothing may be lost, the shard
// map must refresh right after the first misprediction, and no record may be sent to a
// wrong shard more than once.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { KinesisClient as SdkKinesisClient, Shard } from "@aws-sdk/client-kinesis";
import { createDefaultKinesisClient } from "../../src/kinesis_client.ts";
import { Producer } from "../../src/producer.ts";
import { type Emulator, startKinesalite, startKinesisLocal } from "../support/emulators.ts";
import {
  createStream,
  createTestClient,
  hashRange,
  isOpen,
  listAllShards,
  mergeShards,
  recordHashKey,
  splitShard,
  uniqueStreamName,
} from "../support/kinesis_sdk.ts";
import { readStream } from "../support/readback.ts";
import {
  checkStream,
  formatRow,
  Ledger,
  type ScenarioRow,
  scenarioRow,
  TABLE_HEADER,
} from "../support/ledger.ts";
import { type RecordedCall, recordingClient } from "../support/recording_client.ts";
import { CapturingLogger } from "../support/capturing_logger.ts";
import { SeededRandom } from "../support/seeded_random.ts";

const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };
const rows: ScenarioRow[] = [];

after(() => {
  if (rows.length > 0) console.log(`${TABLE_HEADER}\n${rows.map(formatRow).join("\n")}`);
});

/** When the producer first saw a record land on a shard its map did not know, and how long the refresh took to start. */
interface Episode {
  /** `performance.now()` when the response arrived. */
  seenAt: number;
  /** Milliseconds from the response to the next ListShards call. */
  refreshAfterMs: number;
}

/**
 * Finds the mispredictions the producer could see: a PutRecords response with an entry
 * stored on a shard that the last listing before the request did not show open. A request
 * that overlapped a listing is skipped, since the producer may already have had the new map.
 */
function episodes(calls: readonly RecordedCall[]): Episode[] {
  const listings = calls.filter((call) => call.kind === "listShards" && call.output !== undefined);
  const out: Episode[] = [];
  const puts = calls.filter((call) => call.kind === "putRecords" && call.output !== undefined)
    .sort((a, b) => a.endedAt! - b.endedAt!);
  let handledUntil = -Infinity;
  for (const put of puts) {
    const overlapping = calls.some((call) =>
      call.kind === "listShards" && call.startedAt <= put.endedAt! &&
      (call.endedAt ?? Infinity) >= put.startedAt
    );
    if (overlapping || put.endedAt! <= handledUntil) continue;
    const map = listings.filter((call) => call.endedAt! <= put.startedAt).at(-1);
    if (map === undefined || map.kind !== "listShards") continue;
    const known = new Set(
      (map.output!.Shards ?? [])
        .filter((shard) => shard.SequenceNumberRange?.EndingSequenceNumber === undefined)
        .map((shard) => shard.ShardId),
    );
    const landed = put.kind === "putRecords" ? put.output!.Records ?? [] : [];
    if (landed.every((entry) => entry.ShardId === undefined || known.has(entry.ShardId))) continue;
    const refresh = calls.find((call) =>
      call.kind === "listShards" && call.startedAt >= put.endedAt!
    );
    out.push({
      seenAt: put.endedAt!,
      refreshAfterMs: refresh === undefined ? Infinity : refresh.startedAt - put.endedAt!,
    });
    // The requests already in flight see the same misprediction; the next episode starts
    // after this refresh has been installed.
    handledUntil = refresh?.endedAt ?? Infinity;
  }
  return out;
}

async function reshardMidRun(emulator: Emulator): Promise<void> {
  const started = performance.now();
  const direct: SdkKinesisClient = createTestClient(emulator.endpoint);
  try {
    const stream = uniqueStreamName("reshard");
    await createStream(direct, stream, { shardCount: 4 });
    const initial = await listAllShards(direct, stream);
    const recording = recordingClient(
      await createDefaultKinesisClient({
        endpoint: emulator.endpoint,
        region: "us-east-1",
        credentials,
      }),
    );
    const logger = new CapturingLogger();
    const producer = new Producer({ stream, kinesisClient: recording.client, logger });
    const ledger = new Ledger();
    const random = new SeededRandom(emulator.name === "kinesalite" ? 21 : 22);
    const keys = Array.from({ length: 3_000 }, (_, i) => `user-${i}-${random.int(0, 1e9)}`);
    // Reshards start at these waves and run while the next waves are put.
    const reshards = new Map<number, () => Promise<unknown>>([
      [8, () => splitShard(direct, stream, { shardId: initial[0]!.ShardId! })],
      [16, () => splitShard(direct, stream, { shardId: initial[1]!.ShardId! })],
      [24, () =>
        mergeShards(direct, stream, {
          shardId: initial[2]!.ShardId!,
          adjacentShardId: initial[3]!.ShardId!,
        })],
    ]);
    let resharding: Promise<unknown> = Promise.resolve();
    const waves = 40;
    for (let wave = 0; wave < waves; wave++) {
      const reshard = reshards.get(wave);
      if (reshard !== undefined) {
        await resharding;
        resharding = reshard();
      }
      for (let i = 0; i < 500; i++) {
        const index = wave * 500 + i;
        const record = random.next() < 0.1
          ? {
            partitionKey: random.pick(keys),
            data: `f2-${index}`,
            explicitHashKey: random.bigint(128).toString(),
          }
          : { partitionKey: random.pick(keys), data: `f2-${index}` };
        await ledger.put(producer, record);
      }
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    await resharding;
    await producer.close();
    await ledger.allSettled();

    const settlement = ledger.settlement();
    const contents = await readStream(direct, stream);
    const check = checkStream(contents.records, ledger, []);
    const wrongShardAttempts = ledger.entries.map((entry) =>
      entry.result!.attempts.filter((attempt) => attempt.errorCode === "Wrong Shard").length
    );
    const listings = recording.calls.filter((call) => call.kind === "listShards").length;
    const found = episodes(recording.calls);
    rows.push(scenarioRow({
      scenario: `2 reshard mid-run (${emulator.name})`,
      records: ledger.entries.length,
      settlement,
      check,
      timeMs: performance.now() - started,
    }));
    console.log(
      `${emulator.name}: ${contents.shards.length} shards (${
        contents.shards.filter(isOpen).length
      } open), ` +
        `ListShards ${listings}, mispredictions seen ${found.length}, refresh started after ` +
        `${found.map((episode) => episode.refreshAfterMs.toFixed(1)).join(", ")} ms; ` +
        `Wrong Shard retries ${wrongShardAttempts.reduce((sum, n) => sum + n, 0)} ` +
        `(max per record ${
          Math.max(...wrongShardAttempts)
        }), copies dropped as wrong-shard ${check.wrongShardCopies}`,
    );

    assert.equal(contents.shards.length, 4 + 2 + 2 + 1, "two splits and a merge happened");
    assert.deepEqual(
      [settlement.settled, settlement.neverSettled, settlement.succeeded],
      [20_000, 0, 20_000],
      JSON.stringify(settlement.failedByCode),
    );
    assert.deepEqual(
      { missing: check.missing, mismatched: check.mismatched, unexplained: check.unexplained },
      { missing: 0, mismatched: 0, unexplained: 0 },
      JSON.stringify(check.examples).slice(0, 2_000),
    );
    assert.ok(Math.max(...wrongShardAttempts) <= 1, "no record sent to a wrong shard twice");
    assert.equal(check.duplicates, check.wrongShardCopies);
    // Each wrong-shard copy really is outside its shard's range, so consumers drop it.
    const byId = new Map<string, Shard>(contents.shards.map((shard) => [shard.ShardId!, shard]));
    for (const entry of ledger.entries) {
      const hash = recordHashKey(
        entry.record as { partitionKey: string; explicitHashKey?: string },
      );
      for (const attempt of entry.result!.attempts) {
        if (attempt.errorCode !== "Wrong Shard") continue;
        const [start, end] = hashRange(byId.get(attempt.shardId!)!);
        assert.ok(
          hash < start || hash > end,
          `${entry.record.data} was in range on ${attempt.shardId}`,
        );
      }
    }
    assert.ok(found.length >= 1, "the reshards were seen as mispredictions");
    for (const episode of found) {
      assert.ok(
        episode.refreshAfterMs < 1_000,
        `the map refreshed ${episode.refreshAfterMs} ms after a misprediction`,
      );
    }
    assert.deepEqual(logger.at("error"), []);
  } finally {
    direct.destroy();
  }
}

describe("Scenario 2: resharding mid-run", () => {
  test("Producer loses nothing on kinesis-local while two shards split and two merge, and refreshes its map at once", async () => {
    await using emulator = await startKinesisLocal();
    await reshardMidRun(emulator);
  });

  test("Producer loses nothing on kinesalite while two shards split and two merge, and refreshes its map at once", async () => {
    await using emulator = await startKinesalite();
    await reshardMidRun(emulator);
  });
});
