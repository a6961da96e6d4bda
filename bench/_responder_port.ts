/**
 * The port `bench/responder.ts` listens on: the first line it prints is `{"port": N}`.
 *
 * @module
 */
import type { ChildProcess } from "node:child_process";

/**
 * Reads the responder's port from its standard output.
 *
 * @param child The responder's process, started with its standard output piped.
 * @returns The port; rejects when the responder exits first.
 */
export function responderPort(child: ChildProcess): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let buffered = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf("\n");
      if (newline >= 0) resolve(JSON.parse(buffered.slice(0, newline)).port);
    });
    child.once("close", (code) => reject(new Error(`The responder exited with code ${code}`)));
  });
}
