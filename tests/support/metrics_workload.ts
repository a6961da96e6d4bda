/**
 * One producer run against a Kinesis emulator that goes through every path a metric is
 * put on, for the metrics exactness tests:
 *
 * - a 4-shard stream gets `records` user records (10% with an explicit hash key, 2% with a
 *   `doomed-` partition key) through a {@linkcode WireCounter} that answers every entry
 *   holding a doomed record with `KMSAccessDeniedException` (permanent), a budget of
 *   entries with `InternalFailure` and `ProvisionedThroughputExceededException`
 *   (retried, then stored), two whole calls with a 503 `ServiceUnavailable` (retried) and
 *   one call with a response that has no entries (`Record Count Mismatch`);
 * - a 1-shard stream whose every entry is answered `InternalFailure`, so its records
 *   retry until their TTL and end `Expired`;
 * - a stream that does not exist, whose calls fail with `ResourceNotFoundException`.
 *
 * Aggregation and collection limits are small so the run makes many calls, and the TTL
 * keeps it going for a few seconds, so a 250 ms upload interval exports several times.
 *
 * @module
 */
import type { KinesisClient as SdkKinesisClient } from "@aws-sdk/client-kinesis";
import { createDefaultKinesisClient } from "../../src/kinesis_client.ts";
import { type Logger, silentLogger } from "../../src/logger.ts";
import type { MetricsGranularity, MetricsLevel } from "../../src/metrics.ts";
import type { MetricsSink } from "../../src/metrics_sink.ts";
import { Producer } from "../../src/producer.ts";
import type { RecordResult, UserRecord } from "../../src/record.ts";
import { serviceError } from "./fake_kinesis.ts";
import { createStream, listAllShards, uniqueStreamName } from "./kinesis_sdk.ts";
import { readKinesisRecords, type StoredCounts, WireCounter } from "./metrics_truth.ts";
import { SeededRandom } from "./seeded_random.ts";

/** Options for {@linkcode runMetricsWorkload}. */
export interface MetricsWorkloadOptions {
  /** The emulator's endpoint. */
  endpoint: string;
  /** An SDK client on the emulator, to create and read streams. */
  admin: SdkKinesisClient;
  level: MetricsLevel;
  granularity?: MetricsGranularity;
  sink: MetricsSink;
  /** @default {1500} */
  records?: number;
  /** @default {1} */
  seed?: number;
  /** @default {silentLogger} */
  logger?: Logger;
}

/** What a run did. */
export interface MetricsWorkloadRun {
  producer: Producer;
  results: RecordResult[];
  wire: WireCounter;
  streams: { main: string; expiring: string; missing: string };
  /** User records put per stream. */
  perStream: Map<string, number>;
  /** The main stream read back. */
  readback: StoredCounts;
  /** Shard ids of the streams that exist. */
  shards: Map<string, string[]>;
}

const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };

/**
 * Runs the workload, closes the producer and reads the main stream back.
 *
 * @param options Where, which metrics, and how much.
 * @returns What the run did.
 */
export async function runMetricsWorkload(
  options: MetricsWorkloadOptions,
): Promise<MetricsWorkloadRun> {
  const { endpoint, admin, level, sink, records = 1500, seed = 1 } = options;
  const streams = {
    main: uniqueStreamName("metrics-main"),
    expiring: uniqueStreamName("metrics-expiring"),
    missing: uniqueStreamName("metrics-missing"),
  };
  await createStream(admin, streams.main, { shardCount: 4 });
  await createStream(admin, streams.expiring, { shardCount: 1 });

  let transient = 40;
  let throttled = 15;
  let entries = 0;
  const wire = new WireCounter(
    await createDefaultKinesisClient({ endpoint, region: "us-east-1", credentials }),
    {
      request: (call, input) =>
        input.StreamName === streams.main && (call === 1 || call === 5)
          ? serviceError("ServiceUnavailable", "scripted by the test", 503)
          : undefined,
      mismatch: (call, input) => input.StreamName === streams.main && call === 3,
      entry: (_call, stream, keys) => {
        if (stream === streams.expiring) return "InternalFailure";
        if (stream !== streams.main) return undefined;
        if (keys.some((key) => key.startsWith("doomed-"))) return "KMSAccessDeniedException";
        entries++;
        if (entries % 9 === 4 && transient > 0) {
          transient--;
          return "InternalFailure";
        }
        if (entries % 13 === 7 && throttled > 0) {
          throttled--;
          return "ProvisionedThroughputExceededException";
        }
        return undefined;
      },
    },
  );
  const producer = new Producer({
    region: "us-east-1",
    kinesisClient: wire,
    logger: options.logger ?? silentLogger,
    metricsLevel: level,
    ...(options.granularity === undefined ? {} : { metricsGranularity: options.granularity }),
    metricsSink: sink,
    metricsUploadIntervalMs: 250,
    aggregationMaxCount: 16,
    collectionMaxCount: 10,
    recordTtlMs: 2500,
  });

  const random = new SeededRandom(seed);
  const keys = Array.from({ length: 300 }, (_, i) => `user-${i}-${random.int(0, 1e9)}`);
  const batch: UserRecord[] = [];
  for (let i = 0; i < records; i++) {
    const doomed = random.next() < 0.02;
    const record: { stream: string; partitionKey: string; data: string; explicitHashKey?: string } =
      {
        stream: streams.main,
        partitionKey: doomed ? `doomed-${i}` : random.pick(keys),
        data: `main-${seed}-${i}-${"x".repeat(random.int(0, 300))}`,
      };
    if (random.next() < 0.1) record.explicitHashKey = random.bigint(128).toString();
    batch.push(record);
  }
  for (let i = 0; i < 12; i++) {
    batch.push({ stream: streams.expiring, partitionKey: `expiring-${i}`, data: `e-${i}` });
  }
  for (let i = 0; i < 10; i++) {
    batch.push({ stream: streams.missing, partitionKey: `missing-${i}`, data: `m-${i}` });
  }
  const perStream = new Map<string, number>();
  for (const record of batch) {
    perStream.set(record.stream!, (perStream.get(record.stream!) ?? 0) + 1);
  }
  const results = await Promise.all(batch.map((record) => producer.put(record)));
  await producer.close();
  const readback = await readKinesisRecords(admin, streams.main);
  const shards = new Map<string, string[]>();
  for (const stream of [streams.main, streams.expiring]) {
    shards.set(stream, (await listAllShards(admin, stream)).map((shard) => shard.ShardId!));
  }
  return { producer, results, wire, streams, perStream, readback, shards };
}
