/**
 * A local stand-in for the Upstash QStash REST API, for driving the real `@upstash/qstash`
 * client in tests (QStash's own dev server downloads a binary, which tests here must not).
 *
 * It follows the documented wire format: `POST /v2/publish/{destination}`,
 * `POST /v2/enqueue/{queue}/{destination}`, `POST /v2/batch` (a JSON array of
 * `{ destination, headers, body, queue? }`, answered with one entry per message, `{ error }` for a
 * refused one); bearer auth; `{ error }` bodies; deduplication by `Upstash-Deduplication-Id` (a
 * duplicate is accepted with 202 and the first message's id, `deduplicated: true`, and not
 * stored again); 429 with `Burst-RateLimit-*` (or the daily `RateLimit-*`) headers; 413 with
 * `{ error }` for a request body over `maxRequestBytes` (QStash's size limit, per plan). A
 * destination is an `http(s)` URL or the name of a URL group given at start. It stores
 * messages; `deliver()` then POSTs each stored message once to its URL, signed like QStash
 * (an `Upstash-Signature` HS256 JWT over the URL and body hash) so the client's `Receiver`
 * verifies it.
 *
 * @example
 * ```ts
 * const qstash = await startQStashStandIn();
 * const client = qstash.client(); // the real @upstash/qstash Client, pointed here
 * await client.publish({ url: "https://example.com/hook", body: "hi", deduplicationId: "1" });
 * expect(qstash.messages[0]?.deduplicationId).toBe("1");
 * await qstash.close();
 * ```
 */
import { createHash, createHmac, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@upstash/qstash";

/** A message the stand-in accepted (one per endpoint for a URL group). */
export interface StoredMessage {
  messageId: string;
  /** The destination as published: a URL or a URL group name. */
  destination: string;
  /** The endpoint URL it would be delivered to. */
  url: string;
  queue: string | undefined;
  via: "publish" | "enqueue" | "batch";
  body: Uint8Array;
  text(): string;
  /** What QStash would deliver: `Upstash-Forward-*` headers without the prefix, and `content-type`. */
  forwarded: Record<string, string>;
  /** Every `upstash-*` header as sent (names lowercased): method, retries, delay, callback, ... */
  upstash: Record<string, string>;
  deduplicationId: string | undefined;
}

/** A canned answer for the next request(s), instead of processing them. */
export interface CannedResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** A running stand-in. */
export interface QStashStandIn {
  /** `http://127.0.0.1:<port>`: the client's `baseUrl`. */
  baseUrl: string;
  /** The bearer token it accepts. */
  token: string;
  /**
   * A real `@upstash/qstash` `Client` for this stand-in: its own retries off (a test decides),
   * no telemetry headers, dev mode off. `token` defaults to the accepted one.
   */
  client(token?: string): Client;
  /** Accepted messages, in order (duplicates are not stored twice). */
  messages: StoredMessage[];
  /** Every request: method, path and the status answered. */
  requests: { method: string; path: string; status: number }[];
  /** Answers the next `count` requests with `response` (without storing anything). */
  respondNext(response: CannedResponse, count?: number): void;
  /** Answers the next request 429 like QStash's burst (or daily) limit, resetting at `resetAt` (unix s). */
  rateLimitNext(kind?: "burst" | "daily", resetAt?: number): void;
  /** Processes the next `count` requests normally but answers only after `ms`. */
  delayNext(ms: number, count?: number): void;
  /** Refuses matching messages: a string return is their `{ error }` (400 alone, an entry in a batch). */
  refuse(rule: ((message: StoredMessage) => string | undefined) | undefined): void;
  /** The keys deliveries are signed with (the current one); give both to `new Receiver(...)`. */
  signingKeys: { currentSigningKey: string; nextSigningKey: string };
  /**
   * POSTs every stored message not delivered yet to its URL, once, with its forwarded headers,
   * `Upstash-Message-Id` and `Upstash-Signature`; resolves with each delivery's status (0 when
   * the request failed). No retries: a test decides what happens next.
   */
  deliver(): Promise<{ messageId: string; url: string; status: number }[]>;
  /** Forgets messages, requests, deduplication ids, canned answers, delays and the refusal rule. */
  reset(): void;
  close(): Promise<void>;
}

interface Incoming {
  destination: string;
  queue: string | undefined;
  headers: Record<string, string>;
  body: Uint8Array;
  via: StoredMessage["via"];
}

type Entry = { messageId: string; url: string; deduplicated?: true } | { error: string };

/** Starts the stand-in on 127.0.0.1 and an ephemeral port. */
export async function startQStashStandIn(
  options: { token?: string; urlGroups?: Record<string, string[]>; maxRequestBytes?: number } = {},
): Promise<QStashStandIn> {
  const token = options.token ?? "stand-in-token";
  const urlGroups = options.urlGroups ?? {};
  const messages: StoredMessage[] = [];
  const requests: QStashStandIn["requests"] = [];
  const deduplicated = new Map<string, { messageId: string; url: string }[]>();
  const canned: CannedResponse[] = [];
  const delays: number[] = [];
  let refuse: ((message: StoredMessage) => string | undefined) | undefined;
  let nextId = 1;
  let delivered = 0;
  const signingKeys = { currentSigningKey: `sig_${randomUUID()}`, nextSigningKey: `sig_${randomUUID()}` };

  async function deliver(): Promise<{ messageId: string; url: string; status: number }[]> {
    const pending = messages.slice(delivered);
    delivered = messages.length;
    return Promise.all(
      pending.map(async (message) => {
        const headers = {
          ...message.forwarded,
          "upstash-message-id": message.messageId,
          "upstash-retried": "0",
          "upstash-signature": signDelivery(message.url, message.body, signingKeys.currentSigningKey),
        };
        const method = message.upstash["upstash-method"] ?? "POST";
        const hasBody = method !== "GET" && method !== "HEAD";
        try {
          const response = await fetch(message.url, {
            method,
            headers,
            body: hasBody ? (message.body as Uint8Array<ArrayBuffer>) : null,
            redirect: "manual",
          });
          await response.arrayBuffer();
          return { messageId: message.messageId, url: message.url, status: response.status };
        } catch {
          return { messageId: message.messageId, url: message.url, status: 0 };
        }
      }),
    );
  }

  /** Accepts one message (per endpoint); returns its answer entries and whether it was new. */
  function accept(incoming: Incoming): { status: number; entries: Entry[]; group: boolean } {
    const group = !/^https?:\/\//.test(incoming.destination);
    const endpoints = group ? urlGroups[incoming.destination] : [incoming.destination];
    if (!endpoints)
      return { status: 404, entries: [{ error: `urlGroup ${incoming.destination} not found` }], group };
    if (!group && !URL.canParse(incoming.destination)) {
      return { status: 400, entries: [{ error: `invalid destination url: ${incoming.destination}` }], group };
    }
    const dedupId = incoming.headers["upstash-deduplication-id"];
    const earlier = dedupId === undefined ? undefined : deduplicated.get(dedupId);
    if (earlier) return { status: 202, entries: earlier.map((e) => ({ ...e, deduplicated: true })), group };
    const built = endpoints.map((url) => build(incoming, url));
    const refusal = refuse ? built.map(refuse).find((r) => r !== undefined) : undefined;
    if (refusal !== undefined) return { status: 400, entries: [{ error: refusal }], group };
    messages.push(...built);
    const entries = built.map((m) => ({ messageId: m.messageId, url: m.url }));
    if (dedupId !== undefined) deduplicated.set(dedupId, entries);
    return { status: 201, entries, group };
  }

  function build(incoming: Incoming, url: string): StoredMessage {
    const forwarded: Record<string, string> = {};
    const upstash: Record<string, string> = {};
    for (const [name, value] of Object.entries(incoming.headers)) {
      if (name.startsWith("upstash-forward-")) forwarded[name.slice("upstash-forward-".length)] = value;
      else if (name.startsWith("upstash-")) upstash[name] = value;
      else if (name === "content-type") forwarded[name] = value;
    }
    const body = incoming.body;
    return {
      messageId: `msg_${nextId++}`,
      destination: incoming.destination,
      url,
      queue: incoming.queue,
      via: incoming.via,
      body,
      text: () => new TextDecoder().decode(body),
      forwarded,
      upstash,
      deduplicationId: incoming.headers["upstash-deduplication-id"],
    };
  }

  async function route(req: IncomingMessage, path: string, body: Uint8Array): Promise<CannedResponse> {
    if (req.headers.authorization !== `Bearer ${token}`)
      return { status: 401, body: { error: "Unauthorized" } };
    const headers = lowercase(req.headers);
    if (options.maxRequestBytes !== undefined && body.byteLength > options.maxRequestBytes) {
      return {
        status: 413,
        body: { error: `request body exceeds the limit of ${options.maxRequestBytes} bytes` },
      };
    }
    if (req.method === "POST" && path.startsWith("/v2/publish/")) {
      const destination = decodeURIComponent(path.slice("/v2/publish/".length));
      return single(accept({ destination, queue: undefined, headers, body, via: "publish" }));
    }
    const enqueue = /^\/v2\/enqueue\/([^/]+)\/(.+)$/.exec(path);
    if (req.method === "POST" && enqueue) {
      const [, queue, destination] = enqueue;
      return single(
        accept({ destination: decodeURIComponent(destination!), queue, headers, body, via: "enqueue" }),
      );
    }
    if (req.method === "POST" && path === "/v2/batch") return batch(body);
    return { status: 404, body: { error: `no route for ${req.method} ${path}` } };
  }

  function single(result: ReturnType<typeof accept>): CannedResponse {
    const { status, entries, group } = result;
    if (status >= 400) return { status, body: entries[0] };
    return { status, body: group ? entries : entries[0] };
  }

  function batch(raw: Uint8Array): CannedResponse {
    let items: unknown;
    try {
      items = JSON.parse(new TextDecoder().decode(raw));
    } catch {
      return { status: 400, body: { error: "body must be a JSON array of messages" } };
    }
    if (!Array.isArray(items))
      return { status: 400, body: { error: "body must be a JSON array of messages" } };
    for (const item of items) {
      if (typeof item?.destination !== "string") {
        return { status: 400, body: { error: "every message needs a destination" } };
      }
    }
    const answers = items.map(
      (item: { destination: string; headers?: object; body?: string; queue?: string }) => {
        const { entries, group } = accept({
          destination: item.destination,
          queue: item.queue,
          headers: lowercase((item.headers ?? {}) as Record<string, string>),
          body: new TextEncoder().encode(item.body ?? ""),
          via: "batch",
        });
        return group && entries.every((entry) => !("error" in entry)) ? entries : entries[0];
      },
    );
    return { status: 200, body: answers };
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    // The destination URL is part of the path and may carry its own query: keep it whole.
    const path = req.url ?? "/";
    const answer = canned.shift() ?? (await route(req, path, new Uint8Array(Buffer.concat(chunks))));
    const delay = delays.shift();
    if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
    requests.push({ method: req.method ?? "GET", path, status: answer.status });
    if (res.destroyed) return;
    res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
    res.end(answer.body === undefined ? "" : JSON.stringify(answer.body));
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    baseUrl,
    token,
    client: (clientToken = token) =>
      new Client({ token: clientToken, baseUrl, retry: false, enableTelemetry: false, devMode: false }),
    messages,
    requests,
    respondNext(response, count = 1) {
      for (let i = 0; i < count; i++) canned.push(response);
    },
    rateLimitNext(kind = "burst", resetAt = Math.floor(Date.now() / 1000) + 30) {
      const prefix = kind === "burst" ? "Burst-RateLimit" : "RateLimit";
      canned.push({
        status: 429,
        headers: {
          [`${prefix}-Limit`]: "100",
          [`${prefix}-Remaining`]: "0",
          [`${prefix}-Reset`]: String(resetAt),
        },
        body: { error: "rate limit exceeded" },
      });
    },
    delayNext(ms, count = 1) {
      for (let i = 0; i < count; i++) delays.push(ms);
    },
    refuse(rule) {
      refuse = rule;
    },
    signingKeys,
    deliver,
    reset() {
      messages.length = 0;
      delivered = 0;
      requests.length = 0;
      deduplicated.clear();
      canned.length = 0;
      delays.length = 0;
      refuse = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function lowercase(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) result[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return result;
}

/** QStash's delivery signature: an HS256 JWT (issuer `Upstash`, subject the URL, `body` the base64url SHA-256). */
function signDelivery(url: string, body: Uint8Array, key: string): string {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const header = encode({ alg: "HS256", typ: "JWT" });
  const claims = encode({
    iss: "Upstash",
    sub: url,
    iat: now,
    nbf: now,
    exp: now + 300,
    jti: randomUUID(),
    body: createHash("sha256").update(body).digest("base64url"),
  });
  const signature = createHmac("sha256", key).update(`${header}.${claims}`).digest("base64url");
  return `${header}.${claims}.${signature}`;
}
