/**
 * MD5 (RFC 1321) over `Uint8Array`, because Web Crypto has no MD5 and the producer needs it
 * twice per record: once to route a partition key, once over every aggregated payload.
 *
 * The compression function is a 2.3 KB WebAssembly module (`_md5_wasm.ts`, generated from
 * `tools/md5.wat` by `tools/md5_wasm.ts`), embedded as base64 so that nothing is built or
 * fetched at install time: wasm's `i32.rotl` and unaligned little-endian loads bring it to
 * 0.8-1.1 times node:crypto's native rate (`bench/md5_rate.ts`; figures in
 * `docs/performance.md`).
 * Where WebAssembly cannot be compiled at run time, the plain TypeScript of `_md5_js.ts`
 * takes over. Hashing a message of at most 64 bytes, such as a partition key, allocates
 * nothing; a longer one allocates one view per 64 KiB.
 *
 * @module
 */

import { md5Js, writeBitLength } from "./_md5_js.ts";
import { MD5_WASM_BASE64 } from "./_md5_wasm.ts";

/** Where the data goes in the module's memory; the state is in bytes 0-15. */
const DATA = 64;
/** Bytes copied in and compressed per call: a multiple of 64 that leaves room for padding. */
const CHUNK = 65536;
// Up to about this many bytes a loop copies faster than TypedArray.prototype.set with the
// subarray it needs.
const SMALL_COPY = 64;

interface Md5Module {
  readonly heap: Uint8Array;
  readonly compress: (p: number, end: number, fresh: number) => void;
}

// Compiled once, synchronously (the module is 2.3 KB, under the 4 KB browsers allow on the
// main thread). Runtimes that forbid compiling code at run time get the plain TypeScript.
function instantiate(): Md5Module | undefined {
  try {
    const text = atob(MD5_WASM_BASE64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports;
    const memory = exports.memory as WebAssembly.Memory;
    const compress = exports.compress as Md5Module["compress"];
    return { heap: new Uint8Array(memory.buffer), compress };
  } catch {
    return undefined;
  }
}

const wasm = instantiate();

// Returns the module's memory, whose first 16 bytes hold the digest until the next call.
// The memory never grows, so `heap` stays valid; nothing yields mid-digest, so one module
// serves every call.
function md5Wasm(module: Md5Module, data: Uint8Array, start: number, end: number): Uint8Array {
  const heap = module.heap;
  const compress = module.compress;
  let fresh = 1;
  let p = start;
  while (end - p > CHUNK) {
    heap.set(data.subarray(p, p + CHUNK), DATA);
    compress(DATA, DATA + CHUNK, fresh);
    fresh = 0;
    p += CHUNK;
  }
  // The last piece, padded in place and compressed in the same call.
  const n = end - p;
  if (n > SMALL_COPY) heap.set(data.subarray(p, end), DATA);
  else for (let i = 0; i < n; i++) heap[DATA + i] = data[p + i]!;
  heap[DATA + n] = 0x80;
  const padded = (n + 72) & ~63;
  const lengthAt = DATA + padded - 8;
  for (let i = DATA + n + 1; i < lengthAt; i++) heap[i] = 0;
  writeBitLength(heap, lengthAt, end - start);
  compress(DATA, DATA + padded, fresh);
  return heap;
}

function checkRange(data: Uint8Array, start: number, end: number): void {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError("Cannot compute MD5 as 'data' must be a Uint8Array");
  }
  if (
    !Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start ||
    end > data.length
  ) {
    throw new RangeError(
      `Cannot compute MD5 as the range must lie within the data: current range is [${start}, ${end}) of ${data.length} bytes`,
    );
  }
}

/**
 * Computes the MD5 digest of `data`.
 *
 * @param data The bytes to hash.
 * @returns A new 16-byte digest.
 * @throws {TypeError} If `data` is not a `Uint8Array`.
 *
 * @example Hashing bytes
 * ```ts
 * import { md5 } from "./md5.ts";
 *
 * const hex = Array.from(md5(new TextEncoder().encode("abc")), (b) => b.toString(16).padStart(2, "0")).join("");
 * console.log(hex); // "900150983cd24fb0d6963f7d28e17f72"
 * ```
 */
export function md5(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  md5Into(data, 0, data.length, out, 0);
  return out;
}

/**
 * Computes the MD5 digest of `data[start, end)` and writes it to `out[outOffset, outOffset + 16)`,
 * allocating nothing. `out` may be `data` itself, as long as
 * the digest does not overlap the hashed range.
 *
 * @param data The bytes to hash.
 * @param start Index of the first byte to hash.
 * @param end Index one past the last byte to hash.
 * @param out Where the digest goes.
 * @param outOffset Index in `out` of the digest's first byte.
 * @throws {TypeError} If `data` or `out` is not a `Uint8Array`.
 * @throws {RangeError} If the range is not within `data`, or the digest does not fit in `out`.
 *
 * @example Appending a checksum after a payload
 * ```ts
 * import { md5Into } from "./md5.ts";
 *
 * const frame = new Uint8Array(3 + 16);
 * frame.set([0x61, 0x62, 0x63]);
 * md5Into(frame, 0, 3, frame, 3);
 * console.log(frame[3]); // 0x90
 * console.log(frame[18]); // 0x72
 * ```
 */
export function md5Into(
  data: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  outOffset: number,
): void {
  checkRange(data, start, end);
  if (!(out instanceof Uint8Array)) {
    throw new TypeError("Cannot write MD5 as 'out' must be a Uint8Array");
  }
  if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset + 16 > out.length) {
    throw new RangeError(
      `Cannot write MD5 as 16 bytes must fit in 'out' at 'outOffset': current value is ${outOffset} of ${out.length} bytes`,
    );
  }
  const digest = wasm === undefined ? md5Js(data, start, end) : md5Wasm(wasm, data, start, end);
  for (let i = 0; i < 16; i++) out[outOffset + i] = digest[i]!;
}
