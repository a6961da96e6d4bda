// How a user reaches webkpl before it is on JSR: a script of their own, outside the
// clone, under Deno (importing mod.ts by path) and under Bun (`import "webkpl"`).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type Emulator, startKinesalite } from "../support/emulators.ts";
import { createStream, createTestClient, uniqueStreamName } from "../support/kinesis_sdk.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");
const CHILD_BOUND_MS = 90_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<Run> {
  const child = spawn(command, args, {
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: "AKIDTEST",
      AWS_SECRET_ACCESS_KEY: "test-secret",
      AWS_REGION: "us-east-1",
      NO_COLOR: "1",
      ...options.env,
    },
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.on("data", (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => {
    // A bound, not a measurement: a child that never ends is killed and reported.
    const timer = setTimeout(() => process.kill(child.pid!, "SIGKILL"), CHILD_BOUND_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A user's script: one record through the default (AWS SDK) client, its result printed. */
function userScript(importFrom: string, endpoint: string, stream: string): string {
  return `import { Producer } from ${JSON.stringify(importFrom)};
await using producer = new Producer({ endpoint: ${JSON.stringify(endpoint)}, stream: ${
    JSON.stringify(stream)
  }, recordTtlMs: 5000 });
const result = await producer.put({ partitionKey: "k", data: "hello" });
console.log(JSON.stringify({ success: result.success, errorCode: result.errorCode, errorMessage: result.errorMessage }));
`;
}

function lastJson(text: string): Record<string, unknown> {
  const line = text.trim().split("\n").at(-1) ?? "";
  return JSON.parse(line);
}

test('package.json exports the entry points of deno.json (source for Bun, the build for Node), so `import "webkpl"` resolves', async () => {
  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8"));
  const deno = JSON.parse(await readFile(join(ROOT, "deno.json"), "utf8"));
  assert.deepEqual(Object.keys(pkg.exports), Object.keys(deno.exports));
  for (const [entry, source] of Object.entries<string>(deno.exports)) {
    // Bun runs the TypeScript source; Node gets the build that `npm pack` makes.
    const built = source.replace(/^\.\//, "./dist/").replace(/\.ts$/, "");
    assert.deepEqual(pkg.exports[entry], {
      types: `${built}.d.ts`,
      bun: source,
      default: `${built}.js`,
    });
  }
});

describe("a user's own script outside the clone", () => {
  let emulator: Emulator;
  let client: ReturnType<typeof createTestClient>;
  let dir: string;
  let stream: string;

  before(async () => {
    emulator = await startKinesalite();
    client = createTestClient(emulator.endpoint);
    dir = await mkdtemp(join(tmpdir(), "webkpl-user-"));
    stream = uniqueStreamName("user");
    await createStream(client, stream, { shardCount: 1 });
  });

  after(async () => {
    client?.destroy();
    await emulator?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test("Deno: `deno run -A --node-modules-dir=manual` on a script that imports the clone's mod.ts stores the record", async () => {
    const script = join(dir, "deno_user.ts");
    await writeFile(script, userScript(join(ROOT, "mod.ts"), emulator.endpoint, stream));
    // An empty Deno cache and --cached-only: the SDK must come from the clone's node_modules.
    const result = await run(
      join(BIN, "deno"),
      ["run", "-A", "--node-modules-dir=manual", "--cached-only", script],
      { cwd: dir, env: { DENO_DIR: join(dir, "deno-cache") } },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(lastJson(result.stdout).success, true, result.stdout);
  });

  test("Deno: when the SDK cannot be loaded, the record fails with one line, no stack trace", async () => {
    const script = join(dir, "deno_user_offline.ts");
    await writeFile(script, userScript(join(ROOT, "mod.ts"), emulator.endpoint, stream));
    // No flag and an empty cache that may not be filled: the SDK cannot be found.
    const result = await run(join(BIN, "deno"), ["run", "-A", "--cached-only", script], {
      cwd: dir,
      env: { DENO_DIR: join(dir, "deno-cache-empty") },
    });
    assert.equal(result.code, 0, result.stderr);
    const outcome = lastJson(result.stdout);
    assert.equal(outcome.errorCode, "ClientError");
    assert.doesNotMatch(String(outcome.errorMessage), /\n|\sat\s+file:/);
  });

  test('Bun: `import "webkpl"` from a project that has the clone in node_modules stores the record', async () => {
    const project = join(dir, "bun-project");
    await mkdir(join(project, "node_modules"), { recursive: true });
    await symlink(ROOT, join(project, "node_modules", "webkpl"), "dir");
    await writeFile(join(project, "package.json"), '{ "type": "module" }\n');
    await writeFile(
      join(project, "user.ts"),
      `import { InMemorySink } from "webkpl/sinks";\nif (typeof InMemorySink !== "function") throw new Error("no sinks");\n` +
        userScript("webkpl", emulator.endpoint, stream),
    );
    const result = await run(join(BIN, "bun"), ["user.ts"], { cwd: project });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(lastJson(result.stdout).success, true, result.stdout);
  });
});
