/**
 * MD5 (RFC 1321) in plain TypeScript, for runtimes that cannot compile WebAssembly from
 * bytes at run time; `md5.ts` uses the WebAssembly module of `_md5_wasm.ts` wherever it
 * can, which is faster.
 *
 * The compression function is unrolled and works on 32-bit integers only, reading the input
 * a byte at a time: 32-bit typed-array views were 8% faster in V8 but 35% slower in
 * JavaScriptCore. Nothing is allocated per call: the state and the padded tail live in
 * module-level scratch buffers, which is safe because the code never yields mid-digest.
 *
 * @module
 */

const state = new Int32Array(4);
// Room for the last partial block plus padding, which can spill into a second block.
const tail = new Uint8Array(128);
const digest = new Uint8Array(16);

function compressBytes(data: Uint8Array, p: number, end: number): void {
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  for (; p < end; p += 64) {
    const a0 = a;
    const b0 = b;
    const c0 = c;
    const d0 = d;
    const x0 = data[p]! | (data[p + 1]! << 8) | (data[p + 2]! << 16) | (data[p + 3]! << 24);
    const x1 = data[p + 4]! | (data[p + 5]! << 8) | (data[p + 6]! << 16) | (data[p + 7]! << 24);
    const x2 = data[p + 8]! | (data[p + 9]! << 8) | (data[p + 10]! << 16) | (data[p + 11]! << 24);
    const x3 = data[p + 12]! | (data[p + 13]! << 8) | (data[p + 14]! << 16) | (data[p + 15]! << 24);
    const x4 = data[p + 16]! | (data[p + 17]! << 8) | (data[p + 18]! << 16) | (data[p + 19]! << 24);
    const x5 = data[p + 20]! | (data[p + 21]! << 8) | (data[p + 22]! << 16) | (data[p + 23]! << 24);
    const x6 = data[p + 24]! | (data[p + 25]! << 8) | (data[p + 26]! << 16) | (data[p + 27]! << 24);
    const x7 = data[p + 28]! | (data[p + 29]! << 8) | (data[p + 30]! << 16) | (data[p + 31]! << 24);
    const x8 = data[p + 32]! | (data[p + 33]! << 8) | (data[p + 34]! << 16) | (data[p + 35]! << 24);
    const x9 = data[p + 36]! | (data[p + 37]! << 8) | (data[p + 38]! << 16) | (data[p + 39]! << 24);
    const x10 = data[p + 40]! | (data[p + 41]! << 8) | (data[p + 42]! << 16) |
      (data[p + 43]! << 24);
    const x11 = data[p + 44]! | (data[p + 45]! << 8) | (data[p + 46]! << 16) |
      (data[p + 47]! << 24);
    const x12 = data[p + 48]! | (data[p + 49]! << 8) | (data[p + 50]! << 16) |
      (data[p + 51]! << 24);
    const x13 = data[p + 52]! | (data[p + 53]! << 8) | (data[p + 54]! << 16) |
      (data[p + 55]! << 24);
    const x14 = data[p + 56]! | (data[p + 57]! << 8) | (data[p + 58]! << 16) |
      (data[p + 59]! << 24);
    const x15 = data[p + 60]! | (data[p + 61]! << 8) | (data[p + 62]! << 16) |
      (data[p + 63]! << 24);
    a = (a + (d ^ (b & (c ^ d))) + x0 + -680876936) | 0;
    a = (((a << 7) | (a >>> 25)) + b) | 0;
    d = (d + (c ^ (a & (b ^ c))) + x1 + -389564586) | 0;
    d = (((d << 12) | (d >>> 20)) + a) | 0;
    c = (c + (b ^ (d & (a ^ b))) + x2 + 606105819) | 0;
    c = (((c << 17) | (c >>> 15)) + d) | 0;
    b = (b + (a ^ (c & (d ^ a))) + x3 + -1044525330) | 0;
    b = (((b << 22) | (b >>> 10)) + c) | 0;
    a = (a + (d ^ (b & (c ^ d))) + x4 + -176418897) | 0;
    a = (((a << 7) | (a >>> 25)) + b) | 0;
    d = (d + (c ^ (a & (b ^ c))) + x5 + 1200080426) | 0;
    d = (((d << 12) | (d >>> 20)) + a) | 0;
    c = (c + (b ^ (d & (a ^ b))) + x6 + -1473231341) | 0;
    c = (((c << 17) | (c >>> 15)) + d) | 0;
    b = (b + (a ^ (c & (d ^ a))) + x7 + -45705983) | 0;
    b = (((b << 22) | (b >>> 10)) + c) | 0;
    a = (a + (d ^ (b & (c ^ d))) + x8 + 1770035416) | 0;
    a = (((a << 7) | (a >>> 25)) + b) | 0;
    d = (d + (c ^ (a & (b ^ c))) + x9 + -1958414417) | 0;
    d = (((d << 12) | (d >>> 20)) + a) | 0;
    c = (c + (b ^ (d & (a ^ b))) + x10 + -42063) | 0;
    c = (((c << 17) | (c >>> 15)) + d) | 0;
    b = (b + (a ^ (c & (d ^ a))) + x11 + -1990404162) | 0;
    b = (((b << 22) | (b >>> 10)) + c) | 0;
    a = (a + (d ^ (b & (c ^ d))) + x12 + 1804603682) | 0;
    a = (((a << 7) | (a >>> 25)) + b) | 0;
    d = (d + (c ^ (a & (b ^ c))) + x13 + -40341101) | 0;
    d = (((d << 12) | (d >>> 20)) + a) | 0;
    c = (c + (b ^ (d & (a ^ b))) + x14 + -1502002290) | 0;
    c = (((c << 17) | (c >>> 15)) + d) | 0;
    b = (b + (a ^ (c & (d ^ a))) + x15 + 1236535329) | 0;
    b = (((b << 22) | (b >>> 10)) + c) | 0;
    a = (a + (c ^ (d & (b ^ c))) + x1 + -165796510) | 0;
    a = (((a << 5) | (a >>> 27)) + b) | 0;
    d = (d + (b ^ (c & (a ^ b))) + x6 + -1069501632) | 0;
    d = (((d << 9) | (d >>> 23)) + a) | 0;
    c = (c + (a ^ (b & (d ^ a))) + x11 + 643717713) | 0;
    c = (((c << 14) | (c >>> 18)) + d) | 0;
    b = (b + (d ^ (a & (c ^ d))) + x0 + -373897302) | 0;
    b = (((b << 20) | (b >>> 12)) + c) | 0;
    a = (a + (c ^ (d & (b ^ c))) + x5 + -701558691) | 0;
    a = (((a << 5) | (a >>> 27)) + b) | 0;
    d = (d + (b ^ (c & (a ^ b))) + x10 + 38016083) | 0;
    d = (((d << 9) | (d >>> 23)) + a) | 0;
    c = (c + (a ^ (b & (d ^ a))) + x15 + -660478335) | 0;
    c = (((c << 14) | (c >>> 18)) + d) | 0;
    b = (b + (d ^ (a & (c ^ d))) + x4 + -405537848) | 0;
    b = (((b << 20) | (b >>> 12)) + c) | 0;
    a = (a + (c ^ (d & (b ^ c))) + x9 + 568446438) | 0;
    a = (((a << 5) | (a >>> 27)) + b) | 0;
    d = (d + (b ^ (c & (a ^ b))) + x14 + -1019803690) | 0;
    d = (((d << 9) | (d >>> 23)) + a) | 0;
    c = (c + (a ^ (b & (d ^ a))) + x3 + -187363961) | 0;
    c = (((c << 14) | (c >>> 18)) + d) | 0;
    b = (b + (d ^ (a & (c ^ d))) + x8 + 1163531501) | 0;
    b = (((b << 20) | (b >>> 12)) + c) | 0;
    a = (a + (c ^ (d & (b ^ c))) + x13 + -1444681467) | 0;
    a = (((a << 5) | (a >>> 27)) + b) | 0;
    d = (d + (b ^ (c & (a ^ b))) + x2 + -51403784) | 0;
    d = (((d << 9) | (d >>> 23)) + a) | 0;
    c = (c + (a ^ (b & (d ^ a))) + x7 + 1735328473) | 0;
    c = (((c << 14) | (c >>> 18)) + d) | 0;
    b = (b + (d ^ (a & (c ^ d))) + x12 + -1926607734) | 0;
    b = (((b << 20) | (b >>> 12)) + c) | 0;
    a = (a + (b ^ c ^ d) + x5 + -378558) | 0;
    a = (((a << 4) | (a >>> 28)) + b) | 0;
    d = (d + (a ^ b ^ c) + x8 + -2022574463) | 0;
    d = (((d << 11) | (d >>> 21)) + a) | 0;
    c = (c + (d ^ a ^ b) + x11 + 1839030562) | 0;
    c = (((c << 16) | (c >>> 16)) + d) | 0;
    b = (b + (c ^ d ^ a) + x14 + -35309556) | 0;
    b = (((b << 23) | (b >>> 9)) + c) | 0;
    a = (a + (b ^ c ^ d) + x1 + -1530992060) | 0;
    a = (((a << 4) | (a >>> 28)) + b) | 0;
    d = (d + (a ^ b ^ c) + x4 + 1272893353) | 0;
    d = (((d << 11) | (d >>> 21)) + a) | 0;
    c = (c + (d ^ a ^ b) + x7 + -155497632) | 0;
    c = (((c << 16) | (c >>> 16)) + d) | 0;
    b = (b + (c ^ d ^ a) + x10 + -1094730640) | 0;
    b = (((b << 23) | (b >>> 9)) + c) | 0;
    a = (a + (b ^ c ^ d) + x13 + 681279174) | 0;
    a = (((a << 4) | (a >>> 28)) + b) | 0;
    d = (d + (a ^ b ^ c) + x0 + -358537222) | 0;
    d = (((d << 11) | (d >>> 21)) + a) | 0;
    c = (c + (d ^ a ^ b) + x3 + -722521979) | 0;
    c = (((c << 16) | (c >>> 16)) + d) | 0;
    b = (b + (c ^ d ^ a) + x6 + 76029189) | 0;
    b = (((b << 23) | (b >>> 9)) + c) | 0;
    a = (a + (b ^ c ^ d) + x9 + -640364487) | 0;
    a = (((a << 4) | (a >>> 28)) + b) | 0;
    d = (d + (a ^ b ^ c) + x12 + -421815835) | 0;
    d = (((d << 11) | (d >>> 21)) + a) | 0;
    c = (c + (d ^ a ^ b) + x15 + 530742520) | 0;
    c = (((c << 16) | (c >>> 16)) + d) | 0;
    b = (b + (c ^ d ^ a) + x2 + -995338651) | 0;
    b = (((b << 23) | (b >>> 9)) + c) | 0;
    a = (a + (c ^ (b | ~d)) + x0 + -198630844) | 0;
    a = (((a << 6) | (a >>> 26)) + b) | 0;
    d = (d + (b ^ (a | ~c)) + x7 + 1126891415) | 0;
    d = (((d << 10) | (d >>> 22)) + a) | 0;
    c = (c + (a ^ (d | ~b)) + x14 + -1416354905) | 0;
    c = (((c << 15) | (c >>> 17)) + d) | 0;
    b = (b + (d ^ (c | ~a)) + x5 + -57434055) | 0;
    b = (((b << 21) | (b >>> 11)) + c) | 0;
    a = (a + (c ^ (b | ~d)) + x12 + 1700485571) | 0;
    a = (((a << 6) | (a >>> 26)) + b) | 0;
    d = (d + (b ^ (a | ~c)) + x3 + -1894986606) | 0;
    d = (((d << 10) | (d >>> 22)) + a) | 0;
    c = (c + (a ^ (d | ~b)) + x10 + -1051523) | 0;
    c = (((c << 15) | (c >>> 17)) + d) | 0;
    b = (b + (d ^ (c | ~a)) + x1 + -2054922799) | 0;
    b = (((b << 21) | (b >>> 11)) + c) | 0;
    a = (a + (c ^ (b | ~d)) + x8 + 1873313359) | 0;
    a = (((a << 6) | (a >>> 26)) + b) | 0;
    d = (d + (b ^ (a | ~c)) + x15 + -30611744) | 0;
    d = (((d << 10) | (d >>> 22)) + a) | 0;
    c = (c + (a ^ (d | ~b)) + x6 + -1560198380) | 0;
    c = (((c << 15) | (c >>> 17)) + d) | 0;
    b = (b + (d ^ (c | ~a)) + x13 + 1309151649) | 0;
    b = (((b << 21) | (b >>> 11)) + c) | 0;
    a = (a + (c ^ (b | ~d)) + x4 + -145523070) | 0;
    a = (((a << 6) | (a >>> 26)) + b) | 0;
    d = (d + (b ^ (a | ~c)) + x11 + -1120210379) | 0;
    d = (((d << 10) | (d >>> 22)) + a) | 0;
    c = (c + (a ^ (d | ~b)) + x2 + 718787259) | 0;
    c = (((c << 15) | (c >>> 17)) + d) | 0;
    b = (b + (d ^ (c | ~a)) + x9 + -343485551) | 0;
    b = (((b << 21) | (b >>> 11)) + c) | 0;
    a = (a + a0) | 0;
    b = (b + b0) | 0;
    c = (c + c0) | 0;
    d = (d + d0) | 0;
  }
  state[0] = a;
  state[1] = b;
  state[2] = c;
  state[3] = d;
}

/**
 * Computes the MD5 of `data[start, end)`; the caller has checked the range.
 *
 * @param data The bytes to hash.
 * @param start Index of the first byte to hash.
 * @param end Index one past the last byte to hash.
 * @returns A module-level 16-byte buffer holding the digest until the next call.
 */
export function md5Js(data: Uint8Array, start: number, end: number): Uint8Array {
  state[0] = 0x67452301;
  state[1] = 0xefcdab89 | 0;
  state[2] = 0x98badcfe | 0;
  state[3] = 0x10325476;
  const length = end - start;
  const whole = start + length - (length % 64);
  if (whole > start) compressBytes(data, start, whole);
  let n = 0;
  for (let i = whole; i < end; i++) tail[n++] = data[i]!;
  tail[n++] = 0x80;
  const padded = n <= 56 ? 64 : 128;
  tail.fill(0, n, padded - 8);
  writeBitLength(tail, padded - 8, length);
  compressBytes(tail, 0, padded);
  writeState(digest, 0);
  return digest;
}

function writeState(out: Uint8Array, offset: number): void {
  for (let i = 0; i < 4; i++) {
    const word = state[i]!;
    out[offset] = word;
    out[offset + 1] = word >>> 8;
    out[offset + 2] = word >>> 16;
    out[offset + 3] = word >>> 24;
    offset += 4;
  }
}

/**
 * Writes MD5's closing length field: `length` bytes in bits, as a 64-bit little-endian
 * integer at `out[at, at + 8)`.
 *
 * @param out The padded block.
 * @param at Index of the field's first byte.
 * @param length The message length in bytes, a safe integer.
 */
export function writeBitLength(out: Uint8Array, at: number, length: number): void {
  const low = (length % 0x20000000) * 8;
  const high = Math.floor(length / 0x20000000);
  out[at] = low;
  out[at + 1] = low >>> 8;
  out[at + 2] = low >>> 16;
  out[at + 3] = low >>> 24;
  out[at + 4] = high;
  out[at + 5] = high >>> 8;
  out[at + 6] = high >>> 16;
  out[at + 7] = high >>> 24;
}
