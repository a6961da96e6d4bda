/**
 * webkpl: the Kinesis Producer Library for Deno and Bun.
 *
 * @module
 */
export * from "./src/errors.ts";
