/**
 * A loopback HTTP receiver for tests, demos and benchmarks: listens on 127.0.0.1 and an
 * ephemeral port, records every request, answers as scripted, and measures concurrency.
 *
 * @example
 * ```ts
 * const receiver = await startHttpReceiver();
 * receiver.respond((request, index) => (index === 0 ? { status: 503, headers: { "retry-after": "0" } } : {}));
 * // ... point an httpSender at receiver.url ...
 * expect(receiver.requests[0]?.headers["webhook-id"]).toBe("1");
 * await receiver.close();
 * ```
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createMessage, type Message } from "../../mod.ts";

/** One request as the receiver got it. */
export interface ReceivedRequest {
  method: string;
  /** Path and query, e.g. `/hook?x=1`. */
  path: string;
  /** Header names lowercased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Uint8Array;
  /** The body as UTF-8. */
  text(): string;
  /** A web-standard `Request` of the same method, URL, headers and body (for `verifyWebhook`). */
  toRequest(): Request;
}

/** How to answer one request; every field is optional (default: 200, empty body, at once). */
export interface ScriptedResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Wait this long before answering (an aborted client ends the wait early). */
  delayMs?: number;
  /** Destroy the connection (a TCP reset) instead of answering, after `delayMs`. */
  reset?: boolean;
  /**
   * Stream the body slowly: send the status and headers, then `count` chunks of `body` (default
   * "x"), one every `everyMs`, then end. A client that goes away stops the stream.
   */
  trickle?: { count: number; everyMs: number };
}

/** Chooses the answer to the request number `index` (0-based, in arrival order). */
export type Responder = (request: ReceivedRequest, index: number) => ScriptedResponse | undefined;

/** A running receiver. */
export interface HttpReceiver {
  /** `http://127.0.0.1:<port>/hook`: the URL to send to. */
  url: string;
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  /** Every request so far, in arrival order. */
  requests: ReceivedRequest[];
  /** Requests being answered right now. */
  readonly inFlight: number;
  /** The most requests ever in flight at once (since start or `reset`). */
  readonly maxInFlight: number;
  /** Answers the client went away from before they were complete (since start or `reset`). */
  readonly cutShort: number;
  /** Replaces the responder for the requests that follow. */
  respond(responder: Responder): void;
  /** Forgets recorded requests and the concurrency high-water mark. */
  reset(): void;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/** Starts a receiver; `respond` is the initial responder (default: 200 to everything). */
export async function startHttpReceiver(options: { respond?: Responder } = {}): Promise<HttpReceiver> {
  let responder: Responder = options.respond ?? (() => undefined);
  const requests: ReceivedRequest[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let cutShort = 0;
  let origin = "";

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const received = record(req, new Uint8Array(Buffer.concat(chunks)) as Uint8Array<ArrayBuffer>, origin);
      const index = requests.push(received) - 1;
      const answer = responder(received, index) ?? {};
      if (answer.delayMs) await wait(answer.delayMs, res);
      if (res.destroyed) {
        cutShort++;
        return;
      }
      if (answer.reset) {
        req.socket.destroy();
        return;
      }
      res.writeHead(answer.status ?? 200, answer.headers);
      if (answer.trickle) {
        for (let i = 0; i < answer.trickle.count; i++) {
          res.write(answer.body ?? "x");
          await wait(answer.trickle.everyMs, res);
          if (res.destroyed) {
            cutShort++;
            return;
          }
        }
      }
      res.end(answer.trickle ? "" : (answer.body ?? ""));
    } finally {
      inFlight--;
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/hook`,
    origin,
    requests,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    get cutShort() {
      return cutShort;
    },
    respond(next) {
      responder = next;
    },
    reset() {
      requests.length = 0;
      maxInFlight = inFlight;
      cutShort = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function record(req: IncomingMessage, body: Uint8Array<ArrayBuffer>, origin: string): ReceivedRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  const method = req.method ?? "GET";
  const path = req.url ?? "/";
  return {
    method,
    path,
    headers,
    body,
    text: () => new TextDecoder().decode(body),
    toRequest: () =>
      new Request(`${origin}${path}`, {
        method,
        headers,
        body: method === "GET" || method === "HEAD" ? null : body,
      }),
  };
}

/** Resolves after `ms`, or as soon as the client goes away. */
function wait(ms: number, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off("close", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    res.on("close", done);
  });
}

/**
 * A message as a relay would hand it to a sender (status `None`, no retries yet), for sender
 * tests and benchmarks: `value` defaults to `{"n":<id>}`.
 */
export function testMessage(
  id: string,
  value: string | Uint8Array<ArrayBuffer> = `{"n":${id}}`,
  headers: Record<string, string> = {},
): Message {
  return createMessage({
    id,
    key: `k${id}`,
    value: typeof value === "string" ? new TextEncoder().encode(value) : value.slice(),
    headers,
    timestamp: new Date(),
    retries: 0,
  });
}

/** A loopback URL where nothing listens (a port just released), for connection-refused tests. */
export async function unusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/hook`;
}
