// The retry table of docs/architecture.md, row by row, on the Retrier alone: a finished
// call goes in, a Verdict comes out, and no Producer is involved.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { PendingRecord } from "../src/_pending_record.ts";
import { ErrorCodes } from "../src/error_codes.ts";
import { hashKeyFromDecimal } from "../src/hash_key.ts";
import { AggregatedRecord, type KinesisRecord } from "../src/kinesis_record.ts";
import { Retrier, type ShardLookup, Verdict } from "../src/retrier.ts";
import { PutRecordsCall } from "../src/sender.ts";
import { Shard } from "../src/shard_map.ts";
import { hashInShard, pendingRecord } from "./support/records.ts";

const THROTTLED = "ProvisionedThroughputExceededException";
const MAX = (1n << 128n) - 1n;

/** Four equal shards, as a map would know them. */
const SHARDS = Array.from({ length: 4 }, (_, i) => {
  const width = (1n << 128n) / 4n;
  const end = i === 3 ? MAX : width * BigInt(i + 1) - 1n;
  return new Shard(
    `shardId-00000000000${i}`,
    hashKeyFromDecimal((width * BigInt(i)).toString()),
    hashKeyFromDecimal(end.toString()),
  );
});
const known: ShardLookup = { get: (id) => SHARDS.find((shard) => shard.id === id) };
const unknown: ShardLookup = { get: () => undefined };

function inShard(index: number, offset = 0n): PendingRecord {
  return pendingRecord({ explicitHashKey: hashInShard(index, 4, offset) });
}

function single(record: PendingRecord, predicted: Shard | null): KinesisRecord {
  const kinesisRecord = record;
  record.routeTo(predicted);
  kinesisRecord.predictedShard = predicted;
  return kinesisRecord;
}

function aggregate(records: PendingRecord[], predicted: Shard): KinesisRecord {
  for (const record of records) record.routeTo(predicted);
  const kinesisRecord = AggregatedRecord.create(records, new Uint8Array(8), {
    samePartitionKey: false,
    anyExplicitHashKey: true,
  });
  kinesisRecord.predictedShard = predicted;
  return kinesisRecord;
}

function answered(
  records: KinesisRecord[],
  entries: { ShardId?: string; SequenceNumber?: string; ErrorCode?: string }[],
): PutRecordsCall {
  const call = new PutRecordsCall("s", records);
  call.startedAt = 10;
  call.endedAt = 30;
  call.entries = entries.map((entry) => ({ ...entry }));
  return call;
}

function failedCall(records: KinesisRecord[], code: string): PutRecordsCall {
  const call = new PutRecordsCall("s", records);
  call.startedAt = 10;
  call.endedAt = 30;
  call.error = { code, message: `${code} happened` };
  return call;
}

function retrier(failIfThrottled = false): Retrier {
  return new Retrier({ failIfThrottled, random: () => 0.5 });
}

/** Every success of a verdict, in lists that line up. */
function successes(verdict: Verdict) {
  const found = {
    records: [] as PendingRecord[],
    shardIds: [] as string[],
    sequenceNumbers: [] as string[],
    subSequences: [] as number[],
  };
  verdict.forEachSuccess((record, shardId, sequenceNumber, subSequence) => {
    found.records.push(record);
    found.shardIds.push(shardId);
    found.sequenceNumbers.push(sequenceNumber);
    found.subSequences.push(subSequence);
  });
  return found;
}

function storedShards(verdict: Verdict): Shard[] {
  const shards: Shard[] = [];
  verdict.forEachStoredShard((shard) => shards.push(shard));
  return shards;
}

type Part = "succeeded" | "failed" | "retried" | "landings" | "mispredicted";

function empty(verdict: Verdict, ...except: Part[]): void {
  const parts: Record<Part, unknown[]> = {
    succeeded: successes(verdict).records,
    failed: verdict.failed,
    retried: verdict.retried,
    landings: verdict.landings,
    mispredicted: verdict.mispredicted,
  };
  for (const [key, found] of Object.entries(parts)) {
    if (!except.includes(key as Part)) assert.deepEqual(found, [], key);
  }
}

test("Retrier.decide() settles a record stored on its predicted shard", () => {
  const record = inShard(2);
  const verdict = retrier().decide(
    answered([single(record, SHARDS[2]!)], [{ ShardId: SHARDS[2]!.id, SequenceNumber: "9" }]),
    known,
  );
  assert.deepEqual(successes(verdict).records, [record]);
  assert.deepEqual(successes(verdict).shardIds, [SHARDS[2]!.id]);
  assert.deepEqual(successes(verdict).sequenceNumbers, ["9"]);
  assert.deepEqual(successes(verdict).subSequences, [0]);
  assert.deepEqual(storedShards(verdict), [SHARDS[2]]);
  assert.equal(record.attempts?.length, 1);
  assert.equal(record.attempts![0]!.success, true);
  empty(verdict, "succeeded");
});

test("Retrier.decide() makes no success attempt for a member whose owner ignores successes", () => {
  const quiet = inShard(2, 1n);
  quiet.owner = { onResult: () => {}, ignoresSuccess: true };
  const heard = inShard(2, 2n);
  heard.owner = { onResult: () => {}, ignoresSuccess: false };
  const verdict = retrier().decide(
    answered([aggregate([quiet, heard], SHARDS[2]!)], [{
      ShardId: SHARDS[2]!.id,
      SequenceNumber: "9",
    }]),
    known,
  );
  assert.deepEqual(successes(verdict).records, [quiet, heard], "both settle as successes");
  assert.equal(quiet.attempts, null);
  assert.deepEqual(heard.attempts?.map((attempt) => attempt.success), [true]);
});

test("Retrier.decide() settles an unpredicted record wherever it was stored", () => {
  const record = inShard(1);
  const verdict = retrier().decide(
    answered([single(record, null)], [{ ShardId: SHARDS[1]!.id, SequenceNumber: "1" }]),
    known,
  );
  assert.deepEqual(successes(verdict).records, [record]);
  assert.deepEqual(storedShards(verdict), []);
  empty(verdict, "succeeded");
});

test("Retrier.decide() settles a record stored on a split child that holds its hash and asks for a refresh", () => {
  const child = new Shard("shardId-000000000009", SHARDS[1]!.start, SHARDS[1]!.end);
  const lookup: ShardLookup = { get: (id) => id === child.id ? child : known.get(id) };
  const members = [inShard(1), inShard(1, 1n)];
  const verdict = retrier().decide(
    answered([aggregate(members, SHARDS[0]!)], [{ ShardId: child.id, SequenceNumber: "5" }]),
    lookup,
  );
  assert.deepEqual(successes(verdict).records, members);
  assert.deepEqual(successes(verdict).subSequences, [0, 1]);
  assert.deepEqual(verdict.mispredicted, [SHARDS[0]]);
  assert.equal(verdict.seenAt, 10);
  empty(verdict, "succeeded", "mispredicted");
});

test("Retrier.decide() retries with Wrong Shard the members stored on a shard that does not hold their hash", () => {
  const routedBy = inShard(2);
  const stray = inShard(3);
  const verdict = retrier().decide(
    answered(
      [aggregate([routedBy, stray], SHARDS[3]!)],
      [{ ShardId: SHARDS[2]!.id, SequenceNumber: "7" }],
    ),
    known,
  );
  // The first member routed the entry, so it is where it belongs; the other is not.
  assert.deepEqual(successes(verdict).records, [routedBy]);
  assert.deepEqual(verdict.retried, [stray]);
  assert.deepEqual(verdict.retryDelays, [0]);
  assert.deepEqual(verdict.mispredicted, [SHARDS[3]]);
  assert.equal(stray.attempts?.at(-1)?.errorCode, ErrorCodes.wrongShard);
  assert.equal(stray.attempts?.at(-1)?.shardId, SHARDS[2]!.id);
  assert.equal(stray.lastErrorCode, ErrorCodes.wrongShard);
  assert.equal(stray.predictAfterGeneration, stray.predictedGeneration);
});

test("Retrier.decide() parks members stored on a shard the map does not know, and land() decides them later", () => {
  const routedBy = inShard(0);
  const other = inShard(1);
  const r = retrier();
  const verdict = r.decide(
    answered(
      [aggregate([routedBy, other], SHARDS[0]!)],
      [{ ShardId: "shardId-000000000042", SequenceNumber: "3" }],
    ),
    unknown,
  );
  assert.deepEqual(successes(verdict).records, [routedBy]);
  assert.equal(verdict.landings.length, 1);
  assert.equal(verdict.landings[0]!.record, other);
  assert.equal(verdict.landings[0]!.subSequence, 1);
  // After the refresh the new shard turns out to hold the record: success.
  const later = new Verdict();
  const newShard = new Shard("shardId-000000000042", SHARDS[1]!.start, SHARDS[1]!.end);
  r.land(later, verdict.landings[0]!, newShard);
  assert.deepEqual(successes(later).records, [other]);
  assert.deepEqual(successes(later).subSequences, [1]);
});

test("Retrier.decide() retries a throttled record at once and backs its shard off", () => {
  const records = [inShard(1), inShard(1, 1n)];
  const verdict = retrier().decide(
    answered(records.map((record) => single(record, SHARDS[1]!)), [
      { ErrorCode: THROTTLED },
      { ErrorCode: THROTTLED },
    ]),
    known,
  );
  assert.deepEqual(verdict.retried, records);
  assert.deepEqual(verdict.retryDelays, [0, 0]);
  assert.deepEqual(verdict.throttledShards, [SHARDS[1]], "each shard once");
  assert.equal(records[0]!.lastErrorCode, THROTTLED);
  empty(verdict, "retried");
});

test("Retrier.decide() fails a throttled record at once with failIfThrottled, without pausing its shard", () => {
  const record = inShard(1);
  const verdict = retrier(true).decide(
    answered([single(record, SHARDS[1]!)], [{ ErrorCode: THROTTLED }]),
    known,
  );
  assert.deepEqual(verdict.failed, [record]);
  assert.deepEqual(verdict.failCodes, [THROTTLED]);
  assert.deepEqual(verdict.throttledShards, []);
  empty(verdict, "failed");
});

test("Retrier.decide() retries transient errors with growing, jittered backoff", () => {
  const record = inShard(0);
  const r = retrier();
  const delays: number[] = [];
  for (const code of ["InternalFailure", "ServiceUnavailable", "KMSThrottlingException"]) {
    const verdict = r.decide(failedCall([single(record, SHARDS[0]!)], code), known);
    assert.deepEqual(verdict.retried, [record]);
    delays.push(verdict.retryDelays[0]!);
    empty(verdict, "retried");
  }
  // random() is 0.5: three quarters of 100, 200 and 400 ms.
  assert.deepEqual(delays, [75, 150, 300]);
  assert.equal(record.transientFailures, 3);
  assert.equal(record.attempts?.length, 3);
});

test("Retrier.decide() caps the transient backoff at 10 s", () => {
  const record = inShard(0);
  for (let i = 0; i < 30; i++) record.failedTransiently();
  const verdict = new Retrier({ failIfThrottled: false, random: () => 0.999 }).decide(
    failedCall([single(record, SHARDS[0]!)], "InternalFailure"),
    known,
  );
  assert.ok(verdict.retryDelays[0]! <= 10_000 && verdict.retryDelays[0]! >= 9_990);
});

test("Retrier.decide() fails permanent errors at once with their code", () => {
  for (
    const code of ["ResourceNotFoundException", "AccessDeniedException", "KMSDisabledException"]
  ) {
    const record = inShard(0);
    const verdict = retrier().decide(
      answered([single(record, SHARDS[0]!)], [{ ErrorCode: code }]),
      known,
    );
    assert.deepEqual(verdict.failed, [record]);
    assert.deepEqual(verdict.failCodes, [code]);
    assert.equal(record.attempts?.at(-1)?.errorCode, code);
    empty(verdict, "failed");
  }
});

test("Retrier.decide() fails every record with Record Count Mismatch when the answer does not match", () => {
  const records = [inShard(0), inShard(1), inShard(2)];
  const verdict = retrier().decide(
    answered(records.map((record, i) => single(record, SHARDS[i]!)), [
      { ShardId: SHARDS[0]!.id, SequenceNumber: "1" },
    ]),
    known,
  );
  assert.deepEqual(verdict.failed, records);
  assert.deepEqual(verdict.failCodes, Array(3).fill(ErrorCodes.recordCountMismatch));
  assert.match(verdict.failMessages[0]!, /returned 1 results for 3 records/);
  empty(verdict, "failed");
});

test("Retrier.expired() fails the expired members with Expired naming the last error and sends the rest around", () => {
  const expired = pendingRecord({ now: 0, expiresAt: 100 });
  const alive = pendingRecord({ now: 0, expiresAt: 1000 });
  expired.blame("InternalFailure", "boom");
  const kinesisRecord = aggregate([expired, alive], SHARDS[0]!);
  const verdict = retrier().expired(kinesisRecord, 100);
  assert.deepEqual(verdict.failed, [expired]);
  assert.deepEqual(verdict.failCodes, [ErrorCodes.expired]);
  assert.match(
    verdict.failMessages[0]!,
    /TTL of 100 ms reached; last error: InternalFailure: boom/,
  );
  assert.deepEqual(verdict.retried, [alive]);
  assert.deepEqual(verdict.retryDelays, [0]);
});

test("Retrier.decide() fails a call the producer closed with ProducerClosed, never retried", () => {
  const record = inShard(0);
  const verdict = retrier().decide(
    failedCall([single(record, SHARDS[0]!)], ErrorCodes.producerClosed),
    known,
  );
  assert.deepEqual(verdict.failed, [record]);
  assert.deepEqual(verdict.failCodes, [ErrorCodes.producerClosed]);
  empty(verdict, "failed");
});

test("Retrier.decide() leaves records that already settled alone", () => {
  const record = inShard(0);
  record.deliver({
    success: false,
    shardId: undefined,
    sequenceNumber: undefined,
    subSequenceNumber: undefined,
    attempts: [],
    record: record.record,
    errorCode: ErrorCodes.producerClosed,
    errorMessage: "closed",
  });
  const verdict = retrier().decide(
    answered([single(record, SHARDS[0]!)], [{ ShardId: SHARDS[0]!.id, SequenceNumber: "1" }]),
    known,
  );
  empty(verdict);
});

test("Verdict.recycle() empties a verdict of whole stored entries and refuses one with anything else", () => {
  const stored = retrier().decide(
    answered([single(inShard(0), SHARDS[0]!)], [{ ShardId: SHARDS[0]!.id, SequenceNumber: "1" }]),
    known,
  );
  assert.equal(stored.recycle(), true);
  assert.deepEqual(successes(stored).records, []);
  assert.equal(stored.call, undefined);
  const failed = retrier().decide(
    failedCall([single(inShard(0), SHARDS[0]!)], "InternalFailure"),
    known,
  );
  assert.equal(failed.recycle(), false);
  assert.equal(failed.retried.length, 1, "left as it was");
});
