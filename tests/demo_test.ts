// The demo script as a child process of the current runtime, on a small count; the full
// 100,000-record run is `deno task demo`, which CI runs after the suites.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";

const DEMO = fileURLToPath(new URL("../demo/demo.ts", import.meta.url));
const isDeno = "Deno" in globalThis;

function runDemo(args: string[]): Promise<{ code: number | null; output: string }> {
  const runtimeArgs = isDeno ? ["run", "--allow-all", DEMO, ...args] : [DEMO, ...args];
  const child = spawn(process.execPath, runtimeArgs, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => (output += chunk));
  child.stderr!.on("data", (chunk: string) => (output += chunk));
  return new Promise((resolve) => {
    // A bound, not a measurement: a demo that hangs is killed and reported.
    const timer = setTimeout(() => process.kill(child.pid!, "SIGKILL"), 90_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
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
