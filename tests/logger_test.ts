import assert from "node:assert/strict";
import { test } from "node:test";
import { consoleLogger, silentLogger } from "../src/logger.ts";

/** Runs `body` with console.warn and console.error captured. */
function capture(body: () => void): string[][] {
  const lines: string[][] = [];
  const { warn, error } = console;
  console.warn = (...args: unknown[]) => void lines.push(["warn", ...args.map(String)]);
  console.error = (...args: unknown[]) => void lines.push(["error", ...args.map(String)]);
  try {
    body();
  } finally {
    console.warn = warn;
    console.error = error;
  }
  return lines;
}

test("consoleLogger prints warnings and errors with a webkpl prefix, and drops debug and info", () => {
  const lines = capture(() => {
    consoleLogger.debug("d");
    consoleLogger.info("i");
    consoleLogger.warn("w", 1);
    consoleLogger.error("e");
  });
  assert.deepEqual(lines, [["warn", "webkpl: w", "1"], ["error", "webkpl: e"]]);
});

test("silentLogger prints nothing", () => {
  const lines = capture(() => {
    silentLogger.debug("d");
    silentLogger.info("i");
    silentLogger.warn("w");
    silentLogger.error("e");
  });
  assert.deepEqual(lines, []);
});
