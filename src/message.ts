import { describeValue, isInstanceOf, ValidationError } from "./errors.ts";

/**
 * Where a message stands after a send attempt. Mirrors the original package's `SendStatus`.
 * `None`: not tried yet; `Sent`: delivered; `Fail`: failed, will be retried; `Dead`: given up.
 */
export const SendStatus = { None: 0, Sent: 1, Fail: 2, Dead: 3 } as const;

/** One of the values of {@link SendStatus}. */
export type SendStatus = (typeof SendStatus)[keyof typeof SendStatus];

/**
 * What an application hands to `Outbox.addMessage`.
 *
 * @example
 * ```ts
 * await outbox.addMessage(tx, {
 *   key: `order:${order.id}`,
 *   value: JSON.stringify({ type: "order.created", order }),
 *   headers: { "content-type": "application/json" },
 * });
 * ```
 */
export interface NewMessage {
  /** Routing and ordering key, a non-empty string (with `ordering: "key"`, per-key FIFO). */
  key: string;
  /** The payload: bytes, or a string that is stored UTF-8 encoded. */
  value: Uint8Array | string;
  /**
   * Headers carried to the receiver (names are lowercased). The active trace context is added
   * by the registered OpenTelemetry propagator (e.g. `traceparent`, `baggage`); a header set
   * here is never overwritten, and a trace (or baggage) header of the propagator's set here
   * keeps all of the active context's trace (or baggage) headers out.
   */
  headers?: Record<string, string>;
}

/**
 * A stored message as stores hand it to the relay, before it is wrapped in a {@link Message}.
 * Stores build these from their rows and turn them into messages with {@link createMessage}.
 */
export interface MessageRecord {
  /** Exact id as a decimal string (a database integer never passes through a lossy number). */
  id: string;
  key: string;
  value: Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
  /** When `addMessage` ran (UTC). */
  timestamp: Date;
  /** Failed attempts so far (including attempts whose lease expired without an outcome). */
  retries: number;
  /** Why the last attempt failed, if it did. */
  lastError?: string | undefined;
}

/**
 * A message in flight, as a {@link Sender} receives it. The sender records the outcome of each
 * message with `markAsSent`, `markAsFailed` or `markAsDead`; a message left unmarked counts as
 * failed.
 */
export interface Message extends Readonly<MessageRecord> {
  /** The outcome so far; {@link SendStatus.None} until the sender marks it. */
  readonly status: SendStatus;
  /** Milliseconds the sender asked to wait before the next attempt (`Retry-After`). */
  readonly retryAfter: number | undefined;
  /** Why the sender failed or killed this message, when it said. */
  readonly error: string | undefined;
  /**
   * False when the sender failed this message without really trying it
   * (`markAsFailed({ attempted: false })`); true otherwise.
   */
  readonly attempted: boolean;
  /** Delivered: it will not be sent again. */
  markAsSent(): void;
  /**
   * Failed for now: retried after a backoff, or after `retryAfter` ms when given, until
   * `maxRetries` is spent.
   *
   * `attempted: false` says the sender never really tried this message: nothing of it left
   * the process (say, its endpoint's circuit breaker is open, or a local rate limit has no
   * slot). An attempt is a try that may have reached the receiver: a request written to the
   * wire counts, even if it then timed out, since the receiver may have acted on it. A
   * message not attempted spends none of its `maxRetries`: the relay gives it back to the
   * store (`MessageStore.release`, `retries` untouched) and it is claimable again after
   * `retryAfter` ms (cut to `backoff.maxRetryAfter`, at least 100 ms so an open breaker
   * cannot spin the relay; 1000 ms when not given). Its `error` is reported to nobody and
   * not stored (the store keeps the last real attempt's error). A store without `release`
   * records it as a failed attempt, as before.
   *
   * @example
   * ```ts
   * if (breaker.isOpen(url)) message.markAsFailed({ attempted: false, retryAfter: breaker.retryIn(url) });
   * ```
   */
  markAsFailed(options?: { retryAfter?: number; error?: string; attempted?: boolean }): void;
  /** Failed for good (say, a 4xx that no retry will mend): dead at once, no more attempts. */
  markAsDead(options?: { error?: string }): void;
  /**
   * The value decoded as UTF-8; bytes that are not valid UTF-8 become U+FFFD, so this never
   * throws. Handy for dead messages from `listDead()`.
   */
  text(): string;
  /**
   * The value parsed as JSON (after {@link Message.text}). Throws the `SyntaxError` of
   * `JSON.parse` when the value is not JSON.
   *
   * @example
   * ```ts
   * for (const message of await store.listDead()) console.log(message.id, message.json());
   * ```
   */
  json<T = unknown>(): T;
}

class OutboxMessage implements Message {
  readonly id: string;
  readonly key: string;
  readonly value: Uint8Array<ArrayBuffer>;
  readonly headers: Record<string, string>;
  readonly timestamp: Date;
  readonly retries: number;
  readonly lastError: string | undefined;
  // Private, behind getters: the marks are the only way to set an outcome, and they stop
  // working once the relay has sealed the message.
  #status: SendStatus;
  #retryAfter: number | undefined = undefined;
  #error: string | undefined = undefined;
  #attempted = true;
  #sealed = false;

  /** See {@link sealMessage}. */
  static seal(message: Message): void {
    if (message instanceof OutboxMessage) message.#sealed = true;
  }

  constructor(record: MessageRecord, status: SendStatus) {
    this.id = record.id;
    this.key = record.key;
    this.value = record.value;
    this.headers = record.headers;
    this.timestamp = record.timestamp;
    this.retries = record.retries;
    this.lastError = record.lastError;
    this.#status = status;
  }

  get status(): SendStatus {
    return this.#status;
  }

  get retryAfter(): number | undefined {
    return this.#retryAfter;
  }

  get error(): string | undefined {
    return this.#error;
  }

  get attempted(): boolean {
    return this.#attempted;
  }

  markAsSent(): void {
    if (this.#sealed) return;
    this.#status = SendStatus.Sent;
    this.#attempted = true;
  }

  markAsFailed(options?: { retryAfter?: number; error?: string; attempted?: boolean }): void {
    if (this.#sealed) return;
    this.#status = SendStatus.Fail;
    // Only an explicit false: anything else (undefined, a truthy non-boolean) is an attempt,
    // the side that can never lose a retry count.
    this.#attempted = options?.attempted !== false;
    const retryAfter = options?.retryAfter;
    // Kept as given when it is a wait at all (Infinity included); the relay clamps it to
    // `backoff.maxRetryAfter`. NaN, negatives and non-numbers fall back to the backoff.
    this.#retryAfter = typeof retryAfter === "number" && retryAfter >= 0 ? retryAfter : undefined;
    this.#error = errorText(options?.error);
  }

  markAsDead(options?: { error?: string }): void {
    if (this.#sealed) return;
    this.#status = SendStatus.Dead;
    this.#attempted = true;
    this.#error = errorText(options?.error);
  }

  text(): string {
    return decoder.decode(this.value);
  }

  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }
}

const decoder = new TextDecoder("utf-8", { fatal: false });

/** A sender's error as text: strings as they are, anything else described (never throws). */
function errorText(error: unknown): string | undefined {
  if (error === undefined || typeof error === "string") return error;
  return describeValue(error);
}

/**
 * Wraps a stored record in a {@link Message}. For store implementations.
 *
 * @param status `SendStatus.None` for a claimed message, `SendStatus.Dead` for `listDead`.
 */
export function createMessage(record: MessageRecord, status: SendStatus = SendStatus.None): Message {
  return new OutboxMessage(record, status);
}

/**
 * Ends a message's send: marks made after this (by a sender that outlived its deadline) are
 * ignored. For the relay.
 */
export function sealMessage(message: Message): void {
  OutboxMessage.seal(message);
}

/** A validated, encoded message ready for `TransactionalStore.addMessage`. */
export interface PreparedMessage {
  key: string;
  value: Uint8Array<ArrayBuffer>;
  headers: Record<string, string>;
  /** When `addMessage` ran (UTC). */
  timestamp: Date;
}

/** Default upper bound on a message's encoded value: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
const MAX_KEY_LENGTH = 1024;
// RFC 9110 token characters for header names.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII and obs-text, spaces and tabs; never CR, LF or NUL.
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const encoder = new TextEncoder();

/**
 * Whether `name` and `value` pass the checks `addMessage` applies to a caller's headers (an
 * RFC 9110 token; a string without CR, LF, NUL or other controls). For headers added on the
 * caller's behalf, such as the propagated trace context.
 */
export function isValidHeader(name: string, value: unknown): value is string {
  return HEADER_NAME.test(name) && typeof value === "string" && HEADER_VALUE.test(value);
}

function invalid(message: string): ValidationError {
  return new ValidationError(message, { code: "INVALID_MESSAGE" });
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `"${value.length > 40 ? `${value.slice(0, 40)}...` : value}"`;
  return typeof value;
}

/**
 * Validates and encodes what an application passed to `addMessage`. Throws a
 * {@link ValidationError} (code `INVALID_MESSAGE`) naming the bad field; never partially succeeds.
 */
export function prepareMessage(
  input: unknown,
  options: { maxMessageBytes: number; now?: Date },
): PreparedMessage {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw invalid(`message must be an object { key, value, headers? }, got ${describe(input)}`);
  }
  const { key, value, headers } = input as Record<string, unknown>;
  if (typeof key !== "string" || key.length === 0) {
    throw invalid(`message.key must be a non-empty string, got ${describe(key)}`);
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw invalid(`message.key must be at most ${MAX_KEY_LENGTH} characters, got ${key.length}`);
  }
  let bytes: Uint8Array<ArrayBuffer>;
  if (typeof value === "string") bytes = encoder.encode(value);
  // A copy into a fresh buffer: `slice()` of a Node Buffer is a view of the caller's memory,
  // and a caller changing it after addMessage must not change what is delivered.
  else if (isInstanceOf(value, Uint8Array)) bytes = new Uint8Array(value);
  else throw invalid(`message.value must be a Uint8Array or a string, got ${describe(value)}`);
  if (bytes.byteLength > options.maxMessageBytes) {
    throw invalid(
      `message.value must be at most ${options.maxMessageBytes} bytes (maxMessageBytes), got ${bytes.byteLength}`,
    );
  }
  return {
    key,
    value: bytes,
    headers: prepareHeaders(headers),
    timestamp: options.now ?? new Date(),
  };
}

function prepareHeaders(headers: unknown): Record<string, string> {
  const result: Record<string, string> = {};
  if (headers === undefined) return result;
  if (typeof headers !== "object" || headers === null || Array.isArray(headers)) {
    throw invalid(`message.headers must be an object of string values, got ${describe(headers)}`);
  }
  // Own enumerable string keys only: for...in would walk the prototype chain (a getter or a
  // revoked Proxy there runs or throws).
  for (const name of Object.keys(headers)) {
    const value: unknown = (headers as Record<string, unknown>)[name];
    if (!HEADER_NAME.test(name)) {
      throw invalid(`message.headers: "${name}" is not a valid HTTP header name`);
    }
    if (typeof value !== "string") {
      throw invalid(`message.headers["${name}"] must be a string, got ${describe(value)}`);
    }
    if (!HEADER_VALUE.test(value)) {
      throw invalid(
        `message.headers["${name}"] has characters not allowed in a header value (CR, LF, NUL or controls)`,
      );
    }
    setHeader(result, name.toLowerCase(), value);
  }
  return result;
}

/**
 * `headers[name] = value` that keeps a header named `__proto__` (a valid RFC 9110 token):
 * assigning it would call the prototype setter instead, which drops a string value.
 */
function setHeader(headers: Record<string, string>, name: string, value: string): void {
  if (name === "__proto__") {
    Object.defineProperty(headers, name, { value, enumerable: true, writable: true, configurable: true });
  } else {
    headers[name] = value;
  }
}
