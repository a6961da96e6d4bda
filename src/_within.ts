// "Wait at most N ms": races a promise against a deadline on the producer's scheduler (so
// a fake clock drives it in tests) and an optional abort signal, and cleans up both.

import { Deadline, type Scheduler } from "./scheduler.ts";

/** How a bounded wait ended. */
export type WaitOutcome = "done" | "timeout" | "aborted";

/**
 * Waits for `promise`, at most `ms` on `scheduler`'s clock or until `signal` aborts;
 * rejects when `promise` rejects first.
 */
export async function within(
  promise: Promise<unknown>,
  ms: number,
  scheduler: Scheduler,
  signal?: AbortSignal,
): Promise<WaitOutcome> {
  let cleanup = (): void => {};
  const stop = new Promise<"timeout" | "aborted">((resolve) => {
    const timer = new Deadline({ onDeadline: () => resolve("timeout") });
    scheduler.schedule(timer, scheduler.clock.now() + ms);
    const onAbort = () => resolve("aborted");
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    cleanup = () => {
      scheduler.cancel(timer);
      signal?.removeEventListener("abort", onAbort);
    };
  });
  try {
    return await Promise.race([promise.then(() => "done" as const), stop]);
  } finally {
    cleanup();
  }
}
