// Run by `.ci/test-pack` under the repository's Node: starts kinesalite on a free loopback port,
// creates a stream, runs the quick start from the folder where the tarball was installed, once
// under Bun and once under Node, then reads the stream back and checks each run's records are
// there, then runs the README's testing example (orders_test.ts) with `bun test` and `node --test`.
// Prints one line per run and a closing count; exits 1 if any run failed.
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { startKinesalite } from "../../tests/support/emulators.ts";
import {
  createStream,
  createTestClient,
  uniqueStreamName,
} from "../../tests/support/kinesis_sdk.ts";
import { readStream } from "../../tests/support/readback.ts";

const app = process.argv[2];
if (app === undefined) throw new Error("Usage: node .ci/pack/run.ts APP_FOLDER");
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const runtimes = [
  { name: "bun", command: join(ROOT, "node_modules/.bin/bun") },
  { name: "node", command: process.execPath },
];
const EXPECTED = 5;

/** Runs `command args` in the app folder; resolves with its exit code. */
function runInApp(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<number | null> {
  const child = spawn(command, args, {
    cwd: app,
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  return new Promise((resolve) => {
    // A bound, not a measurement: a run that hangs is killed and counted as failed.
    const timer = setTimeout(() => process.kill(child.pid!, "SIGKILL"), 60_000);
    child.on("error", () => {});
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

const kinesalite = await startKinesalite();
const codes = new Map<string, number | null>();
let texts: string[];
// try/finally rather than `await using`, which Node 22 cannot parse: the driver runs there too.
try {
  const client = createTestClient(kinesalite.endpoint);
  const stream = uniqueStreamName("pack");
  await createStream(client, stream, { shardCount: 2 });
  for (const { name, command } of runtimes) {
    const version = await new Promise<string>((resolve) => {
      const child = spawn(command, ["--version"], { stdio: ["ignore", "pipe", "ignore"] });
      let out = "";
      child.stdout.on("data", (chunk) => (out += chunk));
      child.on("close", () => resolve(out.trim()));
    });
    console.log(`$ (cd ${app} && ${name} quick_start.ts)   # ${name} ${version}`);
    const env = { KINESIS_ENDPOINT: kinesalite.endpoint, STREAM: stream, TAG: name };
    codes.set(name, await runInApp(command, ["quick_start.ts"], env));
  }
  const { records } = await readStream(client, stream);
  client.destroy();
  texts = records.map((record) => new TextDecoder().decode(record.data));
} finally {
  await kinesalite.stop();
}
let passed = 0;
for (const { name } of runtimes) {
  const found = texts.filter((text) => text.startsWith(`${name} `)).length;
  const ok = codes.get(name) === 0 && found === EXPECTED;
  if (ok) passed++;
  console.log(
    `pack ${name}: exit ${codes.get(name)}, ${found} of ${EXPECTED} records in the stream: ${
      ok ? "ok" : "FAILED"
    }`,
  );
}
// The README's testing example: a user's test on InMemoryKinesis, no emulator.
for (const { name, command } of runtimes) {
  const args = name === "bun" ? ["test", "orders_test.ts"] : ["--test", "orders_test.ts"];
  console.log(`$ (cd ${app} && ${name} ${args.join(" ")})`);
  const code = await runInApp(command, args, {});
  if (code === 0) passed++;
  console.log(`pack ${name} testing example: exit ${code}: ${code === 0 ? "ok" : "FAILED"}`);
}
const total = runtimes.length * 2;
console.log(`pack: ${passed} passed, ${total - passed} failed`);
process.exitCode = passed === total ? 0 : 1;
