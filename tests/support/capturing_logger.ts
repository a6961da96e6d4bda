/**
 * A {@linkcode Logger} that keeps every call, for tests that count log lines or scan them
 * for secrets.
 *
 * @module
 */
import type { Logger } from "../../src/logger.ts";

/** The four logger levels. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** One logger call. */
export interface LogCall {
  level: LogLevel;
  message: string;
  data: unknown[];
}

/** Keeps every call made to it. */
export class CapturingLogger implements Logger {
  /** Every call, in order. */
  readonly calls: LogCall[] = [];

  debug(message: string, ...data: unknown[]): void {
    this.calls.push({ level: "debug", message, data });
  }

  info(message: string, ...data: unknown[]): void {
    this.calls.push({ level: "info", message, data });
  }

  warn(message: string, ...data: unknown[]): void {
    this.calls.push({ level: "warn", message, data });
  }

  error(message: string, ...data: unknown[]): void {
    this.calls.push({ level: "error", message, data });
  }

  /**
   * The calls at one level.
   *
   * @param level The level.
   * @returns Those calls, in order.
   */
  at(level: LogLevel): LogCall[] {
    return this.calls.filter((call) => call.level === level);
  }
}
