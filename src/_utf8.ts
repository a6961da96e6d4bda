/**
 * UTF-8 measuring and writing straight into a caller's buffer. `TextEncoder.encodeInto`
 * needs a subarray per call and costs more than this loop for the short strings (partition
 * keys, hash keys) the producer writes; both produce the same bytes, including U+FFFD for a
 * lone surrogate.
 *
 * @module
 */

/**
 * The number of bytes `s` takes in UTF-8, counting a lone surrogate as U+FFFD (3 bytes), as
 * `TextEncoder` encodes it.
 *
 * @param s Any string.
 * @returns Its UTF-8 length in bytes.
 */
export function utf8Length(s: string): number {
  const n = s.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
      continue;
    }
    // Three bytes for the rest of the BMP and for a lone surrogate (U+FFFD); a surrogate
    // pair is two code units and four bytes, which is also two more than its units.
    bytes += 2;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
  }
  return bytes;
}

/**
 * Writes `s` as UTF-8 into `out` from `pos`, with U+FFFD for a lone surrogate. The caller
 * guarantees room: {@linkcode utf8Length} bytes, or `3 × s.length` at most.
 *
 * @param s Any string.
 * @param out The destination.
 * @param pos Index of the first byte to write.
 * @returns The index one past the last byte written.
 */
export function writeUtf8(s: string, out: Uint8Array, pos: number): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[pos++] = c;
    } else if (c < 0x800) {
      out[pos++] = 0xc0 | (c >> 6);
      out[pos++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c > 0xdfff) {
      out[pos++] = 0xe0 | (c >> 12);
      out[pos++] = 0x80 | ((c >> 6) & 0x3f);
      out[pos++] = 0x80 | (c & 0x3f);
    } else {
      const next = c <= 0xdbff && i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        out[pos++] = 0xf0 | (c >> 18);
        out[pos++] = 0x80 | ((c >> 12) & 0x3f);
        out[pos++] = 0x80 | ((c >> 6) & 0x3f);
        out[pos++] = 0x80 | (c & 0x3f);
      } else {
        out[pos++] = 0xef;
        out[pos++] = 0xbf;
        out[pos++] = 0xbd;
      }
    }
  }
  return pos;
}
