/**
 * A loopback server that plays CloudWatch's `PutMetricData` for the AWS SDK: it decodes
 * the request the SDK really sends (AWS JSON 1.0, `x-amz-target:
 * GraniteServiceVersion20100801.PutMetricData`, SigV4-signed, gzip above 10 KiB), keeps
 * what it understood, and answers as the service does, or with a failure on demand.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { gunzipSync } from "node:zlib";

const TARGET = "GraniteServiceVersion20100801.PutMetricData";

/** One datum as CloudWatch would store it. */
export interface CapturedDatum {
  name: string;
  unit: string | undefined;
  /** Dimensions in the order they were sent, as `Name=Value`. */
  dimensions: string[];
  /** Epoch milliseconds. */
  timestamp: number;
  sampleCount: number;
  sum: number;
  minimum: number;
  maximum: number;
}

/** One request the server accepted. */
export interface CapturedRequest {
  namespace: string;
  datums: CapturedDatum[];
  /** Whether the body came gzip-compressed. */
  gzip: boolean;
  /** Body size on the wire. */
  wireBytes: number;
  /** Body size after decompression. */
  bodyBytes: number;
  /** The region and service named in the SigV4 credential scope. */
  credentialScope: string;
}

/** A running capture server. */
export interface CloudWatchCapture {
  /** `http://127.0.0.1:PORT`, for the sink's `endpoint`. */
  readonly url: string;
  /** Requests that were accepted, in arrival order. */
  readonly requests: CapturedRequest[];
  /** Every datum of every accepted request. */
  readonly datums: CapturedDatum[];
  /** Protocol violations seen (each also answered with a 400). */
  readonly violations: string[];
  /** How many HTTP requests arrived, failed ones included. */
  readonly attempts: number;
  /**
   * Answers every request from now on with this HTTP status and a service error, or with
   * `"hang"` never answers at all; `undefined` returns to normal service.
   */
  failWith(status: number | "hang" | undefined): void;
  /** Stops the server and drops its connections. */
  close(): Promise<void>;
}

/**
 * Starts a capture server on 127.0.0.1 and a free port.
 *
 * @returns The running server.
 */
export async function startCloudWatchCapture(): Promise<CloudWatchCapture> {
  const requests: CapturedRequest[] = [];
  const violations: string[] = [];
  let failure: number | "hang" | undefined;
  let attempts = 0;

  const server = createServer((request, response) => {
    const chunks: Uint8Array[] = [];
    request.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    request.on("end", () => {
      attempts++;
      if (failure === "hang") return;
      if (failure !== undefined) {
        answerError(response, failure, "InternalServiceError", "InternalServiceFault");
        return;
      }
      try {
        requests.push(decode(request, Buffer.concat(chunks)));
        response.writeHead(200, {
          "content-type": "application/x-amz-json-1.0",
          "x-amzn-requestid": crypto.randomUUID(),
        });
        response.end("{}");
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        violations.push(message);
        answerError(response, 400, "InvalidParameterValue", "InvalidParameterValueException");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get datums() {
      return requests.flatMap((request) => request.datums);
    },
    violations,
    get attempts() {
      return attempts;
    },
    failWith(status) {
      failure = status;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function answerError(response: ServerResponse, status: number, query: string, type: string) {
  response.writeHead(status, {
    "content-type": "application/x-amz-json-1.0",
    "x-amzn-requestid": crypto.randomUUID(),
    "x-amzn-query-error": `${query};${status >= 500 ? "Receiver" : "Sender"}`,
  });
  response.end(
    JSON.stringify({ __type: `com.amazonaws.cloudwatch#${type}`, message: "captured failure" }),
  );
}

function decode(request: IncomingMessage, raw: Buffer): CapturedRequest {
  const header = (name: string) => {
    const value = request.headers[name];
    return Array.isArray(value) ? value.join(",") : value;
  };
  expect(request.method === "POST", `method is ${request.method}`);
  expect(request.url === "/", `path is ${request.url}`);
  expect(header("x-amz-target") === TARGET, `x-amz-target is ${header("x-amz-target")}`);
  expect(
    header("content-type") === "application/x-amz-json-1.0",
    `content-type is ${header("content-type")}`,
  );
  const authorization = header("authorization") ?? "";
  const scope = /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/([^/]+\/[^/]+)\/aws4_request,/.exec(
    authorization,
  );
  expect(scope !== null, "the request is not SigV4-signed");
  expect(header("x-amz-date") !== undefined, "x-amz-date is missing");
  const gzip = header("content-encoding") === "gzip";
  const body = gzip ? gunzipSync(raw) : raw;
  // CloudWatch's documented limit: 1 MB per PutMetricData request.
  expect(body.length <= 1_000_000, `body is ${body.length} bytes`);
  const input = JSON.parse(body.toString("utf8")) as {
    Namespace?: unknown;
    MetricData?: unknown;
  };
  expect(typeof input.Namespace === "string", "Namespace is missing");
  expect(Array.isArray(input.MetricData), "MetricData is missing");
  const data = input.MetricData as Record<string, unknown>[];
  expect(data.length >= 1 && data.length <= 1000, `MetricData has ${data.length} datums`);
  return {
    namespace: input.Namespace as string,
    datums: data.map(decodeDatum),
    gzip,
    wireBytes: raw.length,
    bodyBytes: body.length,
    credentialScope: scope![1]!,
  };
}

function decodeDatum(datum: Record<string, unknown>): CapturedDatum {
  const statistics = datum.StatisticValues as Record<string, unknown> | undefined;
  expect(statistics !== undefined, "StatisticValues is missing");
  const { SampleCount, Sum, Minimum, Maximum } = statistics!;
  for (const value of [SampleCount, Sum, Minimum, Maximum]) {
    expect(typeof value === "number" && Number.isFinite(value), `statistic ${value}`);
  }
  expect((SampleCount as number) > 0, "SampleCount is not positive");
  expect((Minimum as number) <= (Maximum as number), "Minimum is above Maximum");
  expect(typeof datum.Timestamp === "number", `Timestamp is ${typeof datum.Timestamp}`);
  const dimensions = (datum.Dimensions ?? []) as { Name: string; Value: string }[];
  expect(dimensions.length <= 30, "more than 30 dimensions");
  return {
    name: datum.MetricName as string,
    unit: datum.Unit as string | undefined,
    dimensions: dimensions.map((dimension) => `${dimension.Name}=${dimension.Value}`),
    timestamp: Math.round((datum.Timestamp as number) * 1000),
    sampleCount: SampleCount as number,
    sum: Sum as number,
    minimum: Minimum as number,
    maximum: Maximum as number,
  };
}

function expect(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}
