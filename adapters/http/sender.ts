import { type Message, type Sender, ValidationError } from "../../mod.ts";
import { type HttpSenderOptions, resolveHttpOptions } from "./options.ts";
import { importHmacKeys, signatureHeader, signedContent } from "./signing.ts";
import { classifyStatus, parseRetryAfter } from "./status.ts";
import { type HttpTransport, requestUrl, type TransportResponse } from "./transport.ts";
import { fetchTransport } from "./transport-fetch.ts";

/** The {@link Sender} `httpSender` returns: it also says which HTTP client it sends with. */
export interface HttpSender extends Sender {
  /**
   * `"node:http"` on Node (the package's `node` build, keep-alive agents), `"fetch"` everywhere
   * else, and wherever `httpSender` was given its own `fetch`.
   */
  readonly transport: string;
}

// The web build's transport: the global fetch, looked up per request.
const defaultFetchTransport = fetchTransport();
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
 * headers, then `headers`, then `DEFAULT_CONTENT_TYPE` (`application/octet-stream`). `webhook-id` is the message id:
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
export function httpSender(options: HttpSenderOptions): HttpSender {
  return createHttpSender(options, defaultFetchTransport);
}

/**
 * `httpSender` over `transport` unless `options.fetch` is given (an explicit `fetch` always
 * wins): each build of `edge-outbox/http` passes its own default.
 */
export function createHttpSender(options: HttpSenderOptions, transport: HttpTransport): HttpSender {
  const config = resolveHttpOptions(options);
  const client = options.fetch === undefined ? transport : fetchTransport(config.fetch);
  let keys: Promise<CryptoKey[]> | undefined;
  // A fixed URL is parsed and checked once; a URL function's result, per message.
  const fixedUrl = typeof config.url === "string" ? constructionUrl(config.url) : undefined;

  async function deliver(message: Message, signal: AbortSignal, timestamp: string, signed?: Promise<Signed>) {
    let response: TransportResponse;
    try {
      const url = fixedUrl ?? requestUrl((config.url as (message: Message) => string)(message));
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
      response = await client.request({ method: "POST", url, headers, body, signal });
    } catch (error) {
      message.markAsFailed({ error: describeFailure(message.id, error, signal) });
      return;
    }
    record(message, response);
  }

  function record(message: Message, response: TransportResponse): void {
    const status = response.status;
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
    const retryAfter = parseRetryAfter(response.header("retry-after"));
    message.markAsFailed({
      error,
      retryAfter: retryAfter === undefined ? undefined : Math.min(retryAfter, config.maxRetryAfter),
    });
  }

  return {
    transport: client.name,
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

/** {@link requestUrl} for the URL given at construction: a bad one is an option error. */
function constructionUrl(url: string): URL {
  try {
    return requestUrl(url);
  } catch (error) {
    throw new ValidationError((error as Error).message);
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
  // fetch puts the system error's code (ECONNREFUSED, ...) on its cause; node:http on the error.
  const code = [
    (error as { cause?: { code?: unknown } }).cause?.code,
    (error as { code?: unknown }).code,
  ].find((c): c is string => typeof c === "string" && !error.message.includes(c));
  const suffix = code === undefined ? "" : ` (${code})`;
  return `request for message ${messageId} failed: ${error.name}: ${error.message}${suffix}`;
}
