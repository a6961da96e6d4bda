import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runScript, type ScriptRun } from "../support/runtime.ts";

const script = fileURLToPath(new URL("../support/idle_script.ts", import.meta.url));

/** Runs the idle script in a child of the same runtime. */
function runIdleScript(mode: string): Promise<ScriptRun> {
  // A bound, not a measurement: a producer that holds the process open never exits.
  return runScript(script, [mode], { boundMs: 20_000 });
}

test("Producer left open with nothing outstanding does not keep the process alive", async () => {
  const { code, output, timedOut } = await runIdleScript("idle");
  assert.equal(timedOut, false, `the process did not exit: ${output}`);
  assert.equal(code, 0, output);
  assert.match(output, /settled true/);
});

test("Producer with a buffered record keeps the process alive until the record settles", async () => {
  const { code, output, timedOut } = await runIdleScript("buffered");
  assert.equal(timedOut, false, `the process did not exit: ${output}`);
  assert.equal(code, 0, output);
  assert.match(output, /settled true/);
});
