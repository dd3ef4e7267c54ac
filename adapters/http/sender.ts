import { type Message, type Sender, ValidationError } from "../../mod.ts";
import {
  decodeSecrets,
  importHmacKeys,
  signatureHeader,
  signedContent,
  type WebhookSecrets,
} from "./signing.ts";
import { classifyStatus, isPermanentStatus, parseRetryAfter } from "./status.ts";

/** Options of {@link httpSender}. */
export interface HttpSenderOptions {
  /**
   * Where each message is POSTed: an absolute `http:`/`https:` URL, checked at construction,
   * or a function of the message (its result is not checked ahead; a bad one fails the message).
   */
  url: string | ((message: Message) => string);
  /**
   * Static headers on every request. A message's own headers override them; the
   * `webhook-*` signature headers override both.
   */
  headers?: Record<string, string>;
  /**
   * Standard Webhooks signing secret(s): `whsec_` + base64, or raw key bytes. With an array
   * (rotation) each request carries one signature per secret. Default: requests are unsigned,
   * but still carry `webhook-id` and `webhook-timestamp`.
   */
  secret?: WebhookSecrets | undefined;
  /** Requests in flight at once per batch (a worker pool, not one request per message at once). Default 8. */
  concurrency?: number;
  /** The `fetch` to use (tests, proxies, instrumentation). Default: the global `fetch`. */
  fetch?: typeof fetch;
  /**
   * Which non-2xx statuses are permanent (the message dies at once instead of being retried).
   * Default {@link isPermanentStatus}: 4xx except 408, 425 and 429. `() => false` retries all.
   */
  permanent?: (status: number) => boolean;
  /** Upper bound (ms) on a honoured `Retry-After`, so one header cannot park a message for years. Default 3_600_000 (1 h). */
  maxRetryAfter?: number;
}

/** The `content-type` sent when neither the message nor `headers` names one. */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";
const DEFAULT_CONCURRENCY = 8;
const DEFAULT_MAX_RETRY_AFTER = 3_600_000;
const MAX_DRAINED_BYTES = 64 * 1024;
// RFC 9110 token characters for header names; values without CR, LF, NUL or other controls.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// Connection-level headers belong to this hop, and the signature headers to the sender:
// a message header by one of these names is not forwarded.
const NOT_FORWARDED: ReadonlySet<string> = new Set([
  "connection",
  "content-length",
  "host",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
]);

/**
 * A {@link Sender} that POSTs each message to an HTTP endpoint, signed per Standard Webhooks.
 *
 * Each message is one request: the body is the message value, the message headers are
 * forwarded (including `traceparent`/`tracestate`), `content-type` comes from the message
 * headers, then `headers`, then {@link DEFAULT_CONTENT_TYPE}. `webhook-id` is the message id:
 * the receiver's idempotency key. Every request uses the relay's signal (its `sendTimeout`)
 * and `redirect: "manual"`.
 *
 * Outcomes: 2xx sent; 3xx, 408, 425, 429, 5xx, network errors and timeouts fail and are
 * retried (after `Retry-After` when given, in seconds or as an HTTP date); other 4xx are dead
 * at once (see `permanent`). Error texts name the status and the message id, never a secret
 * or the response body.
 *
 * @throws {ValidationError} on a bad option (a relative or non-http URL, a bad secret, ...).
 * @example
 * ```ts
 * const sender = httpSender({ url: "https://example.com/hooks", secret: env.WEBHOOK_SECRET });
 * const outbox = new Outbox(store, sender);
 * ```
 */
export function httpSender(options: HttpSenderOptions): Sender {
  const config = resolve(options);
  let keys: Promise<CryptoKey[]> | undefined;

  async function deliver(message: Message, signal: AbortSignal, timestamp: string, signed?: Promise<Signed>) {
    let response: Response;
    try {
      const url = typeof config.url === "string" ? config.url : config.url(message);
      const headers: Record<string, string> = { ...config.headers };
      const forwarded = message.headers;
      for (const name in forwarded) {
        if (!NOT_FORWARDED.has(name)) headers[name] = forwarded[name]!;
      }
      headers["webhook-id"] = message.id;
      headers["webhook-timestamp"] = timestamp;
      let body = message.value as Uint8Array<ArrayBuffer>;
      if (signed) {
        const signature = await signed;
        if ("error" in signature) throw signature.error;
        headers["webhook-signature"] = signature.header;
        body = signature.body;
      }
      response = await config.fetch(url, { method: "POST", headers, body, redirect: "manual", signal });
    } catch (error) {
      message.markAsFailed({ error: describeFailure(message.id, error, signal) });
      return;
    }
    record(message, response);
    await discardBody(response);
  }

  function record(message: Message, response: Response): void {
    // With redirect "manual", browsers and some runtimes answer an opaque redirect (status 0).
    const status = response.type === "opaqueredirect" ? 0 : response.status;
    const outcome = classifyStatus(status, config.permanent);
    if (outcome === "sent") {
      message.markAsSent();
      return;
    }
    const error = describeStatus(message.id, status);
    if (outcome === "dead") {
      message.markAsDead({ error });
      return;
    }
    const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
    message.markAsFailed({
      error,
      retryAfter: retryAfter === undefined ? undefined : Math.min(retryAfter, config.maxRetryAfter),
    });
  }

  return {
    async send(messages, signal) {
      let signing: CryptoKey[] | undefined;
      if (config.secrets) {
        keys ??= importHmacKeys(config.secrets).catch((error: unknown) => {
          keys = undefined; // let the next batch try again
          throw error;
        });
        signing = await keys;
      }
      // One timestamp per batch, and every signature started up front: Web Crypto works off the
      // main thread, so the HMACs of later messages are ready by the time a worker reaches them.
      const seconds = Math.floor(Date.now() / 1000);
      const timestamp = String(seconds);
      const signed = signing ? messages.map((m) => sign(m, seconds, signing)) : undefined;
      let next = 0;
      const worker = async () => {
        while (next < messages.length) {
          const index = next++;
          await deliver(messages[index]!, signal, timestamp, signed?.[index]);
        }
      };
      const workers = Math.min(config.concurrency, messages.length);
      if (workers === 1) await worker();
      else {
        const running: Promise<void>[] = [];
        for (let i = 0; i < workers; i++) running.push(worker());
        await Promise.all(running);
      }
      return messages;
    },
  };
}

/**
 * Frees the response after the status has decided. A small body is read to the end, so the
 * connection goes back to the pool; a large or unsized one is cancelled rather than buffered.
 */
async function discardBody(response: Response): Promise<void> {
  if (response.body === null) return;
  const length = Number(response.headers.get("content-length") ?? Number.NaN);
  try {
    if (length <= MAX_DRAINED_BYTES) await response.arrayBuffer();
    else await response.body.cancel();
  } catch {
    // A body cut short changes nothing: the status decided.
  }
}

/** A message's signature and the body it covers, or why signing failed (never a rejection). */
type Signed = { header: string; body: Uint8Array<ArrayBuffer> } | { error: unknown };

function sign(message: Message, timestamp: number, keys: CryptoKey[]): Promise<Signed> {
  const { content, prefixLength } = signedContent(message.id, timestamp, message.value);
  // The body is the tail of the signed content: one copy of the value, not two.
  return signatureHeader(keys, content).then(
    (header) => ({ header, body: content.subarray(prefixLength) }),
    (error: unknown) => ({ error }),
  );
}

interface ResolvedHttpOptions {
  url: string | ((message: Message) => string);
  headers: Record<string, string>;
  secrets: ReturnType<typeof decodeSecrets> | undefined;
  concurrency: number;
  fetch: typeof fetch;
  permanent: (status: number) => boolean;
  maxRetryAfter: number;
}

function resolve(options: HttpSenderOptions): ResolvedHttpOptions {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError(`httpSender options must be an object { url, ... }, got ${show(options)}`);
  }
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== "function") {
    throw new ValidationError(`fetch must be a function, got ${show(options.fetch)}`);
  }
  if (options.permanent !== undefined && typeof options.permanent !== "function") {
    throw new ValidationError(
      `permanent must be a function (status) => boolean, got ${show(options.permanent)}`,
    );
  }
  const headers: Record<string, string> = { "content-type": DEFAULT_CONTENT_TYPE };
  for (const [name, value] of Object.entries(checkHeaders(options.headers)))
    headers[name.toLowerCase()] = value;
  return {
    url: checkUrl(options.url),
    headers,
    secrets: options.secret === undefined ? undefined : decodeSecrets(options.secret, "secret"),
    concurrency: positiveInteger("concurrency", options.concurrency, DEFAULT_CONCURRENCY),
    // Bound to globalThis: some runtimes throw "Illegal invocation" for a detached fetch.
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    permanent: options.permanent ?? isPermanentStatus,
    maxRetryAfter: nonNegative("maxRetryAfter", options.maxRetryAfter, DEFAULT_MAX_RETRY_AFTER),
  };
}

function checkUrl(url: unknown): string | ((message: Message) => string) {
  if (typeof url === "function") return url as (message: Message) => string;
  if (typeof url !== "string") {
    throw new ValidationError(
      `url must be an absolute http(s) URL or a function of the message, got ${show(url)}`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError(`url must be an absolute http(s) URL, got ${show(url)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ValidationError(`url must use http: or https:, got ${parsed.protocol}`);
  }
  return url;
}

function checkHeaders(headers: unknown): Record<string, string> {
  if (headers === undefined) return {};
  if (typeof headers !== "object" || headers === null || Array.isArray(headers)) {
    throw new ValidationError(`headers must be an object of string values, got ${show(headers)}`);
  }
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name))
      throw new ValidationError(`headers: "${name}" is not a valid HTTP header name`);
    if (typeof value !== "string" || !HEADER_VALUE.test(value)) {
      throw new ValidationError(`headers["${name}"] must be a string without CR, LF or control characters`);
    }
  }
  return headers as Record<string, string>;
}

function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new ValidationError(`${name} must be an integer >= 1, got ${show(value)}`);
  }
  return value;
}

function nonNegative(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(`${name} must be a finite number of milliseconds >= 0, got ${show(value)}`);
  }
  return value;
}

function show(value: unknown): string {
  if (typeof value === "string") return `"${value.length > 60 ? `${value.slice(0, 60)}...` : value}"`;
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return String(value);
}

/** `HTTP 503 for message 42`: status and id only (a response body may echo secrets or PII). */
function describeStatus(messageId: string, status: number): string {
  if (status === 0 || (status >= 300 && status < 400)) {
    return `HTTP ${status || "redirect"} for message ${messageId}: redirects are not followed`;
  }
  return `HTTP ${status} for message ${messageId}`;
}

function describeFailure(messageId: string, error: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const reason = signal.reason instanceof Error ? `: ${signal.reason.message}` : "";
    return `request for message ${messageId} aborted${reason}`;
  }
  if (!(error instanceof Error)) return `request for message ${messageId} failed: ${String(error)}`;
  const cause = (error as { cause?: { code?: unknown } }).cause;
  const code = typeof cause?.code === "string" ? ` (${cause.code})` : "";
  return `request for message ${messageId} failed: ${error.name}: ${error.message}${code}`;
}
