import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const script = fileURLToPath(new URL("./support/idle_script.ts", import.meta.url));
const isDeno = "Deno" in globalThis;

/** Runs the idle script in a child of the same runtime; resolves with its output and exit code. */
function runIdleScript(
  mode: string,
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  const args = isDeno ? ["run", "--allow-all", script, mode] : ["run", script, mode];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  return new Promise((resolve) => {
    // A bound, not a measurement: a producer that holds the process open never exits.
    const timer = setTimeout(() => {
      process.kill(child.pid!, "SIGKILL");
    }, 20_000);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut: signal === "SIGKILL" });
    });
  });
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
