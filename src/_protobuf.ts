/**
 * The few protobuf encoding primitives the aggregated-record format needs: base-128 varints
 * and the field keys of `messages.proto` (the C++ KPL's schema).
 *
 * @module
 */

/** Wire type of a varint field. */
export const WIRE_VARINT = 0;
/** Wire type of a 64-bit fixed field (skipped when unknown). */
export const WIRE_FIXED64 = 1;
/** Wire type of a length-delimited field (strings, bytes, embedded messages). */
export const WIRE_LENGTH_DELIMITED = 2;
/** Wire type of a 32-bit fixed field (skipped when unknown). */
export const WIRE_FIXED32 = 5;

/** `AggregatedRecord.partition_key_table` (1, length-delimited). */
export const KEY_PARTITION_KEY_TABLE = 0x0a;
/** `AggregatedRecord.explicit_hash_key_table` (2, length-delimited). */
export const KEY_EXPLICIT_HASH_KEY_TABLE = 0x12;
/** `AggregatedRecord.records` (3, length-delimited). */
export const KEY_RECORDS = 0x1a;
/** `Record.partition_key_index` (1, varint). */
export const KEY_PARTITION_KEY_INDEX = 0x08;
/** `Record.explicit_hash_key_index` (2, varint). */
export const KEY_EXPLICIT_HASH_KEY_INDEX = 0x10;
/** `Record.data` (3, length-delimited). */
export const KEY_DATA = 0x1a;

/**
 * The number of bytes `value` takes as a varint.
 *
 * @param value A non-negative safe integer.
 * @returns 1 to 8.
 */
export function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  if (value < 0x800000000) return 5;
  if (value < 0x40000000000) return 6;
  if (value < 0x2000000000000) return 7;
  return 8;
}

/**
 * Writes `value` as a varint into `out` from `pos`.
 *
 * @param out The destination, with {@linkcode varintSize} bytes of room at `pos`.
 * @param pos Index of the first byte to write.
 * @param value A non-negative safe integer.
 * @returns The index one past the last byte written.
 */
export function writeVarint(out: Uint8Array, pos: number, value: number): number {
  // One and two bytes (below 16,384) cover key indexes and the lengths of small records;
  // a store into a Uint8Array keeps the low 8 bits, so no masking is needed.
  if (value < 0x80) {
    out[pos] = value;
    return pos + 1;
  }
  if (value < 0x4000) {
    out[pos] = value | 0x80;
    out[pos + 1] = value >>> 7;
    return pos + 2;
  }
  // Bitwise operators see only 32 bits, so larger values shed their low groups by division.
  while (value > 0xffffffff) {
    out[pos++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  while (value > 0x7f) {
    out[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  out[pos++] = value;
  return pos;
}
