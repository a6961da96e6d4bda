/**
 * Launchers for the two Kinesis emulators the suite runs against: `kinesalite` and
 * `kinesis-local` (the npm build of kinesis-mock). Each runs as a `node` child process on
 * 127.0.0.1 and a free port, is ready when a real API call answers, and is stopped by pid.
 *
 * Both emulators would listen on every interface; they are started under
 * `_loopback_preload.cjs`, which forces every listener onto 127.0.0.1, picks free ports and
 * announces them on stdout. The same preload ends the emulator when its parent disappears,
 * so a crashed test run leaves nothing behind.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import type { KinesisClient as SdkKinesisClient } from "@aws-sdk/client-kinesis";
import { silentLogger } from "../../src/logger.ts";
import type { ProducerOptions } from "../../src/options.ts";
import { Producer } from "../../src/producer.ts";
import { createTestClient } from "./kinesis_sdk.ts";

/** A running emulator. */
export interface Emulator extends AsyncDisposable {
  /** Which emulator this is. */
  readonly name: "kinesalite" | "kinesis-local";
  /** Plain HTTP endpoint, `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /**
   * kinesis-local's HTTPS endpoint, `https://127.0.0.1:PORT`, serving its bundled
   * self-signed certificate (for tests that TLS verification stays on); `undefined` for
   * kinesalite.
   */
  readonly tlsEndpoint: string | undefined;
  /** Process id of the emulator (the `node` process itself, no wrapper). */
  readonly pid: number;
  /** Milliseconds from spawn to the first successful API call (for reports only). */
  readonly startupMs: number;
  /** Kills the process by pid and resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

/** Options shared by both launchers. */
export interface LaunchOptions {
  /**
   * How long to wait for the emulator to answer an API call.
   * @default {60000}
   */
  startTimeoutMs?: number;
  /**
   * The `node` executable; under Bun `process.execPath` is Bun, so it is not used.
   * @default {"node"}
   */
  nodePath?: string;
}

/** Options for {@linkcode startKinesalite}; times are how long a stream stays in a state. */
export interface KinesaliteOptions extends LaunchOptions {
  /** @default {5} */
  createStreamMs?: number;
  /** @default {5} */
  deleteStreamMs?: number;
  /** Time in UPDATING after SplitShard/MergeShards. @default {5} */
  updateStreamMs?: number;
  /** Open-shard limit across streams before LimitExceededException. @default {100} */
  shardLimit?: number;
}

/** Options for {@linkcode startKinesisLocal}; durations are milliseconds. */
export interface KinesisLocalOptions extends LaunchOptions {
  /** @default {5} */
  createStreamMs?: number;
  /** @default {5} */
  deleteStreamMs?: number;
  /** @default {5} */
  splitShardMs?: number;
  /** @default {5} */
  mergeShardsMs?: number;
  /** @default {5} */
  updateShardCountMs?: number;
  /** @default {100} */
  shardLimit?: number;
  /** kinesis-mock's LOG_LEVEL. @default {"WARN"} */
  logLevel?: "ERROR" | "WARN" | "INFO" | "DEBUG" | "TRACE";
}

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const PRELOAD = fileURLToPath(new URL("./_loopback_preload.cjs", import.meta.url));
const KINESALITE_CLI = fileURLToPath(
  new URL("../../node_modules/kinesalite/cli.js", import.meta.url),
);
const KINESIS_LOCAL_MAIN = fileURLToPath(
  new URL("../../node_modules/kinesis-local/main.js", import.meta.url),
);
const KINESIS_LOCAL_CERT = fileURLToPath(
  new URL("../../node_modules/kinesis-local/server.json", import.meta.url),
);
const LISTEN_PREFIX = "webkpl-loopback-listen ";
// The port kinesis-local is asked to serve TLS on; the preload moves it to a free one.
const KINESIS_LOCAL_TLS_LABEL = 4567;
const POLL_INTERVAL_MS = 50;
const OUTPUT_TAIL_CHARS = 4_000;

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Starts kinesalite (in-memory LevelDB) on 127.0.0.1 and a free port.
 *
 * @param options Stream state durations, shard limit, start timeout.
 * @returns The running emulator; call `stop()` (or `await using`) when done.
 * @throws {Error} When the process exits or does not answer within `startTimeoutMs`.
 *
 * @example Start, use, stop
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const kinesalite = await startKinesalite({ createStreamMs: 0 });
 * try {
 *   assert.match(kinesalite.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
 * } finally {
 *   await kinesalite.stop();
 * }
 * ```
 */
export function startKinesalite(options: KinesaliteOptions = {}): Promise<Emulator> {
  const {
    createStreamMs = 5,
    deleteStreamMs = 5,
    updateStreamMs = 5,
    shardLimit = 100,
  } = options;
  const args = [
    KINESALITE_CLI,
    "--createStreamMs",
    String(createStreamMs),
    "--deleteStreamMs",
    String(deleteStreamMs),
    "--updateStreamMs",
    String(updateStreamMs),
    "--shardLimit",
    String(shardLimit),
  ];
  // kinesalite's CLI asks for port 4567 (it reads `--port 0` as "default"); the preload
  // turns any requested port into a free one.
  return launch("kinesalite", args, {}, 4567, options);
}

/**
 * Starts kinesis-local (kinesis-mock) with its plain HTTP listener on 127.0.0.1 and a free
 * port; its TLS listener is also moved to loopback and a free port, and is not used.
 *
 * @param options Operation durations, shard limit, log level, start timeout.
 * @returns The running emulator; `endpoint` is the plain HTTP port.
 * @throws {Error} When the process exits or does not answer within `startTimeoutMs`.
 *
 * @example Start and stop with `await using`
 * ```ts
 * import assert from "node:assert/strict";
 *
 * await using kinesisLocal = await startKinesisLocal({ splitShardMs: 0 });
 * assert.ok(kinesisLocal.pid > 0);
 * ```
 */
export function startKinesisLocal(options: KinesisLocalOptions = {}): Promise<Emulator> {
  const {
    createStreamMs = 5,
    deleteStreamMs = 5,
    splitShardMs = 5,
    mergeShardsMs = 5,
    updateShardCountMs = 5,
    shardLimit = 100,
    logLevel = "WARN",
  } = options;
  const env = {
    KINESIS_MOCK_CERT_PATH: KINESIS_LOCAL_CERT,
    // Distinct labels so the preload's announcements say which listener is which.
    KINESIS_MOCK_TLS_PORT: String(KINESIS_LOCAL_TLS_LABEL),
    KINESIS_MOCK_PLAIN_PORT: "4568",
    CREATE_STREAM_DURATION: `${createStreamMs}ms`,
    DELETE_STREAM_DURATION: `${deleteStreamMs}ms`,
    SPLIT_SHARD_DURATION: `${splitShardMs}ms`,
    MERGE_SHARDS_DURATION: `${mergeShardsMs}ms`,
    UPDATE_SHARD_COUNT_DURATION: `${updateShardCountMs}ms`,
    SHARD_LIMIT: String(shardLimit),
    LOG_LEVEL: logLevel,
    // Pinned so an AWS_REGION or AWS_ACCOUNT_ID in the caller's environment changes nothing.
    AWS_REGION: "us-east-1",
    AWS_ACCOUNT_ID: "000000000000",
    SHOULD_PERSIST_DATA: "false",
    LOAD_DATA_IF_EXISTS: "false",
  };
  return launch("kinesis-local", [KINESIS_LOCAL_MAIN], env, 4568, options);
}

async function launch(
  name: Emulator["name"],
  args: string[],
  env: Record<string, string>,
  apiPortLabel: number,
  options: LaunchOptions,
): Promise<Emulator> {
  const { startTimeoutMs = 60_000, nodePath = "node" } = options;
  const started = performance.now();
  const child = spawn(nodePath, ["--require", PRELOAD, ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...env,
      WEBKPL_LOOPBACK_FREE_PORTS: "1",
      WEBKPL_EXIT_WITH_PARENT: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) {
    const error = await new Promise<Error>((resolve) => child.once("error", resolve));
    throw new Error(`${name} could not be spawned with '${nodePath}': ${error.message}`);
  }
  track(child);
  const emulator = new RunningEmulator(name, child, child.pid);
  try {
    const port = await emulator.portFor(apiPortLabel, startTimeoutMs);
    const endpoint = `http://127.0.0.1:${port}`;
    const tlsEndpoint = name === "kinesis-local"
      ? `https://127.0.0.1:${await emulator.portFor(KINESIS_LOCAL_TLS_LABEL, startTimeoutMs)}`
      : undefined;
    const deadline = started + startTimeoutMs;
    await waitUntilAnswering(endpoint, deadline, emulator);
    emulator.ready(endpoint, tlsEndpoint, performance.now() - started);
    return emulator;
  } catch (error) {
    await emulator.stop();
    throw new Error(`${name} did not start: ${(error as Error).message}\n${emulator.output}`, {
      cause: error,
    });
  }
}

class RunningEmulator implements Emulator {
  readonly name: Emulator["name"];
  readonly pid: number;
  #endpoint = "";
  #tlsEndpoint: string | undefined;
  #startupMs = 0;
  #child: ChildProcess;
  #ports = new Map<number, number>();
  #portWaiters: Array<() => boolean> = [];
  #output = "";
  #closed: Promise<void>;
  #hasClosed = false;
  #stopping: Promise<void> | undefined;

  constructor(name: Emulator["name"], child: ChildProcess, pid: number) {
    this.name = name;
    this.#child = child;
    this.pid = pid;
    this.#closed = new Promise((resolve) => {
      child.once("close", () => {
        this.#hasClosed = true;
        live.delete(child);
        this.#wakePortWaiters();
        resolve();
      });
    });
    child.once("error", (error) => {
      this.#append(`spawn error: ${error.message}\n`);
    });
    let pending = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      pending += chunk;
      for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
        this.#line(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => this.#append(chunk));
  }

  get endpoint(): string {
    return this.#endpoint;
  }

  get tlsEndpoint(): string | undefined {
    return this.#tlsEndpoint;
  }

  get startupMs(): number {
    return this.#startupMs;
  }

  get exited(): boolean {
    return this.#hasClosed;
  }

  /** The last few KB the process printed, for error messages. */
  get output(): string {
    return this.#output;
  }

  ready(endpoint: string, tlsEndpoint: string | undefined, startupMs: number): void {
    this.#endpoint = endpoint;
    this.#tlsEndpoint = tlsEndpoint;
    this.#startupMs = startupMs;
  }

  portFor(label: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#portWaiters = this.#portWaiters.filter((waiter) => waiter !== check);
        reject(new Error(`no listener announced within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        const port = this.#ports.get(label);
        if (port !== undefined) {
          clearTimeout(timer);
          resolve(port);
        } else if (this.#hasClosed) {
          clearTimeout(timer);
          reject(new Error(`exited with code ${this.#child.exitCode}`));
        } else {
          return false;
        }
        return true;
      };
      if (!check()) this.#portWaiters.push(check);
    });
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  async #stop(): Promise<void> {
    if (this.#hasClosed) return;
    // SIGKILL at once: the emulators keep nothing worth flushing, and kinesis-mock's graceful
    // shutdown waits up to 30 s for idle keep-alive connections. Sent by pid because Deno's
    // ChildProcess.kill() ignores a second signal once one was sent.
    killByPid(this.pid);
    await this.#closed;
  }

  #line(line: string): void {
    if (line.startsWith(LISTEN_PREFIX)) {
      const { requested, port } = JSON.parse(line.slice(LISTEN_PREFIX.length));
      this.#ports.set(requested, port);
      this.#wakePortWaiters();
    } else {
      this.#append(`${line}\n`);
    }
  }

  #wakePortWaiters(): void {
    this.#portWaiters = this.#portWaiters.filter((waiter) => !waiter());
  }

  #append(text: string): void {
    this.#output = (this.#output + text).slice(-OUTPUT_TAIL_CHARS);
  }
}

// A real API call, not a TCP connect: kinesis-mock accepts connections before it can answer.
async function waitUntilAnswering(
  endpoint: string,
  deadline: number,
  emulator: RunningEmulator,
): Promise<void> {
  const maxAttempts = Math.ceil((deadline - performance.now()) / POLL_INTERVAL_MS) + 1;
  let lastError = "no attempt made";
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (emulator.exited) throw new Error("exited while starting");
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        headers: {
          "content-type": "application/x-amz-json-1.1",
          "x-amz-target": "Kinesis_20131202.ListStreams",
          "x-amz-date": "20240101T000000Z",
          // Dummy SigV4 shape: kinesis-mock reads the account from the access key id.
          authorization:
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20240101/us-east-1/kinesis/aws4_request, " +
            "SignedHeaders=host, Signature=00",
        },
        body: "{}",
        signal: AbortSignal.timeout(2_000),
      });
      const text = await response.text();
      if (response.status === 200) return;
      lastError = `HTTP ${response.status}: ${text.slice(0, 200)}`;
    } catch (error) {
      lastError = (error as Error).message;
    }
    if (performance.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  throw new Error(`not answering ListStreams before the deadline: ${lastError}`);
}

function track(child: ChildProcess): void {
  live.add(child);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a test forgets stop() or the runner exits early: an exit hook can only
  // do synchronous work, so it sends SIGKILL without waiting.
  process.once("exit", () => {
    for (const running of live) {
      if (running.pid !== undefined) killByPid(running.pid);
    }
  });
}

function killByPid(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch (error) {
    // Already gone between the check and the signal.
    if ((error as { code?: string }).code !== "ESRCH") throw error;
  }
}

/** Test credentials both emulators accept (they check none). */
export const emulatorCredentials = { accessKeyId: "AKIDTEST", secretAccessKey: "test-secret" };

/** What {@linkcode useEmulator} hands the tests of a suite; set by its `before` hook. */
export interface EmulatorFixture {
  /** The running emulator. */
  emulator: Emulator;
  /** An SDK client on its plain HTTP endpoint. */
  client: SdkKinesisClient;
}

/**
 * Registers `before`/`after` hooks in the enclosing suite: `start` an emulator and an SDK
 * client on it before the first test, destroy the client and stop the emulator after the last.
 */
export function useEmulator(start: () => Promise<Emulator>): EmulatorFixture {
  const fixture = {} as EmulatorFixture;
  before(async () => {
    fixture.emulator = await start();
    fixture.client = createTestClient(fixture.emulator.endpoint);
  });
  after(async () => {
    fixture.client?.destroy();
    await fixture.emulator?.stop();
  });
  return fixture;
}

/** A silent producer on `emulator`'s plain endpoint in us-east-1; `options` override any of it. */
export function producerOn(emulator: Emulator, options: ProducerOptions = {}): Producer {
  return new Producer({
    endpoint: emulator.endpoint,
    region: "us-east-1",
    credentials: emulatorCredentials,
    logger: silentLogger,
    ...options,
  });
}
