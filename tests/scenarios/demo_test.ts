// The demo script as a child process of the current runtime, on a small count; the full
// 100,000-record run is `deno task demo`, which CI runs after the suites.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runScript, type ScriptRun } from "../support/runtime.ts";

const DEMO = fileURLToPath(new URL("../../demo/demo.ts", import.meta.url));

function runDemo(args: string[]): Promise<ScriptRun> {
  // A bound, not a measurement: a demo that hangs is killed and reported.
  return runScript(DEMO, args, { boundMs: 90_000 });
}

test("demo puts records through the CLI path, prints metrics and finds every record it sent", async () => {
  const { code, output } = await runDemo(["--records", "3000"]);
  assert.equal(code, 0, output);
  assert.match(
    output,
    /webkpl put: 3,000 records to 'webkpl-demo' in [\d.]+ s: 3,000 stored, 0 failed/,
  );
  assert.match(output, /UserRecordsPut\s+Count\s+3,000\s+3,000\s/);
  assert.match(output, /UserRecordsReceived\s+Count\s+3,000\s/);
  assert.match(output, /records sent 3,000, found 3,000, missing 0, duplicates 0, unexpected 0/);
  assert.match(output, /^OK: found == sent/m);
});

test("demo rejects a bad record count", async () => {
  const { code, output } = await runDemo(["--records", "many"]);
  assert.notEqual(code, 0);
  assert.match(output, /'--records' must be a positive integer: got many/);
});
