// cli put stopped by a signal: a child CLI against an endpoint that accepts connections and
// never answers, so records stay in flight when SIGINT or SIGTERM arrives.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { eventually, type RunningCli, startCli } from "../support/cli_process.ts";

describe("cli put stopped by a signal", () => {
  let endpoint: string;
  let dir: string;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    dir = await mkdtemp(join(tmpdir(), "webkpl-signal-"));
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  function start(failures: string, closeTimeoutMs: number): RunningCli {
    return startCli([
      "put",
      "--stream",
      "s",
      "--endpoint",
      endpoint,
      // The start-up check waits this long for the silent endpoint, then warns.
      "--request-timeout-ms",
      "1000",
      "--max-outstanding-records",
      "4",
      "--progress",
      "always",
      "--failures",
      failures,
      "--close-timeout-ms",
      String(closeTimeoutMs),
    ]);
  }

  test("SIGINT: stops reading, closes within the timeout, writes every unsettled record to failures, prints the summary, exits 130", async () => {
    const failures = join(dir, "interrupted.ndjson");
    const cli = start(failures, 200);
    const lines = Array.from({ length: 10 }, (_, i) => `line ${i}`);
    cli.write(lines.join("\n") + "\n");
    // Four records are admitted (in flight, never answered); the others wait for room.
    await eventually(() => /outstanding 4/.test(cli.stderr()), "four records in flight", 60_000);
    process.kill(cli.pid, "SIGINT");
    const run = await cli.done;
    assert.equal(run.code, 130, run.stderr);
    assert.match(run.stderr, /SIGINT: stopped reading/);
    assert.match(run.stderr, /webkpl put: 10 records to 's' in .*: 0 stored, 10 failed/);
    assert.match(run.stderr, /stopped early: stopped by SIGINT/);
    const written = (await readFile(failures, "utf8")).trim().split("\n").map((line) =>
      JSON.parse(line)
    );
    assert.deepEqual(written.map((entry) => entry.data).sort(), [...lines].sort());
    assert.ok(written.every((entry) => entry.errorCode === "ProducerClosed"));
  });

  test("SIGTERM twice: the second exits at once, without waiting for the close timeout", async () => {
    const failures = join(dir, "terminated.ndjson");
    const cli = start(failures, 600_000);
    cli.write("a\nb\n");
    await eventually(() => /outstanding 2/.test(cli.stderr()), "two records in flight", 60_000);
    process.kill(cli.pid, "SIGTERM");
    await eventually(() => /SIGTERM: stopped reading/.test(cli.stderr()), "the first stop");
    process.kill(cli.pid, "SIGTERM");
    const run = await cli.done;
    assert.equal(run.code, 143, run.stderr);
    assert.match(run.stderr, /SIGTERM again: exiting at once/);
  });
});
