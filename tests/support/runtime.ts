/**
 * The one place in the tests that knows which runtime runs them (Deno, Bun or Node) and how
 * that runtime starts a TypeScript file as a child process.
 */
import { spawn } from "node:child_process";
import process from "node:process";
import v8 from "node:v8";
import vm from "node:vm";

/** The runtime running this process. */
export type RuntimeName = "deno" | "bun" | "node";

/** The runtime running this process, detected by its global. */
export const runtimeName: RuntimeName = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

/**
 * Runs a full garbage collection now, for tests of what must survive one. Node and Deno
 * expose V8's `gc` once the flag is set at run time; Bun has its own call.
 */
export function collectGarbage(): void {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun !== undefined) {
    bun.gc(true);
    return;
  }
  v8.setFlagsFromString("--expose-gc");
  (vm.runInNewContext("gc") as () => void)();
}

/**
 * The arguments that make this runtime's executable (`process.execPath`) run the TypeScript file
 * `script` with `args`. Node (22.18 and later) strips the types by itself, as Bun does.
 */
export function scriptArgs(script: string, args: readonly string[] = []): string[] {
  return runtimeName === "deno" ? ["run", "--allow-all", script, ...args] : [script, ...args];
}

/** What a child script printed and how it ended. */
export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Standard output and standard error interleaved as they arrived. */
  output: string;
  /** True when the child outlived `boundMs` and was killed. */
  timedOut: boolean;
}

/** Options for {@linkcode runScript}. */
export interface RunScriptOptions {
  /** Written to the child's standard input, which is then closed. */
  input?: string;
  /** Variables added to this process's environment. */
  env?: Record<string, string>;
  /** A bound, not a measurement: a child still running after this long is killed. */
  boundMs?: number;
}

/** Runs `script` in a child of this runtime and resolves once it has exited. */
export function runScript(
  script: string,
  args: readonly string[],
  options: RunScriptOptions = {},
): Promise<ScriptRun> {
  const { input = "", env = {}, boundMs = 90_000 } = options;
  const child = spawn(process.execPath, scriptArgs(script, args), {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  const run: ScriptRun = { code: null, stdout: "", stderr: "", output: "", timedOut: false };
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    run.stdout += chunk;
    run.output += chunk;
  });
  child.stderr!.on("data", (chunk: string) => {
    run.stderr += chunk;
    run.output += chunk;
  });
  child.stdin!.on("error", () => {});
  child.stdin!.end(input);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      run.timedOut = true;
      process.kill(child.pid!, "SIGKILL");
    }, boundMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      run.code = code;
      resolve(run);
    });
  });
}
