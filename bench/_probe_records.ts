/**
 * What the in-process probes (`pipeline_probe.ts`, `retained_heap.ts`) share: their records
 * (200 bytes, one of 10,000 keys in turn) and a forced garbage collection.
 *
 * @module
 */
import type { UserRecord } from "../mod.ts";

const KEYS = 10_000;
const keys = Array.from({ length: KEYS }, (_, i) => `user-${i.toString(36).padStart(4, "0")}`);
const payload = new Uint8Array(200).fill(7);
let next = 0;

/** @returns The next record: the same 200-byte payload, the next of 10,000 keys. */
export function probeRecord(): UserRecord {
  return { partitionKey: keys[next++ % KEYS]!, data: payload };
}

/** A full collection: `gc()` (V8 with `--expose-gc`) or `Bun.gc(true)`. */
export const forceGc: () => void = (globalThis as { gc?: () => void }).gc ??
  (() => (globalThis as unknown as { Bun: { gc(sync: boolean): void } }).Bun.gc(true));
