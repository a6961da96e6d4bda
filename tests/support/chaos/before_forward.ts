/**
 * Faults that answer a whole request without forwarding it: the emulator stores nothing, so
 * a client that retries loses nothing and duplicates nothing.
 *
 * @module
 */
import type http from "node:http";
import { type PutRecordsEntry, replyJson } from "./wire.ts";

/** The faults of this group, drawn once per request. */
export const BEFORE_FORWARD_FAULTS = [
  "resetBeforeForward",
  "http500",
  "http503",
  "throttle400",
  "limitExceeded400",
  "wrongCountBeforeForward",
] as const;

/** A fault of this group. */
export type BeforeForwardFault = typeof BEFORE_FORWARD_FAULTS[number];

/** What a fault answers. */
export interface BeforeForwardRequest {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** The PutRecords entries sent (none for other operations). */
  entries: readonly PutRecordsEntry[];
}

/** How each fault answers; none of them forwards the request. */
export const BEFORE_FORWARD: Readonly<
  Record<BeforeForwardFault, (request: BeforeForwardRequest) => void>
> = {
  /** The connection is destroyed before any answer. */
  resetBeforeForward: ({ req }) => req.socket.destroy(),
  /** HTTP 500, as Kinesis answers an internal failure. */
  http500: ({ res }) =>
    replyJson(res, 500, { __type: "InternalFailure", message: "Internal service failure." }),
  /** HTTP 503, as Kinesis answers when it is unavailable. */
  http503: ({ res }) =>
    replyJson(res, 503, { __type: "ServiceUnavailable", message: "Service Unavailable" }),
  /** A throttled request: HTTP 400 ProvisionedThroughputExceededException. */
  throttle400: ({ res }) =>
    replyJson(res, 400, {
      __type: "ProvisionedThroughputExceededException",
      message: "Rate exceeded for stream under account 000000000000.",
    }),
  /** A request over an account limit: HTTP 400 LimitExceededException. */
  limitExceeded400: ({ res }) =>
    replyJson(res, 400, {
      __type: "LimitExceededException",
      message: "Rate exceeded for stream under account 000000000000.",
    }),
  /**
   * HTTP 200 with one entry fewer than records sent, every one a success that was never
   * stored: a producer that trusts them loses the records.
   */
  wrongCountBeforeForward: ({ res, entries }) =>
    replyJson(res, 200, {
      FailedRecordCount: 0,
      Records: entries.slice(1).map(() => ({
        SequenceNumber: "0",
        ShardId: "shardId-000000000000",
      })),
    }),
};
