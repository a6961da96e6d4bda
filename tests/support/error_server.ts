/**
 * A loopback server that answers every request with one AWS JSON 1.1 error, the way
 * Kinesis answers a request it refuses as a whole: for the failures the emulators never
 * produce, such as credentials they do not check (`UnrecognizedClientException`).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import http from "node:http";
import type { Socket } from "node:net";

/** Options for {@linkcode startErrorServer}. */
export interface ErrorServerOptions {
  /** HTTP status. @default {400} */
  status?: number;
  /** The error type (`__type`). @default {"UnrecognizedClientException"} */
  type?: string;
  /** The error message. @default {"The security token included in the request is invalid."} */
  message?: string;
}

/** A running error server. */
export interface ErrorServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** Requests answered, by `X-Amz-Target` operation. */
  readonly requests: Record<string, number>;
  /** The header values of every request, for tests that look for what a client sent. */
  readonly headers: Record<string, string | string[] | undefined>[];
  /** Stops listening and drops connections. */
  close(): Promise<void>;
}

/**
 * Starts an error server on 127.0.0.1 and a free port.
 *
 * @param options The error to answer with.
 * @returns The running server.
 *
 * @example Every call fails the same way
 * ```ts
 * import assert from "node:assert/strict";
 *
 * await using server = await startErrorServer({ status: 403, type: "AccessDeniedException" });
 * const response = await fetch(server.endpoint, { method: "POST", body: "{}" });
 * assert.equal(response.status, 403);
 * assert.equal((await response.json()).__type, "AccessDeniedException");
 * ```
 */
export async function startErrorServer(options: ErrorServerOptions = {}): Promise<ErrorServer> {
  const {
    status = 400,
    type = "UnrecognizedClientException",
    message = "The security token included in the request is invalid.",
  } = options;
  const requests: Record<string, number> = {};
  const headers: ErrorServer["headers"] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    req.resume();
    req.once("end", () => {
      const target = String(req.headers["x-amz-target"] ?? "unknown").split(".").at(-1)!;
      requests[target] = (requests[target] ?? 0) + 1;
      headers.push({ ...req.headers });
      const body = JSON.stringify({ __type: type, message });
      res.writeHead(status, {
        "content-type": "application/x-amz-json-1.1",
        "content-length": String(Buffer.byteLength(body)),
        "x-amzn-requestid": "00000000-0000-0000-0000-000000000000",
      });
      res.end(body);
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
    return closing;
  };
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    requests,
    headers,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * A loopback port nothing listens on: bound, then released.
 *
 * @returns `http://127.0.0.1:PORT`, which refuses connections.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const endpoint = await refusedEndpoint();
 * await assert.rejects(fetch(endpoint));
 * ```
 */
export async function refusedEndpoint(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return `http://127.0.0.1:${address.port}`;
}
