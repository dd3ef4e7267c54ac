/**
 * The body of a queued outbox message: how `queueSender` writes it and how a consumer reads it
 * back. JSON, so that push consumers (a Worker's `queue()` handler, where `message.body` is the
 * parsed object) and pull consumers (the HTTP API) read it alike, in any language.
 */
import { type Message, ValidationError } from "../../mod.ts";
import { decodeBase64, encodeBase64 } from "../shared/base64.ts";

/**
 * What `queueSender` puts on the queue for each outbox message (content type `"json"`).
 *
 * `value` is the message's bytes: as text when they are valid UTF-8 (`encoding: "utf8"`), else
 * base64 (`encoding: "base64"`, a third larger). Read it with {@link readQueuedMessage}.
 */
export interface QueuedMessageBody {
  /** The outbox message id: stable across retries, so a consumer deduplicates on it. */
  id: string;
  key: string;
  /** The message's headers, trace context (`traceparent`, `tracestate`, `baggage`) included. */
  headers: Record<string, string>;
  /** When the message was added (ISO 8601, UTC). */
  timestamp: string;
  value: string;
  encoding: "utf8" | "base64";
}

/** A queued outbox message as a consumer reads it (see {@link readQueuedMessage}). */
export interface QueuedMessage {
  /** The outbox message id: deduplicate on it (Queues, like the outbox, delivers at least once). */
  readonly id: string;
  readonly key: string;
  /** Continue the producer's trace with `extractTraceContext(headers)` from `edge-outbox`. */
  readonly headers: Readonly<Record<string, string>>;
  /** When the message was added to the outbox. */
  readonly timestamp: Date;
  /** The value's bytes, exactly as added. */
  readonly value: Uint8Array<ArrayBuffer>;
  /** The value as UTF-8 text (invalid sequences become U+FFFD; never throws). */
  text(): string;
  /** The value parsed as JSON; throws `JSON.parse`'s `SyntaxError` when it is not JSON. */
  json<T = unknown>(): T;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lenientUtf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const encoder = new TextEncoder();

/** The queue body of `message`. */
export function queuedBody(message: Message): QueuedMessageBody {
  let value: string;
  let encoding: QueuedMessageBody["encoding"] = "utf8";
  try {
    value = strictUtf8.decode(message.value);
  } catch {
    value = encodeBase64(message.value);
    encoding = "base64";
  }
  return {
    id: message.id,
    key: message.key,
    headers: message.headers,
    timestamp: message.timestamp.toISOString(),
    value,
    encoding,
  };
}

/**
 * The size Queues counts for a `"json"` body: the UTF-8 bytes of its JSON text (the Workers
 * runtime serializes the body with `JSON.stringify`).
 */
export function jsonBytes(body: QueuedMessageBody): number {
  return encoder.encode(JSON.stringify(body)).byteLength;
}

/**
 * Reads the body of a message that `queueSender` queued: in a consumer Worker,
 * `readQueuedMessage(message.body)` for each message of the batch (or the parsed JSON body a
 * pull consumer gets). Throws a {@link ValidationError} (code `INVALID_MESSAGE`) when `body` is
 * not such a message, naming the field that is wrong.
 *
 * @example
 * ```ts
 * import { extractTraceContext } from "edge-outbox";
 * import { readQueuedMessage } from "edge-outbox/queues";
 * import { context, trace } from "@opentelemetry/api";
 *
 * export default {
 *   async queue(batch: MessageBatch, env: Env) {
 *     for (const delivery of batch.messages) {
 *       const message = readQueuedMessage(delivery.body);
 *       // At least once: skip an id already handled (a unique key on it in your database).
 *       if (await alreadyHandled(env.DB, message.id)) { delivery.ack(); continue; }
 *       await context.with(extractTraceContext(message.headers), () =>
 *         trace.getTracer("orders").startActiveSpan(`handle ${message.key}`, async (span) => {
 *           try { await handle(env, message.json()); } finally { span.end(); }
 *         }));
 *       delivery.ack();
 *     }
 *   },
 * };
 * ```
 */
export function readQueuedMessage(body: unknown): QueuedMessage {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw invalid(
      `expected an object, got ${body === null ? "null" : Array.isArray(body) ? "an array" : typeof body}`,
    );
  }
  const fields = body as Record<string, unknown>;
  const id = text(fields, "id");
  const key = text(fields, "key");
  const value = text(fields, "value");
  const timestamp = new Date(text(fields, "timestamp"));
  if (Number.isNaN(timestamp.getTime())) throw invalid(`timestamp is not an ISO 8601 date`);
  const headers = fields.headers;
  if (typeof headers !== "object" || headers === null || Array.isArray(headers)) {
    throw invalid("headers must be an object of strings");
  }
  for (const [name, headerValue] of Object.entries(headers)) {
    if (typeof headerValue !== "string") throw invalid(`header "${name.slice(0, 60)}" is not a string`);
  }
  let bytes: Uint8Array<ArrayBuffer>;
  if (fields.encoding === "utf8") bytes = encoder.encode(value);
  else if (fields.encoding === "base64") {
    try {
      bytes = decodeBase64(value);
    } catch {
      throw invalid('value is not base64 although encoding is "base64"');
    }
  } else throw invalid(`encoding must be "utf8" or "base64"`);
  const decoded = fields.encoding === "utf8" ? value : undefined;
  return {
    id,
    key,
    headers: { ...(headers as Record<string, string>) },
    timestamp,
    value: bytes,
    text: () => decoded ?? lenientUtf8.decode(bytes),
    json: <T>() => JSON.parse(decoded ?? lenientUtf8.decode(bytes)) as T,
  };
}

function text(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (typeof value !== "string")
    throw invalid(`${name} must be a string, got ${value === null ? "null" : typeof value}`);
  return value;
}

function invalid(problem: string): ValidationError {
  return new ValidationError(`not a message queued by queueSender: ${problem}`, { code: "INVALID_MESSAGE" });
}
