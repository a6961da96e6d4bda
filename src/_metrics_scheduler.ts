// Lets the producer run its metrics manager on the producer's own scheduler (one timer
// serves every stage) without a public `scheduler` option: the scheduler travels beside
// the options object, in a table only the core can reach.

import type { MetricsManagerOptions } from "./metrics.ts";
import type { Scheduler } from "./scheduler.ts";

const schedulers = new WeakMap<object, Scheduler>();

/** Marks `options` so the manager built from them runs on `scheduler`; returns `options`. */
export function onScheduler(
  options: MetricsManagerOptions,
  scheduler: Scheduler,
): MetricsManagerOptions {
  schedulers.set(options, scheduler);
  return options;
}

/** The scheduler `options` were marked with, if any. */
export function schedulerOf(options: MetricsManagerOptions): Scheduler | undefined {
  return schedulers.get(options);
}
