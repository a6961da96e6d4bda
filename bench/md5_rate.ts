/**
 * MD5 throughput of webkpl's `md5Into` against node:crypto's native MD5, in one process:
 * on a 50 KiB buffer (an aggregate) and per key on 10,000 partition keys of 10-40 bytes
 * (hashing a record's key, the per-record case). Prints MB/s and the ratio ours / native,
 * best of `--rounds` alternating rounds, and the rate of the plain TypeScript fallback
 * (`src/_md5_js.ts`, which was webkpl's MD5 before the WebAssembly module).
 *
 * ```sh
 * deno run -A bench/md5_rate.ts    # or: bun run bench/md5_rate.ts
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import process from "node:process";
import { md5Into } from "../src/md5.ts";
import { md5Js } from "../src/_md5_js.ts";

/** One figure: bytes hashed per second by each implementation. */
export interface Md5Rate {
  case: string;
  oursMBps: number;
  nativeMBps: number;
  ratio: number;
  /** The plain TypeScript fallback (`src/_md5_js.ts`, webkpl's MD5 before WebAssembly). */
  fallbackMBps: number;
}

let sink = 0;

function time(fn: () => void, minMs: number): number {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) {
    fn();
    n++;
    t = performance.now();
  }
  return (t - t0) / n;
}

/** Measures both cases; `rounds` alternations, best of each. */
export function measureMd5(rounds = 15, minMs = 40): Md5Rate[] {
  const big = new Uint8Array(51200);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  const bigBuffer = Buffer.from(big);
  const encoder = new TextEncoder();
  const keys: Uint8Array[] = [];
  const keyBuffers: Buffer[] = [];
  let keyBytes = 0;
  for (let i = 0; i < 10_000; i++) {
    const key = encoder.encode(
      `k-${i.toString(36)}-`.padEnd(10 + ((i * 7919) % 31), "abcdefghij"),
    );
    keys.push(key);
    keyBuffers.push(Buffer.from(key));
    keyBytes += key.length;
  }
  const out = new Uint8Array(16);
  const oursBig = () => {
    md5Into(big, 0, big.length, out, 0);
    sink ^= out[0]!;
  };
  const nativeBig = () => {
    sink ^= createHash("md5").update(bigBuffer).digest()[0]!;
  };
  const oursKeys = () => {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      md5Into(key, 0, key.length, out, 0);
    }
    sink ^= out[0]!;
  };
  const fallbackBig = () => {
    sink ^= md5Js(big, 0, big.length)[0]!;
  };
  const fallbackKeys = () => {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      sink ^= md5Js(key, 0, key.length)[0]!;
    }
  };
  const nativeKeys = () => {
    for (let i = 0; i < keyBuffers.length; i++) {
      sink ^= createHash("md5").update(keyBuffers[i]!).digest()[0]!;
    }
  };
  const best = [Infinity, Infinity, Infinity, Infinity, Infinity, Infinity];
  for (let r = 0; r < rounds; r++) {
    best[0] = Math.min(best[0]!, time(oursBig, minMs));
    best[1] = Math.min(best[1]!, time(nativeBig, minMs));
    best[2] = Math.min(best[2]!, time(oursKeys, minMs));
    best[3] = Math.min(best[3]!, time(nativeKeys, minMs));
    best[4] = Math.min(best[4]!, time(fallbackBig, minMs));
    best[5] = Math.min(best[5]!, time(fallbackKeys, minMs));
  }
  const mbps = (bytes: number, ms: number) => bytes / ms / 1000;
  const rate = (name: string, bytes: number, [ours, native, fallback]: number[]): Md5Rate => ({
    case: name,
    oursMBps: mbps(bytes, ours!),
    nativeMBps: mbps(bytes, native!),
    ratio: native! / ours!,
    fallbackMBps: mbps(bytes, fallback!),
  });
  return [
    rate("50 KiB buffer", big.length, [best[0]!, best[1]!, best[4]!]),
    rate(
      `per key (10-40 B, mean ${(keyBytes / keys.length).toFixed(1)} B)`,
      keyBytes,
      [best[2]!, best[3]!, best[5]!],
    ),
  ];
}

if (import.meta.main) {
  const at = process.argv.indexOf("--rounds");
  const rounds = at >= 0 ? Number(process.argv[at + 1]) : 15;
  for (const r of measureMd5(rounds)) {
    console.log(
      `${r.case}: webkpl ${r.oursMBps.toFixed(0)} MB/s, node:crypto ${
        r.nativeMBps.toFixed(0)
      } MB/s, ours/native ${r.ratio.toFixed(2)}; TypeScript fallback ${
        r.fallbackMBps.toFixed(0)
      } MB/s`,
    );
  }
  if (sink === 0.5) console.log(sink);
}
