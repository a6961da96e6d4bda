// The direct transport's PutRecords body (src/_put_records_json.ts) is exactly the JSON of
// the request: the text JSON.stringify writes for the same entries, base64 data included.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { encodePutRecordsJson } from "../src/_put_records_json.ts";
import { SeededRandom } from "./support/seeded_random.ts";

interface Entry {
  Data: Uint8Array;
  PartitionKey: string;
  ExplicitHashKey?: string;
}

/** The request as JSON.stringify writes it, data as base64 (what the SDK sends). */
function expectedJson(stream: Record<string, string>, records: Entry[]): string {
  return JSON.stringify({
    ...stream,
    Records: records.map((entry) => ({
      ...entry,
      Data: Buffer.from(entry.Data).toString("base64"),
    })),
  });
}

function decode(body: Uint8Array): string {
  return new TextDecoder("utf-8", { fatal: true }).decode(body);
}

test("encodePutRecordsJson() writes data of every length mod 3 as base64, on both sides of the native encoder's threshold", () => {
  const random = new SeededRandom(7);
  const lengths = [0, 1, 2, 3, 4, 5, 254, 255, 256, 257, 258, 259, 1000, 51_200];
  const records = lengths.map((length, i) => ({
    Data: random.bytes(length),
    PartitionKey: `k${i}`,
  }));
  const body = encodePutRecordsJson({ StreamName: "s", Records: records });
  assert.equal(decode(body), expectedJson({ StreamName: "s" }, records));
  const parsed = JSON.parse(decode(body));
  for (let i = 0; i < records.length; i++) {
    assert.deepEqual(
      new Uint8Array(Buffer.from(parsed.Records[i].Data, "base64")),
      records[i]!.Data,
      `entry ${i} of ${lengths[i]} bytes`,
    );
  }
});

test("encodePutRecordsJson() escapes partition keys that need it and keeps unicode keys", () => {
  const keys = [
    'quote " here',
    "back\\slash",
    "tab\tnewline\ncontrol\u0001\u001f",
    "naïve café",
    "☃ snowman",
    "emoji 😀 pair",
    "lone \ud800 surrogate",
    "\u007f delete and \u2028 separator",
    "",
    "plain-ascii_key.0123",
  ];
  const records = keys.map((key, i) => ({ Data: Uint8Array.of(i), PartitionKey: key }));
  const text = decode(encodePutRecordsJson({ StreamName: "s", Records: records }));
  assert.equal(text, expectedJson({ StreamName: "s" }, records));
  assert.deepEqual(JSON.parse(text).Records.map((entry: Entry) => entry.PartitionKey), keys);
});

test("encodePutRecordsJson() writes ExplicitHashKey only where an entry has one, and the stream by name or ARN", () => {
  const records: Entry[] = [
    { Data: Uint8Array.of(1, 2, 3), PartitionKey: "a", ExplicitHashKey: "0" },
    { Data: new Uint8Array(0), PartitionKey: "b" },
    {
      Data: Uint8Array.of(9),
      PartitionKey: "c",
      ExplicitHashKey: "340282366920938463463374607431768211455",
    },
  ];
  const arn = "arn:aws:kinesis:us-east-1:123456789012:stream/events";
  const byArn = decode(encodePutRecordsJson({ StreamARN: arn, Records: records }));
  assert.equal(byArn, expectedJson({ StreamARN: arn }, records));
  assert.equal(JSON.parse(byArn).StreamName, undefined);
  const byName = decode(encodePutRecordsJson({ StreamName: 'odd "name"', Records: records }));
  assert.deepEqual(
    JSON.parse(byName),
    JSON.parse(expectedJson({ StreamName: 'odd "name"' }, records)),
  );
  assert.equal(JSON.parse(byName).Records[1].ExplicitHashKey, undefined);
});

test("encodePutRecordsJson() sizes the body exactly, for 500 entries", () => {
  const random = new SeededRandom(3);
  const records = Array.from({ length: 500 }, (_, i) => ({
    Data: random.bytes(i % 7 === 0 ? 51_200 : 200 + (i % 3)),
    PartitionKey: i % 5 === 0 ? `ключ-${i}` : `key-${i}`,
  }));
  const body = encodePutRecordsJson({ StreamName: "s", Records: records });
  const text = expectedJson({ StreamName: "s" }, records);
  assert.equal(body.length, Buffer.byteLength(text));
  assert.equal(body.buffer.byteLength, body.length, "one buffer, no slack");
  assert.equal(decode(body), text);
});
