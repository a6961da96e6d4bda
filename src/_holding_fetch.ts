// A `fetch` for the AWS SDK's fetch handler that keeps an abort able to reach the connection
// under every runtime. The handler builds a `Request` carrying the call's signal and hands it
// to `fetch`, which copies it; Node's `fetch` ties a `Request` to the signal it follows only
// weakly, so once the handler's `Request` has been garbage collected an abort no longer
// reaches the copy (nodejs/undici#4068). The call still rejects, as the handler races the
// signal itself, but the request stays on the wire and its answer arrives later: close() and
// request timeouts would not hang up, and a request the producer gave up on could still be
// applied and answered long after. Holding each `Request` until its answer has been read
// keeps the abort path whole. tests/kinesis_client_test.ts shows the hang-up after a
// collection.

/**
 * A `fetch` that holds what it is given until the answer's body is read.
 *
 * @returns The `fetch`; it reads each answer's body whole before resolving.
 */
export function holdingFetch(): typeof fetch {
  const held = new Set<Request | string | URL>();
  const heldFetch = async (input: Request | string | URL, init?: RequestInit) => {
    held.add(input);
    try {
      const response = await fetch(input, init);
      if (response.body === null) return response;
      // Read while the request is held, so an abort during the body hangs up too; Kinesis
      // answers are small and the SDK reads them whole anyway.
      const body = await response.arrayBuffer();
      return new Response(body, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
    } finally {
      held.delete(input);
    }
  };
  return heldFetch as typeof fetch;
}
