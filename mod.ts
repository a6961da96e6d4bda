/**
 * webkpl: the Kinesis Producer Library for Deno and Bun.
 *
 * @module
 */
export * from "./src/errors.ts";
export * from "./src/metrics.ts";
export * from "./src/metrics_sink.ts";
export { type Clock, systemClock, type TimerHandle } from "./src/clock.ts";
export { consoleLogger, type Logger, silentLogger } from "./src/logger.ts";
export type { Deadline, DeadlineTask, Scheduler } from "./src/scheduler.ts";
