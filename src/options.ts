import type { Meter, Tracer } from "@opentelemetry/api";
import { describeValue, ValidationError } from "./errors.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "./message.ts";
import { guardOnError } from "./report.ts";
import type { Ordering } from "./store.ts";
import { wellFormedText } from "./text.ts";

/** How failed messages wait before their next attempt. All durations in milliseconds. */
export interface BackoffOptions {
  /** Upper bound of the first retry's delay. Default 1000. */
  initialDelay?: number;
  /** The bound never grows past this. Default 300000 (5 minutes). */
  maxDelay?: number;
  /** The bound grows by this factor per retry. Default 2. */
  factor?: number;
  /**
   * The longest wait a sender's `retryAfter` (a `Retry-After` header, a rate-limit reset) may
   * impose: longer ones, `Infinity` included, are cut to this. Default 86400000 (1 day).
   */
  maxRetryAfter?: number;
}

/**
 * Options of {@link Outbox}. Every duration is in milliseconds. The constructor refuses any
 * value out of range with a `ValidationError` (code `INVALID_OPTIONS`).
 */
export interface OutboxOptions {
  /** Messages claimed and sent per relay pass. Integer >= 1. Default 10. */
  batchSize?: number;
  /**
   * Retries after the first attempt: a message that always fails is attempted
   * `1 + maxRetries` times, then dead. Integer >= 0. Default 3.
   */
  maxRetries?: number;
  /** How often the `start()` loop makes a pass. Default 5000. */
  period?: number;
  /** Time a sender has for one batch before its messages fail. Default 2000. */
  sendTimeout?: number;
  /**
   * How long a claim holds before another relay may take the messages over. Must exceed
   * `sendTimeout` (with room for the database work). Default 30000. With a windowed sender
   * (`Sender.window`) it must be at least `sendTimeout + 1000`, and while claims come back late
   * the window asks for up to `leaseDuration + sendTimeout + 500` (twice the recent claim time
   * plus `sendTimeout + 500`, if more than `leaseDuration`), so its messages can still start.
   */
  leaseDuration?: number;
  /** `"none"` (default) or `"key"`: per-key FIFO; see `Ordering`. */
  ordering?: Ordering;
  /** Retry timing: exponential backoff with full jitter. */
  backoff?: BackoffOptions;
  /** Upper bound on a message value's size in bytes. Default 1 MiB. */
  maxMessageBytes?: number;
  /**
   * Receives errors the relay survives (sender failures, lost leases, store errors in the
   * `start()` loop, a throwing meter or tracer). It runs on the relay's path: keep it quick. If
   * it throws (or returns a promise that rejects), that goes to `console.error` and the relay
   * carries on. Default: one `console.error` line per error and per batch whose messages the
   * sender failed (ids and reasons), at most one line per 10 s with a count of the lines held
   * back.
   */
  onError?: (error: unknown) => void;
  /**
   * OpenTelemetry meter. Default: the global meter provider's `edge-outbox` meter, taken when
   * the Outbox is constructed (the metrics API has no proxy: register the SDK first).
   */
  meter?: Meter;
  /** OpenTelemetry tracer. Default: the global tracer provider's `edge-outbox` tracer. */
  tracer?: Tracer;
  /**
   * How long (ms) one `stats()` result feeds the observable gauges (`outbox.message.count`,
   * `outbox.message.oldest_age`) before a metrics collection reads the store again, so a scrape
   * does not hammer the database. 0 reads on every collection. Default 10000.
   */
  statsCacheTtl?: number;
  /**
   * Tells this outbox's metrics apart from other outboxes' on the same meter: every counter,
   * histogram and gauge point carries it as `outbox.name`. A non-empty string of at most 200
   * characters. Default: the store's `name` or `table` property when it has one (`LibsqlStore`:
   * its table), else `"outbox"`; when a live outbox of another store on the same meter already uses that
   * default, `#2`, `#3`, ... is appended (read the name in use from `outbox.options.name`). A
   * name you choose that another live outbox on the meter uses is kept and reported to
   * `onError` (a `ValidationError`): their gauges would overwrite each other. Disposing of an
   * outbox (`await using`, `[Symbol.asyncDispose]()`) frees its name.
   */
  name?: string;
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  batchSize: number;
  maxRetries: number;
  period: number;
  sendTimeout: number;
  leaseDuration: number;
  ordering: Ordering;
  backoff: Required<BackoffOptions>;
  maxMessageBytes: number;
  onError: (error: unknown) => void;
  meter: Meter | undefined;
  tracer: Tracer | undefined;
  statsCacheTtl: number;
  /** `outbox.name` of this outbox's metrics; see {@link OutboxOptions.name}. */
  name: string;
}

/** The defaults, as documented on {@link OutboxOptions}. */
export const DEFAULT_OPTIONS = {
  batchSize: 10,
  maxRetries: 3,
  period: 5000,
  sendTimeout: 2000,
  leaseDuration: 30_000,
  ordering: "none",
  backoff: { initialDelay: 1000, maxDelay: 300_000, factor: 2, maxRetryAfter: 86_400_000 },
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  statsCacheTtl: 10_000,
} as const;

/** The longest delay `setTimeout` keeps (2^31 - 1 ms, about 24.8 days): a larger one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

function show(value: unknown): string {
  return typeof value === "string" ? `"${value}"` : describeValue(value);
}

function integer(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new ValidationError(`${name} must be an integer >= ${min}, got ${show(value)}`);
  }
  return value;
}

function duration(name: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > MAX_TIMER_MS) {
    throw new ValidationError(
      `${name} must be a number of milliseconds between ${min} and ${MAX_TIMER_MS}, got ${show(value)}`,
    );
  }
  return value;
}

/**
 * Fills in defaults and checks every option, throwing a `ValidationError` that names the
 * option, the value and what is allowed.
 */
export function resolveOptions(options: OutboxOptions = {}, defaultName = "outbox"): ResolvedOptions {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError(`options must be an object, got ${show(options)}`);
  }
  const sendTimeout = duration("sendTimeout", options.sendTimeout, DEFAULT_OPTIONS.sendTimeout);
  const leaseDuration = duration("leaseDuration", options.leaseDuration, DEFAULT_OPTIONS.leaseDuration);
  if (leaseDuration <= sendTimeout) {
    throw new ValidationError(
      `leaseDuration must exceed sendTimeout (${sendTimeout} ms), got ${leaseDuration}`,
    );
  }
  const ordering = options.ordering ?? DEFAULT_OPTIONS.ordering;
  if (ordering !== "none" && ordering !== "key") {
    throw new ValidationError(`ordering must be "none" or "key", got ${show(ordering)}`);
  }
  const backoffInput = options.backoff ?? {};
  if (typeof backoffInput !== "object" || backoffInput === null) {
    throw new ValidationError(`backoff must be an object, got ${show(backoffInput)}`);
  }
  const defaults = DEFAULT_OPTIONS.backoff;
  const initialDelay = duration("backoff.initialDelay", backoffInput.initialDelay, defaults.initialDelay, 0);
  const maxDelay = duration("backoff.maxDelay", backoffInput.maxDelay, defaults.maxDelay, 0);
  if (maxDelay < initialDelay) {
    throw new ValidationError(
      `backoff.maxDelay must be >= backoff.initialDelay (${initialDelay}), got ${maxDelay}`,
    );
  }
  const maxRetryAfter = duration(
    "backoff.maxRetryAfter",
    backoffInput.maxRetryAfter,
    defaults.maxRetryAfter,
    0,
  );
  const factor = backoffInput.factor ?? defaults.factor;
  if (typeof factor !== "number" || !Number.isFinite(factor) || factor < 1) {
    throw new ValidationError(`backoff.factor must be a number >= 1, got ${show(factor)}`);
  }
  for (const name of ["onError"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      throw new ValidationError(`${name} must be a function, got ${show(typeof options[name])}`);
    }
  }
  return {
    batchSize: integer("batchSize", options.batchSize, DEFAULT_OPTIONS.batchSize, 1),
    maxRetries: integer("maxRetries", options.maxRetries, DEFAULT_OPTIONS.maxRetries, 0),
    period: duration("period", options.period, DEFAULT_OPTIONS.period),
    sendTimeout,
    leaseDuration,
    ordering,
    backoff: { initialDelay, maxDelay, factor, maxRetryAfter },
    maxMessageBytes: integer("maxMessageBytes", options.maxMessageBytes, DEFAULT_OPTIONS.maxMessageBytes, 1),
    onError: guardOnError(options.onError),
    meter: options.meter,
    tracer: options.tracer,
    statsCacheTtl: duration("statsCacheTtl", options.statsCacheTtl, DEFAULT_OPTIONS.statsCacheTtl, 0),
    name: outboxName(options.name, defaultName),
  };
}

/**
 * Checks a tick budget (`budgetMs` of `tick()` and `cronHandler`): undefined or a number >= 0.
 * Throws a `ValidationError` naming the value otherwise.
 */
export function checkBudget(budgetMs: unknown): void {
  if (budgetMs !== undefined && (typeof budgetMs !== "number" || !(budgetMs >= 0))) {
    throw new ValidationError(`budgetMs must be a number >= 0, got ${String(budgetMs)}`);
  }
}

const MAX_NAME_LENGTH = 200;

function outboxName(name: unknown, fallback: string): string {
  if (name === undefined) return fallback;
  if (typeof name !== "string" || name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new ValidationError(
      `name must be a non-empty string of at most ${MAX_NAME_LENGTH} characters, got ${show(name)}`,
    );
  }
  return wellFormedText(name);
}
