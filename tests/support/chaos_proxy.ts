/**
 * A loopback HTTP proxy between the SDK and an emulator that injects the faults real Kinesis
 * produces, from a seeded random source, and counts everything it did.
 *
 * The SDK speaks AWS JSON 1.1 to Kinesis (`X-Amz-Target: Kinesis_20131202.<Operation>`,
 * `Content-Type: application/x-amz-json-1.1`); requests in any other protocol pass through
 * untouched and are counted as `unparsed`.
 *
 * Faults are honest about what was stored:
 * - Per-record faults (throttle, InternalFailure, hot shard) take the chosen entries out of
 *   the request before it is forwarded and splice failure entries into the response at their
 *   positions, so the emulator stores exactly the records the client is told succeeded.
 * - Whole-request faults before forwarding (reset, 500, 503, throttling 400, wrong count)
 *   store nothing.
 * - Faults after forwarding (reset, dropped response, a delay the client gave up on, wrong
 *   count) leave records stored that the client never hears about as successes: the
 *   duplicate cases. Their shard and sequence numbers are kept in `unconfirmed()`, as are those
 *   of a request answered without a fault whose client hung up while it was forwarded.
 *
 * Faults apply to the operations in `operations` (PutRecords by default); everything else is
 * forwarded as is. Each group of faults is a file of `chaos/`, one answer per fault:
 * `record_faults.ts`, `before_forward.ts`, `after_forward.ts`; `chaos/wire.ts` speaks the
 * protocol.
 *
 * @module
 */
import http from "node:http";
import type { Socket } from "node:net";
import { Buffer } from "node:buffer";
import {
  AFTER_FORWARD,
  AFTER_FORWARD_FAULTS,
  type ForwardedRequest,
} from "./chaos/after_forward.ts";
import { BEFORE_FORWARD, BEFORE_FORWARD_FAULTS } from "./chaos/before_forward.ts";
import { RECORD_ANSWERS, RECORD_FAULTS, routesInto, throttled } from "./chaos/record_faults.ts";
import {
  JSON_11,
  parseJson,
  putRecordsAnswer,
  type PutRecordsEntry,
  readBody,
  reply,
  replyJson,
  type ResultEntry,
  TARGET_PREFIX,
  type Upstream,
} from "./chaos/wire.ts";

/** Probabilities in [0, 1]; each group must sum to at most 1. */
export interface ChaosRates {
  /** Per PutRecords entry: answered ProvisionedThroughputExceededException, not stored. */
  recordThrottle?: number;
  /** Per PutRecords entry: answered InternalFailure, not stored. */
  recordInternalFailure?: number;
  /** Per request, not forwarded: the connection is destroyed. */
  resetBeforeForward?: number;
  /** Per request, not forwarded: HTTP 500 InternalFailure. */
  http500?: number;
  /** Per request, not forwarded: HTTP 503 ServiceUnavailable. */
  http503?: number;
  /** Per request, not forwarded: HTTP 400 ProvisionedThroughputExceededException. */
  throttle400?: number;
  /** Per request, not forwarded: HTTP 400 LimitExceededException. */
  limitExceeded400?: number;
  /** Per PutRecords request, not forwarded: 200 with one entry fewer than records sent. */
  wrongCountBeforeForward?: number;
  /** Per forwarded request: the emulator applied it, then the connection is destroyed. */
  resetAfterForward?: number;
  /** Per forwarded request: the emulator applied it, the response is never sent. */
  dropResponse?: number;
  /** Per forwarded request: the response is held for `delayMs` first. */
  delayResponse?: number;
  /** Per forwarded PutRecords: the emulator applied it, the response lacks its last entry. */
  wrongCountAfterForward?: number;
}

/** A shard whose every record is throttled (the hash range comes from ListShards). */
export interface HotShard {
  shardId: string;
  startingHashKey: bigint | string;
  endingHashKey: bigint | string;
}

/** What the proxy does; change it while running with {@linkcode ChaosProxy.configure}. */
export interface ChaosSettings {
  /** @default {{}} (no faults) */
  rates: ChaosRates;
  /** How long `delayResponse` holds a response. @default {1000} */
  delayMs: number;
  /** How long a dropped response keeps the connection open before destroying it. @default {30000} */
  dropHoldMs: number;
  /** Throttle every record routed to this shard. @default {undefined} */
  hotShard: HotShard | undefined;
  /** Operations faults apply to. @default {["PutRecords"]} */
  operations: readonly string[];
}

/** Options for {@linkcode startChaosProxy}. */
export interface ChaosProxyOptions extends Partial<ChaosSettings> {
  /** The emulator, `http://127.0.0.1:PORT`. */
  upstream: string;
  /** Seed of the random source. @default {1} */
  seed?: number;
}

/** Everything the proxy did, since it started. */
export interface ChaosCounts {
  /** Requests received. */
  requests: number;
  /** Requests by operation name (`X-Amz-Target` suffix). */
  byOperation: Record<string, number>;
  /** Requests not in JSON 1.1 (forwarded untouched). */
  unparsed: number;
  /** Requests sent to the emulator. */
  forwarded: number;
  /** Forwarded requests the emulator did not answer (network error). */
  upstreamErrors: number;
  /** PutRecords entries received. */
  records: number;
  /** PutRecords entries sent to the emulator. */
  recordsForwarded: number;
  /** Entries answered ProvisionedThroughputExceededException by `recordThrottle`. */
  recordThrottle: number;
  /** Entries answered InternalFailure by `recordInternalFailure`. */
  recordInternalFailure: number;
  /** Entries answered ProvisionedThroughputExceededException because of the hot shard. */
  hotShardThrottle: number;
  resetBeforeForward: number;
  http500: number;
  http503: number;
  throttle400: number;
  limitExceeded400: number;
  wrongCountBeforeForward: number;
  resetAfterForward: number;
  dropResponse: number;
  delayResponse: number;
  wrongCountAfterForward: number;
  /** Forwarded requests whose response did not reach the client. */
  responsesLost: number;
  /** Records stored by the emulator that the client was not told succeeded. */
  recordsUnconfirmed: number;
}

/** Where a record the client never heard about was stored. */
export interface UnconfirmedRecord {
  shardId: string;
  sequenceNumber: string;
  /** The fault that hid it, or `clientGone` when the client hung up while it was forwarded. */
  fault:
    | "resetAfterForward"
    | "dropResponse"
    | "delayResponse"
    | "wrongCountAfterForward"
    | "clientGone";
}

/** A running chaos proxy. */
export interface ChaosProxy extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`; give it to the client as its endpoint. */
  readonly endpoint: string;
  /** A copy of the counts so far. */
  readonly counts: ChaosCounts;
  /**
   * Changes some settings; the others stay.
   *
   * @param settings The settings to change.
   * @throws {RangeError} When a rate is outside [0, 1] or a group sums to more than 1.
   */
  configure(settings: Partial<ChaosSettings>): void;
  /** Records stored upstream whose success the client never heard, in the order hidden. */
  unconfirmed(): UnconfirmedRecord[];
  /**
   * Resolves once no request is being handled (held and delayed ones included), so counts
   * are final for everything sent so far.
   */
  settled(): Promise<void>;
  /** Stops listening, ends held connections and in-flight forwards. Idempotent. */
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "keep-alive",
  "expect",
  "upgrade",
]);
/**
 * Starts a chaos proxy on 127.0.0.1 and a free port in front of an emulator.
 *
 * @param options The upstream, seed and initial settings.
 * @returns The running proxy; `close()` it when done.
 * @throws {RangeError} When a rate is outside [0, 1] or a group sums to more than 1.
 *
 * @example Throttle every record
 * ```ts
 * import assert from "node:assert/strict";
 * import { PutRecordsCommand } from "@aws-sdk/client-kinesis";
 * import { startKinesalite } from "./emulators.ts";
 * import { createStream, createTestClient } from "./kinesis_sdk.ts";
 *
 * await using kinesalite = await startKinesalite();
 * await using proxy = await startChaosProxy({
 *   upstream: kinesalite.endpoint,
 *   rates: { recordThrottle: 1 },
 * });
 * const client = createTestClient(proxy.endpoint, { maxAttempts: 1 });
 * await createStream(client, "events");
 * const output = await client.send(new PutRecordsCommand({
 *   StreamName: "events",
 *   Records: [{ PartitionKey: "k", Data: new Uint8Array([1]) }],
 * }));
 * assert.equal(output.Records?.[0]?.ErrorCode, "ProvisionedThroughputExceededException");
 * assert.equal(proxy.counts.recordThrottle, 1);
 * client.destroy();
 * ```
 */
export async function startChaosProxy(options: ChaosProxyOptions): Promise<ChaosProxy> {
  const proxy = new ChaosProxyServer(options);
  await proxy.listen();
  return proxy;
}

class ChaosProxyServer implements ChaosProxy {
  #upstream: string;
  #random: () => number;
  #settings: ChaosSettings = {
    rates: {},
    delayMs: 1_000,
    dropHoldMs: 30_000,
    hotShard: undefined,
    operations: ["PutRecords"],
  };
  #hotRange: [bigint, bigint] | undefined;
  #counts: ChaosCounts = emptyCounts();
  #unconfirmed: UnconfirmedRecord[] = [];
  #server: http.Server;
  #sockets = new Set<Socket>();
  #handlers = new Set<Promise<void>>();
  #waits = new Set<() => void>();
  #abort = new AbortController();
  #endpoint = "";
  #closing: Promise<void> | undefined;

  constructor(options: ChaosProxyOptions) {
    const { upstream, seed = 1, ...settings } = options;
    this.#upstream = upstream.replace(/\/+$/, "");
    this.#random = mulberry32(seed);
    this.configure(settings);
    this.#server = http.createServer((req, res) => {
      const handler = this.#handle(req, res).catch(() => {
        // The client or upstream went away mid-reply; there is nobody left to tell.
        req.socket.destroy();
      });
      this.#handlers.add(handler);
      void handler.finally(() => this.#handlers.delete(handler));
    });
    this.#server.on("connection", (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once("close", () => this.#sockets.delete(socket));
    });
  }

  get endpoint(): string {
    return this.#endpoint;
  }

  get counts(): ChaosCounts {
    return { ...this.#counts, byOperation: { ...this.#counts.byOperation } };
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(0, "127.0.0.1", () => {
        const address = this.#server.address();
        if (address === null || typeof address === "string") {
          reject(new Error("Chaos proxy has no TCP address"));
          return;
        }
        this.#endpoint = `http://127.0.0.1:${address.port}`;
        resolve();
      });
    });
  }

  configure(settings: Partial<ChaosSettings>): void {
    const next = { ...this.#settings };
    for (const [key, value] of Object.entries(settings)) {
      if (value !== undefined || key === "hotShard") {
        (next as Record<string, unknown>)[key] = value;
      }
    }
    validateRates(next.rates);
    for (const name of ["delayMs", "dropHoldMs"] as const) {
      if (!Number.isFinite(next[name]) || next[name] < 0) {
        throw new RangeError(
          `Cannot configure chaos proxy as '${name}' must be a non-negative number: current value is ${
            next[name]
          }`,
        );
      }
    }
    this.#hotRange = next.hotShard === undefined
      ? undefined
      : [BigInt(next.hotShard.startingHashKey), BigInt(next.hotShard.endingHashKey)];
    this.#settings = next;
  }

  unconfirmed(): UnconfirmedRecord[] {
    return [...this.#unconfirmed];
  }

  async settled(): Promise<void> {
    // Handlers finishing can only be replaced by new requests; bounded in case a client
    // keeps sending while we wait.
    for (let round = 0; round < 1_000 && this.#handlers.size > 0; round++) {
      await Promise.allSettled([...this.#handlers]);
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    this.#abort.abort();
    for (const wake of this.#waits) wake();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await Promise.allSettled([...this.#handlers]);
    await closed;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const counts = this.#counts;
    counts.requests++;
    const target = String(req.headers["x-amz-target"] ?? "");
    const operation = target.startsWith(TARGET_PREFIX)
      ? target.slice(TARGET_PREFIX.length)
      : "unknown";
    counts.byOperation[operation] = (counts.byOperation[operation] ?? 0) + 1;
    const json = String(req.headers["content-type"] ?? "").startsWith(JSON_11);
    if (!json) counts.unparsed++;
    if (!json || !this.#settings.operations.includes(operation)) {
      const upstream = await this.#forward(req, body);
      if (upstream !== undefined) reply(res, upstream.status, upstream.headers, upstream.body);
      else req.socket.destroy();
      return;
    }
    const isPut = operation === "PutRecords";
    const request = isPut
      ? parseJson(body) as { Records?: PutRecordsEntry[] } | undefined
      : undefined;
    const entries = request?.Records ?? [];
    if (isPut) counts.records += entries.length;

    const before = this.#pick(BEFORE_FORWARD_FAULTS);
    if (before !== undefined && (before !== "wrongCountBeforeForward" || entries.length > 0)) {
      counts[before]++;
      BEFORE_FORWARD[before]({ req, res, entries });
      return;
    }

    // Per-record faults: the chosen entries never reach the emulator.
    const failures: Array<ResultEntry | undefined> = entries.map((entry) =>
      this.#recordFault(entry)
    );
    let forwardBody = body;
    if (isPut && request !== undefined) {
      const kept = entries.filter((_, index) => failures[index] === undefined);
      if (kept.length === 0 && entries.length > 0) {
        replyJson(res, 200, { FailedRecordCount: entries.length, Records: failures });
        return;
      }
      if (kept.length !== entries.length) {
        forwardBody = Buffer.from(JSON.stringify({ ...request, Records: kept }));
      }
      counts.recordsForwarded += kept.length;
    }

    const upstream = await this.#forward(req, forwardBody);
    if (upstream === undefined) {
      req.socket.destroy();
      return;
    }
    let responseBody = upstream.body;
    let results: ResultEntry[] | undefined;
    if (isPut && upstream.status === 200) {
      const response = parseJson(upstream.body) as { Records?: ResultEntry[] } | undefined;
      const stored = response?.Records ?? [];
      let next = 0;
      results = failures.map((failure) => failure ?? stored[next++] ?? {});
      responseBody = Buffer.from(JSON.stringify({ ...response, ...putRecordsAnswer(results) }));
    }

    const after = this.#pick(AFTER_FORWARD_FAULTS);
    if (after === undefined || (after === "wrongCountAfterForward" && results === undefined)) {
      // A client that gave up while the request was forwarded never hears what it stored.
      if (this.#gone(req, res)) this.#lost(results, "clientGone");
      reply(res, upstream.status, upstream.headers, responseBody);
      return;
    }
    counts[after]++;
    await AFTER_FORWARD[after](
      this.#forwarded({ req, res, upstream, responseBody, results }, after),
    );
  }

  #forwarded(
    request: Pick<ForwardedRequest, "req" | "res" | "upstream" | "responseBody" | "results">,
    fault: UnconfirmedRecord["fault"],
  ): ForwardedRequest {
    return {
      ...request,
      lost: () => this.#lost(request.results, fault),
      hide: (results) => this.#hide(results, fault),
      wait: (ms) => this.#wait(ms, request.req, request.res),
      gone: () => this.#gone(request.req, request.res),
      delayMs: this.#settings.delayMs,
      dropHoldMs: this.#settings.dropHoldMs,
    };
  }

  #recordFault(entry: PutRecordsEntry): ResultEntry | undefined {
    const hot = this.#settings.hotShard;
    if (hot !== undefined && this.#hotRange !== undefined && routesInto(entry, this.#hotRange)) {
      this.#counts.hotShardThrottle++;
      return throttled(hot.shardId);
    }
    const fault = this.#pick(RECORD_FAULTS);
    if (fault === undefined) return undefined;
    this.#counts[fault]++;
    return RECORD_ANSWERS[fault]();
  }

  // One draw per group, so the chance of each fault is exactly its rate.
  #pick<T extends keyof ChaosRates>(faults: readonly T[]): T | undefined {
    const rates = this.#settings.rates;
    if (!faults.some((fault) => (rates[fault] ?? 0) > 0)) return undefined;
    let draw = this.#random();
    for (const fault of faults) {
      draw -= rates[fault] ?? 0;
      if (draw < 0) return fault;
    }
    return undefined;
  }

  #lost(results: ResultEntry[] | undefined, fault: UnconfirmedRecord["fault"]): void {
    this.#counts.responsesLost++;
    if (results !== undefined) this.#hide(results, fault);
  }

  #hide(results: ResultEntry[], fault: UnconfirmedRecord["fault"]): void {
    for (const entry of results) {
      if (entry.ErrorCode !== undefined || entry.SequenceNumber === undefined) continue;
      this.#counts.recordsUnconfirmed++;
      this.#unconfirmed.push({
        shardId: entry.ShardId ?? "",
        sequenceNumber: entry.SequenceNumber,
        fault,
      });
    }
  }

  async #forward(req: http.IncomingMessage, body: Uint8Array): Promise<Upstream | undefined> {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      headers[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    this.#counts.forwarded++;
    try {
      const response = await fetch(`${this.#upstream}${req.url ?? "/"}`, {
        method: req.method ?? "POST",
        headers,
        // Node's Buffer types allow a SharedArrayBuffer; ours are never shared.
        body: body as Uint8Array<ArrayBuffer>,
        signal: this.#abort.signal,
      });
      const responseBody = new Uint8Array(await response.arrayBuffer());
      const responseHeaders: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        // fetch already decoded the body, so its content-encoding no longer applies.
        if (!HOP_BY_HOP.has(name) && name !== "date" && name !== "content-encoding") {
          responseHeaders[name] = value;
        }
      });
      return { status: response.status, headers: responseHeaders, body: responseBody };
    } catch {
      this.#counts.upstreamErrors++;
      return undefined;
    }
  }

  #gone(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    return res.destroyed || req.socket.destroyed || this.#abort.signal.aborted;
  }

  // Resolves after `ms`, or early when the client hangs up or the proxy closes; at once
  // when the client already hung up (its `close` has been and gone).
  #wait(ms: number, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.#gone(req, res)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waits.delete(done);
        res.off("close", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waits.add(done);
      res.once("close", done);
    });
  }
}

function emptyCounts(): ChaosCounts {
  return {
    requests: 0,
    byOperation: {},
    unparsed: 0,
    forwarded: 0,
    upstreamErrors: 0,
    records: 0,
    recordsForwarded: 0,
    recordThrottle: 0,
    recordInternalFailure: 0,
    hotShardThrottle: 0,
    resetBeforeForward: 0,
    http500: 0,
    http503: 0,
    throttle400: 0,
    limitExceeded400: 0,
    wrongCountBeforeForward: 0,
    resetAfterForward: 0,
    dropResponse: 0,
    delayResponse: 0,
    wrongCountAfterForward: 0,
    responsesLost: 0,
    recordsUnconfirmed: 0,
  };
}

function validateRates(rates: ChaosRates): void {
  for (const [name, rate] of Object.entries(rates)) {
    if (typeof rate !== "number" || !(rate >= 0 && rate <= 1)) {
      throw new RangeError(
        `Cannot configure chaos proxy as '${name}' must be between 0 and 1: current value is ${rate}`,
      );
    }
  }
  for (const group of [BEFORE_FORWARD_FAULTS, AFTER_FORWARD_FAULTS, RECORD_FAULTS]) {
    const sum = group.reduce((total, fault) => total + (rates[fault] ?? 0), 0);
    if (sum > 1) {
      throw new RangeError(
        `Cannot configure chaos proxy as the rates ${
          group.join(", ")
        } must sum to at most 1: current sum is ${sum}`,
      );
    }
  }
}

// Small, fast, good enough for fault injection; the same seed gives the same decisions.
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
