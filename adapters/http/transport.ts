/**
 * The one thing `httpSender` needs from an HTTP client: issue a request and hand back the status,
 * the headers it reads, and a drained body. Two implementations: `fetch` (web standards, every
 * runtime; `transport-fetch.ts`) and `node:http` with a keep-alive agent (Node only, picked by
 * the `node` export condition; `transport-node.ts`). Both keep the same contract, written here.
 */

/** One request, as `httpSender` issues it. */
export interface TransportRequest {
  method: string;
  /** An absolute `http:`/`https:` URL without credentials (checked by `checkTargetUrl` in adapters/shared/urls.ts). */
  url: URL;
  /** Header names in lower case; the transport adds `content-length` (and `host`) itself. */
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer>;
  /** Aborts the request at any stage: connecting, sending, waiting, or reading the body. */
  readonly signal: AbortSignal;
  /**
   * The same abort as `signal`, for a transport that can do without an `AbortSignal` (the Node
   * one): reading `signal` may make one, and `httpSender` passes both. Optional: other callers
   * give the signal alone.
   */
  readonly abort?: AbortHook | undefined;
}

/** A request's abort without an `AbortSignal`: its state, and one listener at most. */
export interface AbortHook {
  readonly aborted: boolean;
  readonly reason: unknown;
  /** Calls `listener` once, when it aborts (`undefined` removes it). One listener: a new one replaces it. */
  onAbort(listener: (() => void) | undefined): void;
}

/** What came back. Resolved only once the body is drained (or given up), so the connection is free. */
export interface TransportResponse {
  /** The HTTP status. A redirect is never followed: its 3xx is the answer (0 for an opaque one). */
  status: number;
  /** A response header by lower-case name (`retry-after`), or `undefined`. */
  header(name: string): string | undefined;
  /**
   * The first {@link MAX_RESPONSE_BYTES} of the body at most. A body announced larger is not
   * read at all, and one that grows past the cap is cut off: the connection is then closed
   * rather than reused. A body cut short by an abort or a reset may come back partial or empty
   * (fetch keeps nothing of a sized one); no outcome depends on it.
   */
  body: Uint8Array;
}

/**
 * Issues HTTP requests for `httpSender`.
 *
 * Every implementation: follows no redirect, honours `signal` until the body is drained, reuses
 * connections (keep-alive), never rejects once the status has arrived (the status decides the
 * message; a body cut short changes nothing), and rejects with an `Error` whose message names
 * neither the body nor credentials before that.
 */
export interface HttpTransport {
  /** `"fetch"` or `"node:http"`: which client sends (logs, and the package test's proof of the build). */
  readonly name: string;
  request(request: TransportRequest): Promise<TransportResponse>;
}

/** How much of a response body a transport reads before it closes the connection instead. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

/** The chunks of a body as one array (no copy for one chunk). */
export function joinChunks(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}
