import type { Meter } from "@opentelemetry/api";
import { type Message, ValidationError } from "../../mod.ts";
import { CONNECTION_HEADERS, checkStaticHeaders } from "../shared/headers.ts";
import { checkTargetUrl } from "../shared/urls.ts";
import { type BreakerOptions, DEFAULT_BREAKER } from "./breaker.ts";
import { decodeSecrets, type WebhookSecrets } from "./signing.ts";
import { isPermanentStatus } from "./status.ts";

/** Options of `httpSender`. */
export interface HttpSenderOptions {
  /**
   * Where each message is POSTed: an absolute `http:`/`https:` URL without `user:password@`
   * (put credentials in `headers`), checked at construction; or a function of the message,
   * whose result is checked the same way for each message. A function that throws or returns
   * anything else fails that message (retried like any failure) with an error naming `url`;
   * it never fails the batch.
   */
  url: string | ((message: Message) => string);
  /**
   * Static headers on every request. A message's own headers override them; the
   * `webhook-*` signature headers override both.
   */
  headers?: Record<string, string>;
  /**
   * Standard Webhooks signing secret(s): `whsec_` + base64, or raw key bytes. With an array
   * (rotation) each request carries one signature per secret. Required unless `unsigned` is
   * `true`, so an unset environment variable fails at start-up instead of sending requests
   * every receiver refuses.
   */
  secret?: WebhookSecrets | undefined;
  /**
   * Send without a signature (requests still carry `webhook-id` and `webhook-timestamp`), for a
   * receiver that authenticates some other way. Default `false`; a `secret` given anyway is used.
   */
  unsigned?: boolean;
  /**
   * Messages in flight at once: the relay's streaming send window (`sender.window`), each
   * message its own request, refilled as they finish. (A sender called with a whole batch
   * outside the relay sends it `concurrency` requests at a time.) An integer from 1 to
   * {@link MAX_CONCURRENCY} (the largest window the relay accepts). Default 8.
   */
  concurrency?: number;
  /**
   * The `fetch` to send with (tests, proxies, instrumentation); given, it wins on every runtime.
   * Default: `node:http` keep-alive agents on Node (the package's `node` build), the global
   * `fetch` everywhere else.
   */
  fetch?: typeof fetch;
  /**
   * Which non-2xx statuses are permanent (the message dies at once instead of being retried).
   * Default {@link isPermanentStatus}: 4xx except 408, 425 and 429. `() => false` retries all.
   * When it throws or returns a non-boolean, that message fails (and is retried) with an error
   * naming `permanent`.
   */
  permanent?: (status: number) => boolean;
  /** Upper bound (ms) on a honoured `Retry-After`, so one header cannot park a message for years. Default 3_600_000 (1 h). */
  maxRetryAfter?: number;
  /**
   * Milliseconds one request may take, from connecting to the end of the response body. Past it
   * the request is aborted and its message alone fails (retried like any failure), freeing its
   * slot for the next message; a response whose status arrived in time but whose body is still
   * streaming is cut there, and its status decides. The relay's `sendTimeout` stays the ceiling
   * of a whole send. Default {@link DEFAULT_REQUEST_TIMEOUT} (1000): half the default
   * `sendTimeout`, far above what a webhook receiver that acknowledges before working needs,
   * and short enough that one hanging request costs its slot one second, not the whole send.
   * Keep it below `sendTimeout`. From 1 to 2147483647 (the longest timer runtimes keep).
   */
  requestTimeout?: number;
  /**
   * A circuit breaker per origin (scheme, host and port of the URL a message resolves to), or
   * `false` for none. After `failureThreshold` unhealthy outcomes in a row (a timeout, a
   * connection error, 408, 429 or 5xx) the origin's breaker opens: its messages then fail at
   * once, without a request and without spending an attempt
   * (`markAsFailed({ attempted: false, retryAfter })`, `retryAfter` = the time left until a
   * probe may go, rounded up to 100 ms), while other origins are sent as usual. After the cool-down, one probe
   * request goes: a healthy answer closes the breaker, a failure opens it again for twice as
   * long. A 2xx, 3xx or other 4xx answer counts as healthy (the server is up and answering).
   * Default: on, with {@link DEFAULT_BREAKER}'s settings. State is per sender, never shared.
   */
  breaker?: BreakerOptions | false;
  /**
   * The OpenTelemetry meter of the `outbox.http.breaker.state` gauge. Default: the global
   * provider's `edge-outbox` meter, taken when `httpSender` is called (register the SDK first).
   */
  meter?: Meter;
}

/** The `content-type` sent when neither the message nor `headers` names one. */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";
const DEFAULT_CONCURRENCY = 8;
/** The largest `concurrency`: the largest `Sender.window` the relay accepts. */
export const MAX_CONCURRENCY = 10_000;
/** The longest breaker cool-down (`cooldownMs`, `maxCooldownMs`): one day. */
export const MAX_COOLDOWN_MS = 86_400_000;
const DEFAULT_MAX_RETRY_AFTER = 3_600_000;
/** The default `requestTimeout`: half of the relay's default `sendTimeout` (2000 ms). */
export const DEFAULT_REQUEST_TIMEOUT = 1_000;
// setTimeout fires at once for a delay past 2^31 - 1 ms on every runtime.
const MAX_TIMER_MS = 2_147_483_647;

/** Options with every default filled in and every value checked. */
export interface ResolvedHttpOptions {
  url: string | ((message: Message) => string);
  headers: Record<string, string>;
  secrets: ReturnType<typeof decodeSecrets> | undefined;
  concurrency: number;
  fetch: typeof fetch;
  permanent: (status: number) => boolean;
  maxRetryAfter: number;
  requestTimeout: number;
  breaker: Required<BreakerOptions> | false;
  meter: Meter | undefined;
}

/** Checks `options` and fills in the defaults; throws a {@link ValidationError} naming the bad one. */
export function resolveHttpOptions(options: HttpSenderOptions): ResolvedHttpOptions {
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
  const headers: Record<string, string> = {
    "content-type": DEFAULT_CONTENT_TYPE,
    ...checkStaticHeaders(options.headers, "headers", CONNECTION_HEADERS),
  };
  const resolved: ResolvedHttpOptions = {
    url: checkUrl(options.url),
    headers,
    secrets: options.secret === undefined ? undefined : decodeSecrets(options.secret, "secret"),
    concurrency: positiveInteger(
      "concurrency",
      options.concurrency,
      DEFAULT_CONCURRENCY,
      MAX_CONCURRENCY,
      "the relay's largest send window",
    ),
    // Bound to globalThis: some runtimes throw "Illegal invocation" for a detached fetch.
    fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
    permanent: options.permanent ?? isPermanentStatus,
    maxRetryAfter: nonNegative("maxRetryAfter", options.maxRetryAfter, DEFAULT_MAX_RETRY_AFTER),
    requestTimeout: timerDelay("requestTimeout", options.requestTimeout, DEFAULT_REQUEST_TIMEOUT),
    breaker: checkBreaker(options.breaker),
    meter: checkMeter(options.meter),
  };
  // Checked last, so a wrong option is named even in a config that also lacks the secret.
  const unsigned = options.unsigned ?? false;
  if (typeof unsigned !== "boolean") {
    throw new ValidationError(`unsigned must be a boolean, got ${show(unsigned)}`);
  }
  if (options.secret === undefined && !unsigned) {
    throw new ValidationError(
      "secret is required (got undefined): set it, e.g. from WEBHOOK_SECRET, or pass unsigned: true to send unsigned requests",
    );
  }
  return resolved;
}

function checkUrl(url: unknown): string | ((message: Message) => string) {
  if (typeof url === "function") return url as (message: Message) => string;
  if (typeof url !== "string") {
    throw new ValidationError(
      `url must be an absolute http(s) URL or a function of the message, got ${show(url)}`,
    );
  }
  const checked = checkTargetUrl(url);
  if ("problem" in checked) throw new ValidationError(`url ${checked.problem}`);
  return checked.url;
}

function positiveInteger(
  name: string,
  value: unknown,
  fallback: number,
  max = Number.POSITIVE_INFINITY,
  why = "",
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new ValidationError(`${name} must be an integer >= 1, got ${show(value)}`);
  }
  if (value > max) throw new ValidationError(`${name} must be at most ${max} (${why}), got ${value}`);
  return value;
}

function cooldown(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_COOLDOWN_MS) {
    throw new ValidationError(
      `${name} must be an integer number of milliseconds from 0 to ${MAX_COOLDOWN_MS} (1 day), got ${show(value)}`,
    );
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

function timerDelay(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value >= 1 && value <= MAX_TIMER_MS)) {
    throw new ValidationError(
      `${name} must be a number of milliseconds from 1 to ${MAX_TIMER_MS}, got ${show(value)}`,
    );
  }
  return value;
}

function checkBreaker(value: unknown): Required<BreakerOptions> | false {
  if (value === undefined) return DEFAULT_BREAKER;
  if (value === false) return false;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ValidationError(
      `breaker must be an object { failureThreshold?, cooldownMs?, maxCooldownMs?, halfOpenProbes? } or false, got ${show(value)}`,
    );
  }
  const options = value as BreakerOptions;
  const cooldownMs = cooldown("breaker.cooldownMs", options.cooldownMs, DEFAULT_BREAKER.cooldownMs);
  const maxCooldownMs = cooldown(
    "breaker.maxCooldownMs",
    options.maxCooldownMs,
    Math.max(cooldownMs, DEFAULT_BREAKER.maxCooldownMs),
  );
  if (maxCooldownMs < cooldownMs) {
    throw new ValidationError(
      `breaker.maxCooldownMs must be at least breaker.cooldownMs (${cooldownMs}), got ${maxCooldownMs}`,
    );
  }
  return {
    failureThreshold: positiveInteger(
      "breaker.failureThreshold",
      options.failureThreshold,
      DEFAULT_BREAKER.failureThreshold,
    ),
    cooldownMs,
    maxCooldownMs,
    halfOpenProbes: positiveInteger(
      "breaker.halfOpenProbes",
      options.halfOpenProbes,
      DEFAULT_BREAKER.halfOpenProbes,
    ),
  };
}

function checkMeter(value: unknown): Meter | undefined {
  if (value === undefined) return undefined;
  if (typeof (value as Meter | null)?.createObservableGauge !== "function") {
    throw new ValidationError(`meter must be an OpenTelemetry Meter, got ${show(value)}`);
  }
  return value as Meter;
}

function show(value: unknown): string {
  if (typeof value === "string") return `"${value.length > 60 ? `${value.slice(0, 60)}...` : value}"`;
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return String(value);
}
