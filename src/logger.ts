/**
 * The logger the producer reports through. Any object with these four methods works:
 * `console`, a structured logger, or a test double.
 *
 * @module
 */

/** Where the producer reports what it cannot return to a caller. */
export interface Logger {
  /** Verbose detail, off by default. */
  debug(message: string, ...data: unknown[]): void;
  /** Notable events, off by default. */
  info(message: string, ...data: unknown[]): void;
  /** Something went wrong but nothing was lost. */
  warn(message: string, ...data: unknown[]): void;
  /** Something went wrong that a person should look at. */
  error(message: string, ...data: unknown[]): void;
}

function ignore(): void {}

/** The default logger: warnings and errors to the console, nothing else. */
export const consoleLogger: Logger = {
  debug: ignore,
  info: ignore,
  warn(message: string, ...data: unknown[]): void {
    console.warn(`webkpl: ${message}`, ...data);
  },
  error(message: string, ...data: unknown[]): void {
    console.error(`webkpl: ${message}`, ...data);
  },
};

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug: ignore,
  info: ignore,
  warn: ignore,
  error: ignore,
};
