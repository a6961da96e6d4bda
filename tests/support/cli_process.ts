/**
 * The command line (cli.ts) run as a child of the current runtime, with test credentials and
 * region in its environment, for the tests of cli.ts and the CLI scenarios.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { scriptArgs } from "./runtime.ts";

const CLI = fileURLToPath(new URL("../../cli.ts", import.meta.url));
const CHILD_BOUND_MS = 90_000;

/** How a child CLI ended and what it printed. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI running in a child of this runtime, its standard input still open. */
export interface RunningCli {
  readonly pid: number;
  /** Standard error so far. */
  stderr(): string;
  /** Writes to standard input; `end` closes it. */
  write(text: string, end?: boolean): void;
  /** Resolves when the child has exited. */
  readonly done: Promise<Run>;
}

/** Starts the CLI in a child of this runtime, its standard input open. */
export function startCli(args: string[], env: Record<string, string | undefined> = {}): RunningCli {
  const childEnv: Record<string, string | undefined> = {
    ...process.env,
    AWS_ACCESS_KEY_ID: "AKIDTEST",
    AWS_SECRET_ACCESS_KEY: "test-secret",
    AWS_REGION: "us-east-1",
    NO_COLOR: "1",
    ...env,
  };
  for (const [key, value] of Object.entries(childEnv)) {
    if (value === undefined) delete childEnv[key];
  }
  const child = spawn(process.execPath, scriptArgs(CLI, args), {
    stdio: ["pipe", "pipe", "pipe"],
    env: childEnv as Record<string, string>,
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.on("data", (chunk: string) => (stderr += chunk));
  child.stdin!.on("error", () => {});
  const done = new Promise<Run>((resolve) => {
    // A bound, not a measurement: a CLI that never ends is killed and reported.
    const timer = setTimeout(() => process.kill(child.pid!, "SIGKILL"), CHILD_BOUND_MS);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === null ? null : -1), stdout, stderr });
    });
  });
  return {
    pid: child.pid!,
    stderr: () => stderr,
    write: (text, end = false) => {
      if (end) child.stdin!.end(text);
      else child.stdin!.write(text);
    },
    done,
  };
}

/** Runs the CLI in a child of this runtime with `input` on its standard input. */
export function runCli(
  args: string[],
  input = "",
  env: Record<string, string | undefined> = {},
): Promise<Run> {
  const running = startCli(args, env);
  running.write(input, true);
  return running.done;
}

/** Waits for `check`, polling; a bound, not a measurement. */
export async function eventually(
  check: () => boolean,
  what: string,
  bound = 10_000,
): Promise<void> {
  for (let waited = 0; !check(); waited += 20) {
    assert.ok(waited < bound, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
