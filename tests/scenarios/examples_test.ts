// The examples, run as a user would against kinesalite: lines of any length, split in
// linear time, a line longer than a record refused without stopping the rest.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { startKinesalite, useEmulator } from "../support/emulators.ts";
import { createStream, uniqueStreamName } from "../support/kinesis_sdk.ts";
import { readStream } from "../support/readback.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");
const CHILD_BOUND_MS = 90_000;
const LONG_LINE = "x".repeat(3 * 1024 * 1024);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe("examples against kinesalite", () => {
  const env = useEmulator(startKinesalite);
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "webkpl-examples-"));
  });

  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test("examples/bun_pipe_file.ts skips a line longer than a record and stores the others", async () => {
    const stream = uniqueStreamName("example-bun");
    await createStream(env.client, stream, { shardCount: 1 });
    const file = join(dir, "events.txt");
    await writeFile(file, `first\n${LONG_LINE}\nlast\n`);
    const child = spawn(join(BIN, "bun"), [
      join(ROOT, "examples", "bun_pipe_file.ts"),
      file,
      stream,
    ], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: "AKIDTEST",
        AWS_SECRET_ACCESS_KEY: "test-secret",
        AWS_REGION: "us-east-1",
        KINESIS_ENDPOINT: env.emulator.endpoint,
      },
    });
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => {
      // A bound, not a measurement: a child that never ends is killed and reported.
      const timer = setTimeout(() => process.kill(child.pid!, "SIGKILL"), CHILD_BOUND_MS);
      child.on("close", (status) => {
        clearTimeout(timer);
        resolve(status);
      });
    });
    assert.equal(code, 1, output);
    assert.match(output, /line 2 is longer than \d+ characters: skipped/);
    assert.match(output, /2 lines stored in .*, 1 skipped/);
    const contents = await readStream(env.client, stream);
    const found = contents.records.map((record) => new TextDecoder().decode(record.data)).sort();
    assert.deepEqual(found, ["first", "last"]);
  });

  test("examples/http_server.ts refuses a body with a line longer than a record, and serves the next one", async () => {
    const stream = uniqueStreamName("example-http");
    await createStream(env.client, stream, { shardCount: 1 });
    const port = await freePort();
    const child = spawn(
      join(BIN, "deno"),
      ["run", "--allow-all", join(ROOT, "examples", "http_server.ts")],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: "AKIDTEST",
          AWS_SECRET_ACCESS_KEY: "test-secret",
          AWS_REGION: "us-east-1",
          KINESIS_ENDPOINT: env.emulator.endpoint,
          STREAM: stream,
          PORT: String(port),
        },
      },
    );
    child.stdout!.resume();
    child.stderr!.resume();
    const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
    try {
      const url = `http://127.0.0.1:${port}/`;
      let up = false;
      // Wait for the server to listen: a bound, not a measurement.
      for (let i = 0; i < 300 && !up; i++) {
        up = await fetch(url).then(
          (response) => response.body?.cancel().then(() => true) ?? true,
          () => false,
        );
        if (!up) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(up, "the server listens");
      const refused = await fetch(url, { method: "POST", body: `a\n${LONG_LINE}\nb\n` });
      assert.equal(refused.status, 400);
      assert.match(await refused.text(), /Line 2 is longer than \d+ characters/);
      const served = await fetch(url, { method: "POST", body: "c\nd\n" });
      assert.equal(served.status, 200);
      assert.deepEqual(await served.json(), { records: 2, failed: 0, errors: [] });
    } finally {
      process.kill(child.pid!, "SIGKILL");
      await exited;
    }
  });
});
