/**
 * What every fault scenario in `tests/scenarios/` shares: one kinesalite for the file, a
 * direct SDK client to read the stream back with, the table of results printed at the end
 * (docs/faults.md shows it), and the records and producers the scenarios put through the
 * chaos proxy.
 *
 * @module
 */
import { after } from "node:test";
import type { KinesisClient as SdkKinesisClient } from "@aws-sdk/client-kinesis";
import { Producer } from "../../src/producer.ts";
import type { ProducerOptions } from "../../src/options.ts";
import type { ChaosProxy } from "./chaos_proxy.ts";
import { type Emulator, startKinesalite, useEmulator } from "./emulators.ts";
import { recordHashKey } from "./kinesis_sdk.ts";
import { formatRow, type ScenarioRow, TABLE_HEADER } from "./ledger.ts";
import { SeededRandom } from "./seeded_random.ts";

/** Credentials kinesalite accepts; the security scenario checks they never leak. */
export const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };

/** The kinesalite of one test file, the client that reads it back, and its result rows. */
export interface ScenarioContext {
  readonly kinesalite: Emulator;
  readonly direct: SdkKinesisClient;
  /** One row per run, printed as a table after the file's last test. */
  readonly rows: ScenarioRow[];
}

/**
 * Starts kinesalite before the file's first test and stops it after the last, printing
 * the rows the scenarios added.
 *
 * @returns The context, filled in once the `before` hook has run.
 */
export function useKinesalite(): ScenarioContext {
  const env = useEmulator(startKinesalite);
  const rows: ScenarioRow[] = [];
  after(() => {
    if (rows.length > 0) console.log(`${TABLE_HEADER}\n${rows.map(formatRow).join("\n")}`);
  });
  return {
    get kinesalite() {
      return env.emulator;
    },
    get direct() {
      return env.client;
    },
    rows,
  };
}

/** `count` records with unique payloads over a pool of keys, 10% with an explicit hash key. */
export function* records(
  prefix: string,
  count: number,
  seed: number,
): Generator<{ partitionKey: string; data: string; explicitHashKey?: string }> {
  const random = new SeededRandom(seed);
  const keys = Array.from({ length: 2_000 }, (_, i) => `key-${i}-${random.int(0, 1e9)}`);
  for (let i = 0; i < count; i++) {
    const data = `${prefix}-${i}-${"x".repeat(random.int(0, 120))}`;
    if (random.next() < 0.1) {
      yield {
        partitionKey: random.pick(keys),
        data,
        explicitHashKey: random.bigint(128).toString(),
      };
    } else {
      yield { partitionKey: random.pick(keys), data };
    }
  }
}

/** The hash key Kinesis routes a record by. */
export function hashOf(
  record: { partitionKey: string; explicitHashKey?: string | undefined },
): bigint {
  return record.explicitHashKey === undefined
    ? recordHashKey({ partitionKey: record.partitionKey })
    : BigInt(record.explicitHashKey);
}

/** A producer with its default SDK client, sending through `proxy`. */
export function producerThrough(proxy: ChaosProxy, options: ProducerOptions = {}): Producer {
  return new Producer({
    endpoint: proxy.endpoint,
    region: "us-east-1",
    credentials,
    ...options,
  });
}
