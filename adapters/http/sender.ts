import type { Message, Sender } from "../../mod.ts";
import { callPermanent, describeThrown, safeText } from "../shared/error-text.ts";
import { CONNECTION_HEADERS, sendableHeaders } from "../shared/headers.ts";
import { checkTargetUrl } from "../shared/urls.ts";
import { type BreakerSnapshot, Breakers, isTicket, type Ticket } from "./breaker.ts";
import { observeBreakers } from "./breaker-metrics.ts";
import { RequestDeadlines } from "./deadline.ts";
import { type HttpSenderOptions, resolveHttpOptions } from "./options.ts";
import { importHmacKeys, signatureHeader, signedContent } from "./signing.ts";
import { isUnhealthyStatus, parseRetryAfter } from "./status.ts";
import type { HttpTransport, TransportResponse } from "./transport.ts";
import { fetchTransport } from "./transport-fetch.ts";

/** The {@link Sender} `httpSender` returns: it also says which HTTP client it sends with. */
export interface HttpSender extends Sender {
  /**
   * `"node:http"` on Node (the package's `node` build, keep-alive agents), `"fetch"` everywhere
   * else, and wherever `httpSender` was given its own `fetch`.
   */
  readonly transport: string;
  /**
   * The circuit breaker of every origin this sender has sent to (up to 1000; past that, healthy
   * ones are forgotten first, see the README), as of now: `[]` with `breaker: false`. An open breaker whose cool-down is
   * over shows as `half_open` (its next message is a probe).
   *
   * @example
   * ```ts
   * for (const b of sender.breakers()) if (b.state !== "closed") console.warn(b.origin, b.state, b.openUntil);
   * ```
   */
  breakers(): BreakerSnapshot[];
  /**
   * The relay's streaming send window (`Sender.window`): `concurrency`. Each message is its own
   * request, so the relay may keep `concurrency` messages in flight continuously, calling `send`
   * with one message at a time; every call shares this sender's breakers.
   */
  readonly window: number;
}

// The web build's transport: the global fetch, looked up per request.
const defaultFetchTransport = fetchTransport();
// Connection-level headers belong to this hop, and the signature headers to the sender:
// a message header by one of these names is not forwarded.
const NOT_FORWARDED: ReadonlySet<string> = new Set([
  ...CONNECTION_HEADERS,
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
]);

/**
 * A {@link Sender} that POSTs each message to an HTTP endpoint, signed per Standard Webhooks.
 *
 * Each message is one request: the body is the message value, the message headers are
 * forwarded (including the trace headers the registered OpenTelemetry propagator wrote),
 * `content-type` comes from the message headers, then `headers`, then `DEFAULT_CONTENT_TYPE`
 * (`application/octet-stream`). `webhook-id` is the message id:
 * the receiver's idempotency key. Every request has its own deadline, `requestTimeout`, under
 * the relay's signal (its `sendTimeout`), and uses `redirect: "manual"`. Messages are sent
 * independently, `concurrency` at a time: one slow request holds one slot, never the others.
 *
 * Outcomes: 2xx sent; 3xx, 408, 425, 429, 5xx, network errors and timeouts fail and are
 * retried (after `Retry-After` when given, in seconds or as an HTTP date); other 4xx are dead
 * at once (see `permanent`). An origin whose circuit breaker is open (see `breaker`) gets no
 * request: its messages fail with `attempted: false` and a `retryAfter`. Error texts name the status and the message id, never a secret,
 * a URL's credentials or query, or the response body; they are well-formed and bounded.
 *
 * User callbacks are contained: a `url(message)` that throws or returns anything but an
 * absolute http(s) URL without credentials, and a `permanent(status)` that throws or returns a
 * non-boolean, fail that message (it is retried, and dead after `maxRetries` like any failure,
 * so a fixed deployment picks it up) with an error naming the callback; the rest of the batch
 * is sent. A `traceparent`/`tracestate` that is not a sendable header value (a `tracestate`
 * with non-Latin-1 text, say) is dropped, never a reason to fail.
 *
 * @throws {ValidationError} on a bad option (a relative or non-http URL, a URL with
 * `user:password@`, a bad secret, a missing `secret` without `unsigned: true`, ...).
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
  let imported: CryptoKey[] | undefined;
  const importKeys = async (secrets: NonNullable<typeof config.secrets>): Promise<CryptoKey[]> => {
    keys ??= importHmacKeys(secrets).catch((error: unknown) => {
      keys = undefined; // let the next batch try again
      throw error;
    });
    imported = await keys;
    return imported;
  };
  // A fixed URL was checked by resolveHttpOptions and is parsed once; a URL function's
  // result is checked per message.
  const fixedUrl = typeof config.url === "string" ? new URL(config.url) : undefined;
  const breakers = config.breaker ? new Breakers(config.breaker, config.requestTimeout) : undefined;
  if (breakers) observeBreakers(config.meter, breakers);
  const timeoutReason = () => new Error(`no response within requestTimeout (${config.requestTimeout} ms)`);

  /**
   * The URL and headers of one request, or why the message cannot be sent. Never throws: a
   * `url(message)` result that throws when inspected (a revoked Proxy, a throwing `then` getter)
   * fails its own message, not the batch.
   */
  function prepare(message: Message): { url: URL; headers: Record<string, string> } | { error: string } {
    try {
      return prepareOrThrow(message);
    } catch (error) {
      return { error: `message ${message.id} could not be prepared for sending: ${describeThrown(error)}` };
    }
  }

  function prepareOrThrow(
    message: Message,
  ): { url: URL; headers: Record<string, string> } | { error: string } {
    let url = fixedUrl;
    if (url === undefined) {
      let returned: unknown;
      try {
        returned = (config.url as (message: Message) => unknown)(message);
      } catch (error) {
        return { error: `url(message) threw for message ${message.id}: ${describeThrown(error)}` };
      }
      let checked: ReturnType<typeof checkTargetUrl>;
      try {
        checked = checkTargetUrl(returned);
      } catch (error) {
        return {
          error: `url(message) for message ${message.id} returned a value that throws when read: ${describeThrown(error)}`,
        };
      }
      if ("problem" in checked) {
        return { error: `url(message) for message ${message.id} returned a URL that ${checked.problem}` };
      }
      url = new URL(checked.url);
    }
    const own = sendableHeaders(message.headers, NOT_FORWARDED);
    if ("error" in own) return { error: `message ${message.id}: ${own.error}` };
    const headers: Record<string, string> = { ...config.headers, ...own.headers };
    headers["webhook-id"] = message.id;
    return { url, headers };
  }

  async function deliver(
    message: Message,
    deadlines: RequestDeadlines,
    signal: AbortSignal,
    timestamp: string,
    signed?: Promise<Signed>,
  ) {
    const prepared = prepare(message);
    if ("error" in prepared) {
      message.markAsFailed({ error: prepared.error });
      return;
    }
    const { url, headers } = prepared;
    headers["webhook-timestamp"] = timestamp;
    let body = message.value as Uint8Array<ArrayBuffer>;
    if (signed) {
      const signature = await signed;
      if ("error" in signature) {
        message.markAsFailed({ error: describeFailure(message.id, signature.error, signal) });
        return;
      }
      headers["webhook-signature"] = signature.header;
      body = signature.body;
    }
    if (signal.aborted) {
      // The send is over (sendTimeout, stop()): no request, and nothing for the breaker to learn.
      message.markAsFailed({ error: describeFailure(message.id, signal.reason, signal) });
      return;
    }
    const admission = breakers?.admit(url.origin);
    if (admission !== undefined && !isTicket(admission)) {
      message.markAsFailed({
        error: `${admission.reason}; message ${message.id} not sent, retry in ${admission.retryAfter} ms`,
        retryAfter: admission.retryAfter,
        attempted: false,
      });
      return;
    }
    const deadline = deadlines.start(timeoutReason);
    let response: TransportResponse;
    try {
      response = await client.request({
        method: "POST",
        url,
        headers,
        body,
        // Read only by a transport without the hook (fetch): the deadline makes it then.
        get signal() {
          return deadline.signal;
        },
        abort: deadline,
      });
    } catch (error) {
      if (admission !== undefined) {
        const unhealthy = deadline.timedOut()
          ? "no response within requestTimeout"
          : deadline.cutBySendTimeout()
            ? "no response within sendTimeout"
            : signal.aborted
              ? undefined // stopped by the caller: says nothing about the endpoint
              : describeThrown(error);
        if (unhealthy === undefined) breakers!.release(admission);
        else breakers!.settle(admission, unhealthy);
      }
      message.markAsFailed({ error: describeFailure(message.id, error, deadline) });
      return;
    } finally {
      deadline.dispose();
    }
    record(message, response, admission);
  }

  function record(message: Message, response: TransportResponse, ticket: Ticket | undefined): void {
    const status = response.status;
    if (ticket !== undefined)
      breakers!.settle(ticket, isUnhealthyStatus(status) ? `HTTP ${status}` : undefined);
    if (status >= 200 && status < 300) {
      message.markAsSent();
      return;
    }
    const error = describeStatus(message.id, status);
    const verdict = callPermanent(config.permanent, status);
    if ("error" in verdict) {
      message.markAsFailed({ error: `${error}; ${verdict.error}` });
      return;
    }
    if (verdict.permanent) {
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
    window: config.concurrency,
    breakers: () => breakers?.snapshot() ?? [],
    async send(messages, signal) {
      // Imported once: later sends (the window makes one per message) take them without a wait.
      const signing = config.secrets ? (imported ?? (await importKeys(config.secrets))) : undefined;
      // One timestamp per batch, and every signature started up front: Web Crypto works off the
      // main thread, so the HMACs of later messages are ready by the time a worker reaches them.
      const seconds = Math.floor(Date.now() / 1000);
      const timestamp = String(seconds);
      const signed = signing ? messages.map((m) => sign(m, seconds, signing)) : undefined;
      // Each message is its own request under its own deadline: one that hangs costs its slot
      // requestTimeout, and the other workers go on meanwhile.
      const deadlines = new RequestDeadlines(signal, config.requestTimeout);
      const workers = Math.min(config.concurrency, messages.length);
      try {
        if (workers <= 1) {
          // One at a time (the send window's single message): no worker closures to make.
          for (let index = 0; index < messages.length; index++) {
            await deliver(messages[index]!, deadlines, signal, timestamp, signed?.[index]);
          }
        } else {
          let next = 0;
          const worker = async () => {
            while (next < messages.length) {
              const index = next++;
              await deliver(messages[index]!, deadlines, signal, timestamp, signed?.[index]);
            }
          };
          const running: Promise<void>[] = [];
          for (let i = 0; i < workers; i++) running.push(worker());
          await Promise.all(running);
        }
      } finally {
        deadlines.dispose();
      }
      return messages;
    },
  };
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

/**
 * Why a request failed, for the message's stored error: well-formed, bounded, and with any URL
 * in a runtime's message redacted (no credentials, no query).
 */
function describeFailure(
  messageId: string,
  error: unknown,
  signal: { readonly aborted: boolean; readonly reason: unknown },
): string {
  if (signal.aborted) {
    const reason = signal.reason instanceof Error ? `: ${safeText(signal.reason.message)}` : "";
    return `request for message ${messageId} aborted${reason}`;
  }
  return `request for message ${messageId} failed: ${describeThrown(error)}`;
}
