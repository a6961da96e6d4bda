// Memory for aggregated records, recycled. A fresh 50 KiB buffer per aggregate costs an
// allocation, its zeroing and, since V8 frees external memory only when a major collection
// finds its owner dead, hundreds of megabytes of RSS under load (docs/performance.md,
// "Memory"). The aggregator takes a buffer here for each aggregate it encodes; the Kinesis
// record that carries it gives it back once nothing can read it any more: after its
// PutRecords call has settled, or once it expired before any call (kinesis_record.ts,
// `release()`). A record is resent by aggregating its user records again, never by sending
// an old aggregate twice, so one call at most ever reads a buffer.
//
// Buffers come in a few sizes, the largest aggregate halved down to about a kilobyte (an
// aggregate closed by its deadline is often far below the limit), so a buffer is at most
// twice what it holds. Idle buffers are kept up to a byte budget; what a burst gives back
// beyond it goes to the garbage collector, so memory returns after the burst.

/** The smallest pooled size is the largest halved until below twice this. */
const SMALLEST = 1024;

export class BufferPool {
  /** The sizes, smallest first. */
  readonly #sizes: number[] = [];
  /** Idle buffers per size, index-aligned with `#sizes`. */
  readonly #idle: ArrayBuffer[][] = [];
  readonly #maxIdleBytes: number;
  #idleBytes = 0;
  #lent = 0;
  #closed = false;

  /**
   * @param largest The largest buffer ever asked for.
   * @param maxIdleBytes How many bytes of idle buffers to keep for reuse.
   */
  constructor(largest: number, maxIdleBytes: number) {
    const sizes: number[] = [];
    for (let size = largest; size >= SMALLEST; size = Math.ceil(size / 2)) {
      sizes.unshift(size);
    }
    this.#sizes = sizes;
    for (let i = 0; i < sizes.length; i++) this.#idle.push([]);
    this.#maxIdleBytes = maxIdleBytes;
  }

  /** Buffers taken and not given back yet. */
  get lent(): number {
    return this.#lent;
  }

  /** Bytes of the idle buffers kept for reuse. */
  get idleBytes(): number {
    return this.#idleBytes;
  }

  /**
   * A view of exactly `size` bytes on a buffer of the smallest size that holds it (an
   * exact allocation above the largest size). The bytes are not cleared: the caller
   * writes all of them.
   */
  take(size: number): Uint8Array {
    const sizes = this.#sizes;
    for (let i = 0; i < sizes.length; i++) {
      if (sizes[i]! < size) continue;
      const idle = this.#idle[i]!;
      let buffer = idle.pop();
      if (buffer === undefined) buffer = new ArrayBuffer(sizes[i]!);
      else this.#idleBytes -= buffer.byteLength;
      this.#lent++;
      return new Uint8Array(buffer, 0, size);
    }
    return new Uint8Array(size);
  }

  /**
   * Takes back the buffer behind a view from {@linkcode take}; an exact allocation is left
   * to the garbage collector. The caller must not read or write the view afterwards, and
   * gives each view back at most once.
   */
  give(view: Uint8Array): void {
    const buffer = view.buffer as ArrayBuffer;
    const size = buffer.byteLength;
    // Exact allocations are above the largest size, never one of the sizes.
    const i = this.#sizes.indexOf(size);
    if (i < 0) return;
    this.#lent--;
    if (this.#closed || this.#idleBytes + size > this.#maxIdleBytes) return;
    this.#idle[i]!.push(buffer);
    this.#idleBytes += size;
  }

  /** Drops the idle buffers; buffers given back later are dropped too. */
  close(): void {
    this.#closed = true;
    for (const idle of this.#idle) idle.length = 0;
    this.#idleBytes = 0;
  }
}
