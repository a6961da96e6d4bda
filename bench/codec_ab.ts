/**
 * Before/after of the aggregate encoder with MD5 taken out: copies `codec.ts` and the files
 * it imports from two source trees into temporary folders where `md5.ts` is a no-op, and
 * times both in alternation in one process, the least of `--rounds` rounds each. One round
 * adds the 200 B records of one 51,200-byte aggregate (about 156 distinct keys, as a shard
 * of a 64-shard stream with 10,000 keys sees) with `tryAdd`, encodes and clears; "after"
 * is timed with `encode()` and with `encodeInto()` a reused buffer. The outputs are first
 * checked to be the same bytes.
 *
 * ```sh
 * deno run -A bench/codec_ab.ts --before ../base/src [--rounds 21]
 * bun run bench/codec_ab.ts --before ../base/src
 * ```
 *
 * @module
 */
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import type { AggregateBuilder, AggregationInput } from "../src/codec.ts";

const FILES = ["codec.ts", "errors.ts", "record.ts", "_protobuf.ts", "_utf8.ts"];

async function load(src: string): Promise<typeof AggregateBuilder> {
  const dir = mkdtempSync(join(tmpdir(), "codec-ab-"));
  for (const file of FILES) {
    if (existsSync(join(src, file))) copyFileSync(join(src, file), join(dir, file));
  }
  writeFileSync(
    join(dir, "md5.ts"),
    "export function md5Into(_d: Uint8Array, _s: number, _e: number, _o: Uint8Array, _p: number): void {}\n",
  );
  const module = await import(pathToFileURL(join(dir, "codec.ts")).href);
  return module.AggregateBuilder;
}

function arg(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1]! : fallback;
}

const Before = await load(arg("--before", "../base/src"));
const After = await load(new URL("../src/", import.meta.url).pathname);
const rounds = Number(arg("--rounds", "21"));

const keys = Array.from(
  { length: 156 },
  (_, i) => `user-${(i * 64).toString(36).padStart(4, "0")}`,
);
let seed = 1;
const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const input: AggregationInput[] = [];
const probe = new Before();
for (;;) {
  const data = new Uint8Array(200).map(() => random() * 256);
  const record = { partitionKey: keys[Math.floor(random() * keys.length)]!, data };
  if (!probe.tryAdd(record, 51_200)) break;
  input.push(record);
}
const n = input.length;
const reused = new Uint8Array(51_200);
let sink = 0;

function fill(builder: AggregateBuilder): void {
  for (let i = 0; i < n; i++) builder.tryAdd(input[i]!, 51_200);
}
const before = new Before();
const after = new After();
const cases: [string, () => void][] = [
  ["before encode()", () => {
    fill(before);
    sink ^= before.encode()[7]!;
    before.clear();
  }],
  ["after encode()", () => {
    fill(after);
    sink ^= after.encode()[7]!;
    after.clear();
  }],
  ["after encodeInto()", () => {
    fill(after);
    sink ^= after.encodeInto(reused, 0);
    after.clear();
  }],
];

fill(before);
fill(after);
const a = before.encode();
const b = after.encode();
if (a.length !== b.length || a.some((byte, i) => byte !== b[i])) {
  throw new Error("The two encoders wrote different bytes");
}
before.clear();
after.clear();

const best = cases.map(() => Infinity);
for (let r = 0; r < rounds; r++) {
  for (let c = 0; c < cases.length; c++) {
    const fn = cases[c]![1];
    const t0 = performance.now();
    for (let i = 0; i < 500; i++) fn();
    best[c] = Math.min(best[c]!, (performance.now() - t0) / 500);
  }
}
const perRecord = (ms: number) => (ms * 1e6) / n;
console.log(`${n} records of 200 B per aggregate, MD5 taken out, least of ${rounds} rounds:`);
for (let c = 0; c < cases.length; c++) {
  console.log(
    `  ${cases[c]![0]}: ${perRecord(best[c]!).toFixed(1)} ns/record (${
      (best[0]! / best[c]!).toFixed(2)
    }× before)`,
  );
}
if (sink === 0.5) console.log(sink);
