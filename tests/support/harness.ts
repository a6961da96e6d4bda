/** A producer on a fake clock and an in-process Kinesis, for pipeline tests. */
import { silentLogger } from "../../src/logger.ts";
import type { ProducerOptions } from "../../src/options.ts";
import { Producer } from "../../src/producer.ts";
import { FakeClock } from "./fake_clock.ts";
import { FakeKinesis, type FakeShard } from "./fake_kinesis.ts";
import { SeededRandom } from "./seeded_random.ts";

export interface Harness {
  clock: FakeClock;
  kinesis: FakeKinesis;
  producer: Producer;
}

export function harness(
  options: ProducerOptions & { shards?: number | FakeShard[] } = {},
): Harness {
  const { shards, ...producerOptions } = options;
  const clock = new FakeClock(0);
  const kinesis = new FakeKinesis({ s: shards ?? 4 });
  const random = new SeededRandom(7);
  const producer = new Producer({
    stream: "s",
    kinesisClient: kinesis,
    clock,
    logger: silentLogger,
    random: () => random.next(),
    ...producerOptions,
  });
  return { clock, kinesis, producer };
}
