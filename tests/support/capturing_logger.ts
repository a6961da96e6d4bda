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
   * The calls at the given levels.
   *
   * @param levels One level or more.
   * @returns Those calls, in order.
   */
  at(...levels: LogLevel[]): LogCall[] {
    return this.calls.filter((call) => levels.includes(call.level));
  }

  /**
   * The calls as text, each its message and then its data.
   *
   * @param levels The levels to keep; every call without any.
   * @returns One line per call, in order.
   */
  lines(...levels: LogLevel[]): string[] {
    const calls = levels.length === 0 ? this.calls : this.at(...levels);
    return calls.map((call) => [call.message, ...call.data.map(String)].join(" "));
  }
}
