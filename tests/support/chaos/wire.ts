/**
 * The chaos proxy's side of the Kinesis wire protocol: AWS JSON 1.1 bodies, the entries of
 * a PutRecords call and its answer, and replies in the shape the SDK parses.
 *
 * @module
 */
import { randomUUID } from "node:crypto";
import type http from "node:http";
import { Buffer } from "node:buffer";

/** The content type of the SDK's Kinesis requests. */
export const JSON_11 = "application/x-amz-json-1.1";
/** `X-Amz-Target` is this prefix and the operation name. */
export const TARGET_PREFIX = "Kinesis_20131202.";

/** One record of a PutRecords request. */
export interface PutRecordsEntry {
  PartitionKey?: string;
  ExplicitHashKey?: string;
  Data?: string;
}

/** One entry of a PutRecords answer: stored, or failed with a code. */
export interface ResultEntry {
  SequenceNumber?: string;
  ShardId?: string;
  ErrorCode?: string;
  ErrorMessage?: string;
}

/** The emulator's answer to a forwarded request. */
export interface Upstream {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** The whole body of a request. */
export function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

/** The JSON in `body`, or `undefined` when it is not JSON. */
export function parseJson(body: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
  } catch {
    return undefined;
  }
}

/** Sends a whole response. */
export function reply(
  res: http.ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: Uint8Array,
): void {
  res.writeHead(status, { ...headers, "content-length": String(body.byteLength) });
  res.end(body);
}

/** Sends `value` as Kinesis would, with a request id. */
export function replyJson(res: http.ServerResponse, status: number, value: unknown): void {
  reply(
    res,
    status,
    { "content-type": JSON_11, "x-amzn-requestid": randomUUID() },
    Buffer.from(JSON.stringify(value)),
  );
}

/** A PutRecords answer listing `records`, its failure count computed from them. */
export function putRecordsAnswer(records: readonly ResultEntry[]): {
  FailedRecordCount: number;
  Records: readonly ResultEntry[];
} {
  return {
    FailedRecordCount: records.filter((entry) => entry.ErrorCode !== undefined).length,
    Records: records,
  };
}
