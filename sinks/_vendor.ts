// What the vendor sinks share: cutting a payload into requests a backend accepts, and an
// HTTP POST that retries what is worth retrying, honouring `Retry-After`.

import { backoff, type BackoffPolicy } from "../src/_backoff.ts";
import type { Clock } from "../src/clock.ts";
import { errorText } from "../src/_describe.ts";
import type { Logger } from "../src/logger.ts";

const encoder = new TextEncoder();

/**
 * Options every vendor sink takes, with one meaning in each: where the sink reports what it
 * could not send, and how long one request to the vendor may take.
 */
export interface VendorSinkOptions {
  /** Where retries, dropped samples and series the backend would reject are reported. */
  logger?: Logger;
  /**
   * How long one HTTP request may take before it is abandoned, in milliseconds.
   *
   * @default {10000}
   */
  requestTimeoutMs?: number;
}

/** UTF-8 bytes of `text`. */
export function byteLength(text: string): number {
  return encoder.encode(text).length;
}

/** The limits of one request, and how an item counts against them. */
export interface ChunkLimits<T> {
  /** Bytes a request carries before any item (its envelope). */
  readonly baseBytes: number;
  /** Most bytes in one request, envelope included. */
  readonly maxBytes: number;
  /** Most items in one request. */
  readonly maxCount?: number;
  /** Bytes an item adds, its separator included. */
  sizeOf(item: T): number;
}

/**
 * Cuts `items`, in order, into chunks within `limits`. An item too large for any chunk
 * still goes, alone, so nothing is dropped here; the backend is left to refuse it.
 */
export function chunkBySize<T>(items: Iterable<T>, limits: ChunkLimits<T>): T[][] {
  const maxCount = limits.maxCount ?? Infinity;
  const chunks: T[][] = [];
  let chunk: T[] = [];
  let bytes = limits.baseBytes;
  for (const item of items) {
    const size = limits.sizeOf(item);
    if (chunk.length > 0 && (chunk.length === maxCount || bytes + size > limits.maxBytes)) {
      chunks.push(chunk);
      chunk = [];
      bytes = limits.baseBytes;
    }
    chunk.push(item);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** One POST and how to retry it. */
export interface PostOptions {
  readonly fetch: (input: string, init: RequestInit) => Promise<Response>;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** How long one request may take. */
  readonly timeoutMs: number;
  /** Tries in all, the first included. */
  readonly attempts: number;
  readonly backoff: BackoffPolicy;
  /** Times the waits between tries. */
  readonly clock: Clock;
  /** Told before each wait: why the try failed, the wait, and the number of the next try. */
  onRetry(failure: string, delayMs: number, nextAttempt: number): void;
}

/**
 * POSTs `body`, retrying network failures, 408, 429 and 5xx answers with jittered backoff,
 * waiting at least what `Retry-After` (or Datadog's `X-RateLimit-Reset`) asks.
 *
 * @returns `undefined` on success, else why it failed for good.
 */
export async function postWithRetry(options: PostOptions): Promise<string | undefined> {
  const { attempts } = options;
  for (let attempt = 1;; attempt++) {
    let failure: string;
    let retryable: boolean;
    let retryAfter = 0;
    try {
      const response = await options.fetch(options.url, {
        method: "POST",
        headers: options.headers,
        body: options.body,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      const text = await response.text();
      if (response.ok) return undefined;
      failure = `answered HTTP ${response.status} ${text.slice(0, 200)}`.trimEnd();
      retryable = response.status === 408 || response.status === 429 || response.status >= 500;
      retryAfter = retryAfterMs(response.headers);
    } catch (error) {
      failure = `failed: ${errorText(error)}`;
      retryable = true;
    }
    if (!retryable || attempt >= attempts) {
      return `${failure} after ${attempt} attempt${attempt === 1 ? "" : "s"}`;
    }
    // Jittered, so clients throttled together do not retry together.
    const policy = options.backoff;
    const delay = Math.min(
      policy.maxMs,
      Math.max(retryAfter, backoff(policy, attempt, Math.random)),
    );
    options.onRetry(failure, delay, attempt + 1);
    await new Promise<void>((resolve) => options.clock.setTimer(resolve, delay));
  }
}

/** The wait a 429 or 503 asks for, from `Retry-After` or `X-RateLimit-Reset` (seconds). */
function retryAfterMs(headers: Headers): number {
  const value = headers.get("retry-after") ?? headers.get("x-ratelimit-reset");
  const seconds = value === null ? Number.NaN : Number(value);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
}
