/**
 * The Node transport: `node:http`/`node:https` with keep-alive agents. Node's global `fetch`
 * (undici under a WHATWG layer: streams, `Request`/`Response` objects, abort plumbing per
 * request) caps a relay at about a third of what the machine can deliver; the plain client does
 * the same work without that layer, and needs no dependency. See BENCHMARKS.md (section 9) for
 * the figures and for why `node:http` and not undici's `request`.
 *
 * Only the `node` build of `edge-outbox/http` imports this file; `src/` and the web build never
 * see `node:*`.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import {
  type AbortHook,
  type HttpTransport,
  joinChunks,
  MAX_RESPONSE_BYTES,
  type TransportRequest,
  type TransportResponse,
} from "./transport.ts";

/**
 * An idle connection is closed after this long (or sooner when the server's `Keep-Alive:
 * timeout=N` says so): reusing a socket the server is closing at that moment fails the request.
 * Node's agent honours the server's hint only when it has a timeout of its own.
 */
const IDLE_TIMEOUT_MS = 4_000;

let shared: HttpTransport | undefined;

/**
 * The process-wide Node transport (one pair of keep-alive agents, like the global `fetch`'s
 * one connection pool): every `httpSender` on the `node` build shares it.
 */
export function defaultNodeTransport(): HttpTransport {
  shared ??= nodeTransport();
  return shared;
}

/**
 * A transport over `node:http`/`node:https` with its own keep-alive agents. Idle sockets do not
 * keep the process alive (Node unrefs them) and close after {@link IDLE_TIMEOUT_MS}.
 */
export function nodeTransport(): HttpTransport {
  const options = { keepAlive: true, timeout: IDLE_TIMEOUT_MS, scheduling: "lifo" } as const;
  const http = new HttpAgent(options);
  const https = new HttpsAgent(options);
  return {
    name: "node:http",
    request(request) {
      return send(request, request.url.protocol === "https:" ? https : http);
    },
  };
}

function send(request: TransportRequest, agent: HttpAgent): Promise<TransportResponse> {
  const { method, url, headers, body } = request;
  // httpSender's hook, or the signal (read only when there is no hook: it may be made on read).
  const abort = request.abort ?? signalHook(request.signal);
  return new Promise((resolve, reject) => {
    if (abort.aborted) {
      reject(abort.reason);
      return;
    }
    const outgoing = fetchLikeHeaders(headers);
    outgoing["content-length"] = String(body.byteLength);
    let settled = false;
    let response: IncomingMessage | undefined;
    const chunks: Uint8Array[] = [];
    let total = 0;
    const finish = () => {
      if (settled || response === undefined) return;
      settled = true;
      abort.onAbort(undefined);
      resolve({
        status: response.statusCode ?? 0,
        header: headerOf(response),
        body: joinChunks(chunks, total),
      });
    };
    const fail = (error: unknown) => {
      if (settled) return;
      // Once the status is in, it decides: a body cut short changes nothing.
      if (response !== undefined) return finish();
      settled = true;
      abort.onAbort(undefined);
      reject(error);
    };
    const onAbort = () => {
      fail(abort.reason);
      client.destroy();
    };
    // `request` throws synchronously on a header it cannot send (CR, LF, a non-Latin-1 char).
    let client: ReturnType<typeof httpRequest>;
    try {
      client = (url.protocol === "https:" ? httpsRequest : httpRequest)({
        protocol: url.protocol,
        // node:http wants a bare IPv6 address, the URL keeps its brackets.
        hostname: url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        method,
        headers: outgoing,
        agent,
      });
    } catch (error) {
      reject(error);
      return;
    }
    abort.onAbort(onAbort);
    client.on("error", fail);
    client.on("response", (res) => {
      response = res;
      const length = Number(res.headers["content-length"] ?? Number.NaN);
      if (length > MAX_RESPONSE_BYTES) {
        // Not worth reading: the socket goes instead of back to the pool.
        finish();
        res.destroy();
        return;
      }
      res.on("data", (chunk: Buffer) => {
        if (total + chunk.byteLength > MAX_RESPONSE_BYTES) {
          finish();
          res.destroy();
          return;
        }
        chunks.push(chunk);
        total += chunk.byteLength;
      });
      res.on("end", finish);
      res.on("error", finish);
      // `close` without `end`: the server or an abort cut the body short.
      res.on("close", finish);
    });
    client.end(body);
  });
}

/** An {@link AbortHook} over a plain `AbortSignal` (a caller other than httpSender). */
function signalHook(signal: AbortSignal): AbortHook {
  let listener: (() => void) | undefined;
  const onAbort = () => listener?.();
  return {
    get aborted() {
      return signal.aborted;
    },
    get reason() {
      return signal.reason;
    },
    onAbort(next) {
      if (listener === undefined && next !== undefined)
        signal.addEventListener("abort", onAbort, { once: true });
      else if (listener !== undefined && next === undefined) signal.removeEventListener("abort", onAbort);
      listener = next;
    },
  };
}

/**
 * Headers as `fetch` would send them, so both transports put the same bytes on the wire: names
 * in lower case (one name given in two cases is one header, values joined by ", "), values
 * without leading or trailing spaces and tabs.
 */
function fetchLikeHeaders(headers: Record<string, string>): Record<string, string> {
  // A plain object on purpose: a header named "__proto__" is then dropped, as Node's fetch drops it.
  const out: Record<string, string> = {};
  for (const name in headers) {
    const key = name.toLowerCase();
    const value = headers[name]!.replace(/^[\t ]+|[\t ]+$/g, "");
    out[key] = key in out ? `${out[key]}, ${value}` : value;
  }
  return out;
}

function headerOf(response: IncomingMessage): (name: string) => string | undefined {
  // Every line of a repeated header, joined as fetch joins them (Node's `headers` keeps only the
  // first Retry-After): both transports then read the same value.
  return (name) => response.headersDistinct[name]?.join(", ");
}
