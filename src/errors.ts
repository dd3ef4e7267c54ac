/**
 * Stable, machine-readable error codes. Match on `error.code`, never on the message text.
 */
export type OutboxErrorCode =
  | "INVALID_OPTIONS"
  | "INVALID_MESSAGE"
  | "STORE_ERROR"
  | "STORE_BUSY"
  | "LEASE_LOST"
  | "SEND_FAILED"
  | "SEND_TIMEOUT"
  | "MALFORMED_SEND_RESULT"
  | "CALLBACK_FAILED"
  | "WEBHOOK_VERIFICATION_FAILED"
  | "UNAUTHORIZED";

/**
 * Base class of every error edge-outbox throws or reports to `onError`.
 *
 * @example
 * ```ts
 * try { await outbox.addMessage(tx, msg) }
 * catch (error) { if (error instanceof OutboxError && error.code === "INVALID_MESSAGE") ... }
 * ```
 */
export class OutboxError extends Error {
  /** A stable code for programmatic handling. */
  readonly code: OutboxErrorCode;

  constructor(code: OutboxErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "OutboxError";
    this.code = code;
  }
}

/**
 * Bad input caught before anything was written: an invalid option, message or table name.
 * `code` is `INVALID_OPTIONS` or `INVALID_MESSAGE`.
 */
export class ValidationError extends OutboxError {
  constructor(message: string, options?: { code?: "INVALID_OPTIONS" | "INVALID_MESSAGE"; cause?: unknown }) {
    super(options?.code ?? "INVALID_OPTIONS", message, options);
    this.name = "ValidationError";
  }
}

/**
 * The database failed. `retryable` is true for transient conditions (a busy or locked
 * database, a dropped connection) that the next relay pass is expected to get past;
 * nothing is lost either way, because claimed rows return when their lease ends.
 */
export class StoreError extends OutboxError {
  /** Whether the same operation may succeed if tried again later. */
  readonly retryable: boolean;

  constructor(
    message: string,
    options: { retryable: boolean; code?: "STORE_ERROR" | "STORE_BUSY"; cause?: unknown },
  ) {
    super(options.code ?? (options.retryable ? "STORE_BUSY" : "STORE_ERROR"), message, options);
    this.name = "StoreError";
    this.retryable = options.retryable;
  }
}

/**
 * A relay's claim on some messages ended (its lease expired and another relay took them over)
 * before it recorded their outcome; the late outcome was ignored, by design.
 */
export class LeaseLostError extends OutboxError {
  /** The ids of the group in which some outcomes could not be recorded. */
  readonly messageIds: readonly string[];

  constructor(messageIds: readonly string[], lost: number = messageIds.length) {
    super(
      "LEASE_LOST",
      `lease lost before the outcome of ${lost} of ${messageIds.length} message(s) was recorded (ids ${messageIds.slice(0, 5).join(", ")}${messageIds.length > 5 ? ", ..." : ""}); their new owner decides`,
    );
    this.name = "LeaseLostError";
    this.messageIds = messageIds;
  }
}

/**
 * A sender could not deliver a message, or the whole batch. `status` is the HTTP status when
 * there was a response; `messageId` names the message when the failure is about one.
 */
export class SendError extends OutboxError {
  /** HTTP status of the response, when there was one. */
  readonly status: number | undefined;
  /** The message the failure is about, when it is about one. */
  readonly messageId: string | undefined;

  constructor(
    message: string,
    options?: {
      code?: "SEND_FAILED" | "SEND_TIMEOUT" | "MALFORMED_SEND_RESULT";
      status?: number;
      messageId?: string;
      cause?: unknown;
    },
  ) {
    super(options?.code ?? "SEND_FAILED", message, options);
    this.name = "SendError";
    this.status = options?.status;
    this.messageId = options?.messageId;
  }
}

/** The sender did not finish within `sendTimeout` (or the caller's signal aborted). */
export class SendTimeoutError extends SendError {
  constructor(timeoutMs: number, options?: { cause?: unknown }) {
    super(`sender did not finish within sendTimeout (${timeoutMs} ms)`, {
      code: "SEND_TIMEOUT",
      ...options,
    });
    this.name = "SendTimeoutError";
  }
}

/**
 * A function of yours that the relay called threw: a custom `meter` or `tracer` method, say.
 * The relay carries on without it (that telemetry is skipped); `callback` names what threw.
 * A throwing `onError` is not reported through itself: it goes to `console.error`.
 */
export class CallbackError extends OutboxError {
  /** What threw, such as `"meter.createCounter"` or `"span.end"`. */
  readonly callback: string;

  constructor(callback: string, cause: unknown) {
    super("CALLBACK_FAILED", `${callback} threw: ${describeValue(cause)}`, { cause });
    this.name = "CallbackError";
    this.callback = callback;
  }
}

/**
 * `value instanceof type`, answering false where the check itself throws (a Proxy whose
 * `getPrototypeOf` trap throws, say): foreign values are classified without ever throwing.
 */
export function isInstanceOf<T>(value: unknown, type: abstract new (...args: never[]) => T): value is T {
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}

/**
 * A short description of any value, for error texts: an `Error`'s message, a string as is,
 * else `String(value)`. Never throws, whatever the value's getters or `toString` do.
 */
export function describeValue(value: unknown): string {
  try {
    if (isInstanceOf(value, Error)) return String(value.message);
    return String(value);
  } catch {
    try {
      return Object.prototype.toString.call(value);
    } catch {
      return "a value that cannot be described";
    }
  }
}
