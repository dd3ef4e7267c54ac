import { type HttpTransport, joinChunks, MAX_RESPONSE_BYTES, type TransportResponse } from "./transport.ts";

/**
 * The web-standard transport: `fetch` with `redirect: "manual"`. Connection reuse is the
 * runtime's (every runtime's `fetch` keeps connections alive). Used on Deno, Bun, workerd,
 * browsers and Vercel's edge, on Node when `httpSender` is given its own `fetch`, and
 * everywhere the `node` export condition does not apply.
 *
 * @param fetchImpl the `fetch` to call; default: the global one, looked up per request (so a
 * test or an instrumentation that replaces it later is honoured).
 */
export function fetchTransport(fetchImpl?: typeof fetch): HttpTransport {
  // Bound to globalThis: some runtimes throw "Illegal invocation" for a detached fetch.
  const call = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
  return {
    name: "fetch",
    async request({ method, url, headers, body, signal }) {
      // A string, as before transports existed: a caller's own fetch may expect one.
      const response = await call(url.href, { method, headers, body, redirect: "manual", signal });
      // With redirect "manual", browsers and some runtimes answer an opaque redirect (status 0).
      const status = response.type === "opaqueredirect" ? 0 : response.status;
      const answer: TransportResponse = {
        status,
        header: (name) => response.headers.get(name) ?? undefined,
        body: await drain(response),
      };
      return answer;
    },
  };
}

const EMPTY = new Uint8Array(0);

/**
 * Reads at most {@link MAX_RESPONSE_BYTES} of the body, so the connection goes back to the pool;
 * a body announced larger, or one that grows past the cap, is cancelled instead. Never throws:
 * the status has decided already.
 */
async function drain(response: Response): Promise<Uint8Array> {
  const stream = response.body;
  if (stream === null) return EMPTY;
  const length = Number(response.headers.get("content-length") ?? Number.NaN);
  if (length > MAX_RESPONSE_BYTES) {
    await stream.cancel().catch(() => {});
    return EMPTY;
  }
  if (length <= MAX_RESPONSE_BYTES) {
    // Sized and small: one call, no reader bookkeeping (the common case: a 2xx with a short body).
    try {
      return new Uint8Array(await response.arrayBuffer());
    } catch {
      // Cut short (abort, reset): arrayBuffer() keeps nothing of it. No outcome reads the body.
      return EMPTY;
    }
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (total + value.byteLength > MAX_RESPONSE_BYTES) {
        await reader.cancel().catch(() => {});
        break;
      }
      chunks.push(value);
      total += value.byteLength;
    }
  } catch {
    // Cut short (abort, reset): keep what arrived.
  }
  return joinChunks(chunks, total);
}
