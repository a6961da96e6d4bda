/**
 * A loopback server that plays the two Datadog metric endpoints the sink uses and checks
 * each request against the documented shapes:
 * - `POST /api/v2/series`: `{series: [{metric, type (0-3), points: [{timestamp, value}],
 *   interval?, tags?, resources?: [{name, type}], unit?}]}`, at most 512000 bytes;
 * - `POST /api/v1/distribution_points`: `{series: [{metric, points: [[timestamp,
 *   [values...]]], tags?, host?, type?}]}`.
 * Both need the `DD-API-KEY` header. It answers 202 as Datadog does, or a scripted status.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { gunzipSync, inflateSync } from "node:zlib";

/** A v2 series entry, as received. */
export interface SeriesEntry {
  metric: string;
  type: number;
  interval?: number;
  points: { timestamp: number; value: number }[];
  tags?: string[];
  resources?: { name: string; type: string }[];
  unit?: string;
}

/** A v1 distribution points entry, as received. */
export interface DistributionEntry {
  metric: string;
  points: [number, number[]][];
  tags?: string[];
  host?: string;
  type?: string;
}

/** One request, accepted or not. */
export interface DatadogRequest {
  path: string;
  status: number;
  headers: Record<string, string | undefined>;
  bytes: number;
  series: SeriesEntry[];
  distributions: DistributionEntry[];
}

/** A running capture server. */
export interface DatadogCapture {
  /** `http://127.0.0.1:PORT`, for the sink's `baseUrl`. */
  readonly url: string;
  /** Every request, in arrival order, with the status it was answered. */
  readonly requests: DatadogRequest[];
  /** Series entries of accepted requests. */
  readonly series: SeriesEntry[];
  /** Distribution entries of accepted requests. */
  readonly distributions: DistributionEntry[];
  /** Shape or limit violations (each answered 400 or 413). */
  readonly violations: string[];
  /**
   * Answers the next requests with these statuses, one each, before returning to 202;
   * status 0 never answers. `body` is sent with them, `retryAfter` as `Retry-After`.
   */
  script(statuses: number[], options?: { body?: string; retryAfter?: string }): void;
  /** Stops the server and drops its connections. */
  close(): Promise<void>;
}

/** The payload limit documented for `POST /api/v2/series`. */
export const MAX_PAYLOAD_BYTES = 512_000;

/**
 * Starts a capture server on 127.0.0.1 and a free port.
 *
 * @param apiKey The only API key accepted; others get a 403.
 * @returns The running server.
 */
export async function startDatadogCapture(apiKey: string): Promise<DatadogCapture> {
  const requests: DatadogRequest[] = [];
  const violations: string[] = [];
  let scripted: number[] = [];
  let scriptedBody = '{"errors":["scripted failure"]}';
  let scriptedRetryAfter: string | undefined;

  const server = createServer((request, response) => {
    const chunks: Uint8Array[] = [];
    request.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    request.on("end", () => {
      const raw = Buffer.concat(chunks);
      const record: DatadogRequest = {
        path: request.url ?? "",
        status: 202,
        headers: headersOf(request),
        bytes: raw.length,
        series: [],
        distributions: [],
      };
      requests.push(record);
      const answer = (status: number, body: string, extra: Record<string, string> = {}) => {
        record.status = status;
        response.writeHead(status, { "content-type": "application/json", ...extra });
        response.end(body);
      };
      const status = scripted.shift();
      if (status === 0) return;
      if (status !== undefined) {
        const extra: Record<string, string> = scriptedRetryAfter === undefined
          ? {}
          : { "retry-after": scriptedRetryAfter };
        answer(status, scriptedBody, extra);
        return;
      }
      if (record.headers["dd-api-key"] !== apiKey) {
        answer(403, '{"errors":["Forbidden"]}');
        return;
      }
      try {
        const body = decodeBody(request, raw);
        if (body.length > MAX_PAYLOAD_BYTES) {
          violations.push(`${record.path}: payload of ${body.length} bytes`);
          answer(413, '{"errors":["Payload too large"]}');
          return;
        }
        expect(request.method === "POST", `method ${request.method}`);
        expect(
          record.headers["content-type"]?.startsWith("application/json") === true,
          `content-type ${record.headers["content-type"]}`,
        );
        const payload = JSON.parse(body.toString("utf8")) as { series?: unknown };
        expect(Array.isArray(payload.series), "series is not an array");
        if (record.path === "/api/v2/series") {
          record.series = (payload.series as unknown[]).map(checkSeries);
          answer(202, '{"errors":[]}');
        } else if (record.path === "/api/v1/distribution_points") {
          record.distributions = (payload.series as unknown[]).map(checkDistribution);
          answer(202, '{"status":"ok"}');
        } else {
          answer(404, '{"errors":["Not found"]}');
        }
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        violations.push(`${record.path}: ${message}`);
        answer(400, JSON.stringify({ errors: [message] }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get series() {
      return requests.filter((request) => request.status === 202).flatMap((r) => r.series);
    },
    get distributions() {
      return requests.filter((request) => request.status === 202).flatMap((r) => r.distributions);
    },
    violations,
    script(statuses, options = {}) {
      scripted = [...statuses];
      scriptedBody = options.body ?? scriptedBody;
      scriptedRetryAfter = options.retryAfter;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function headersOf(request: IncomingMessage): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    headers[name] = Array.isArray(value) ? value.join(",") : value;
  }
  return headers;
}

function decodeBody(request: IncomingMessage, raw: Buffer): Buffer {
  const encoding = request.headers["content-encoding"];
  if (encoding === "gzip") return gunzipSync(raw);
  if (encoding === "deflate") return inflateSync(raw);
  expect(encoding === undefined, `content-encoding ${encoding}`);
  return raw;
}

function checkSeries(value: unknown): SeriesEntry {
  const entry = value as Record<string, unknown>;
  expect(typeof entry.metric === "string" && entry.metric !== "", "metric is missing");
  expect(
    Number.isInteger(entry.type) && (entry.type as number) >= 0 && (entry.type as number) <= 3,
    `type ${entry.type} is not 0 (unspecified), 1 (count), 2 (rate) or 3 (gauge)`,
  );
  expect(
    entry.interval === undefined || Number.isInteger(entry.interval),
    `interval ${entry.interval} is not an integer`,
  );
  expect(Array.isArray(entry.points) && entry.points.length > 0, "points is empty");
  for (const point of entry.points as Record<string, unknown>[]) {
    expect(Number.isInteger(point.timestamp), `timestamp ${point.timestamp} is not integer`);
    expect(typeof point.value === "number", `value ${point.value} is not a number`);
  }
  checkTags(entry.tags);
  if (entry.resources !== undefined) {
    expect(Array.isArray(entry.resources), "resources is not an array");
    for (const resource of entry.resources as Record<string, unknown>[]) {
      expect(typeof resource.name === "string" && typeof resource.type === "string", "resource");
    }
  }
  return entry as unknown as SeriesEntry;
}

function checkDistribution(value: unknown): DistributionEntry {
  const entry = value as Record<string, unknown>;
  expect(typeof entry.metric === "string" && entry.metric !== "", "metric is missing");
  expect(Array.isArray(entry.points) && entry.points.length > 0, "points is empty");
  for (const point of entry.points as unknown[]) {
    expect(Array.isArray(point) && point.length === 2, "a point is not [timestamp, values]");
    const [timestamp, values] = point as [unknown, unknown];
    expect(Number.isInteger(timestamp), `timestamp ${timestamp} is not an integer`);
    expect(Array.isArray(values) && values.length > 0, "a point has no values");
    for (const sample of values as unknown[]) {
      expect(typeof sample === "number", `value ${sample} is not a number`);
    }
  }
  expect(entry.type === undefined || entry.type === "distribution", `type ${entry.type}`);
  checkTags(entry.tags);
  return entry as unknown as DistributionEntry;
}

function checkTags(tags: unknown): void {
  if (tags === undefined) return;
  expect(Array.isArray(tags), "tags is not an array");
  for (const tag of tags as unknown[]) expect(typeof tag === "string", `tag ${tag}`);
}

function expect(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}
