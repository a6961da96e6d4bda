/**
 * Faults after the emulator has applied a request: the records are stored but the client
 * does not hear that they succeeded (the duplicate cases). Each fault hands the stored
 * entries it hid to `hide`, so the proxy can list them in `unconfirmed()`.
 *
 * @module
 */
import type http from "node:http";
import { putRecordsAnswer, reply, replyJson, type ResultEntry, type Upstream } from "./wire.ts";

/** The faults of this group, drawn once per forwarded request. */
export const AFTER_FORWARD_FAULTS = [
  "resetAfterForward",
  "dropResponse",
  "delayResponse",
  "wrongCountAfterForward",
] as const;

/** A fault of this group. */
export type AfterForwardFault = typeof AFTER_FORWARD_FAULTS[number];

/** A forwarded request, its answer, and what a fault may do with them. */
export interface ForwardedRequest {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  upstream: Upstream;
  /** The answer as the client would get it without a fault. */
  responseBody: Uint8Array;
  /** The PutRecords answer entries; `undefined` for other operations or a failed call. */
  results: ResultEntry[] | undefined;
  /** Counts a response that never reached the client and hides what it stored. */
  lost(): void;
  /** Hides the stored entries among `results`: the client is not told of them. */
  hide(results: ResultEntry[]): void;
  /** Resolves after `ms`, or early when the client hangs up or the proxy closes. */
  wait(ms: number): Promise<void>;
  /** Whether the client hung up or the proxy closed. */
  gone(): boolean;
  readonly delayMs: number;
  readonly dropHoldMs: number;
}

/** How each fault ends a forwarded request. */
export const AFTER_FORWARD: Readonly<
  Record<AfterForwardFault, (request: ForwardedRequest) => void | Promise<void>>
> = {
  /** The connection is destroyed instead of the answer. */
  resetAfterForward: (request) => {
    request.lost();
    request.req.socket.destroy();
  },
  /** No answer: the connection is held for `dropHoldMs`, then destroyed. */
  dropResponse: async (request) => {
    request.lost();
    await request.wait(request.dropHoldMs);
    request.req.socket.destroy();
  },
  /** The answer is held for `delayMs`; lost if the client gave up meanwhile. */
  delayResponse: async (request) => {
    await request.wait(request.delayMs);
    if (request.gone()) {
      request.lost();
      request.req.socket.destroy();
      return;
    }
    reply(request.res, request.upstream.status, request.upstream.headers, request.responseBody);
  },
  /** HTTP 200 whose answer lacks its last entry (PutRecords only). */
  wrongCountAfterForward: ({ res, results, hide }) => {
    if (results === undefined) throw new Error("wrongCountAfterForward needs a PutRecords answer");
    hide(results);
    replyJson(res, 200, putRecordsAnswer(results.slice(0, -1)));
  },
};
