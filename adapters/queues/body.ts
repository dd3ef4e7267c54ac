/**
 * The body of a queued outbox message: how `queueSender` writes it and how a consumer reads it
 * back. JSON, so that push consumers (a Worker's `queue()` handler, where `message.body` is the
 * parsed object) and pull consumers (the HTTP API) read it alike, in any language.
 */
import { type Message, ValidationError, wellFormedText } from "../../mod.ts";
import { decodeBase64, encodeBase64 } from "../shared/base64.ts";

/**
 * What `queueSender` puts on the queue for each outbox message (content type `"json"`).
 *
 * `value` is the message's bytes: as text (`encoding: "utf8"`) when they are valid UTF-8 and their
 * JSON text is no larger than base64's, else base64 (`encoding: "base64"`, 4 characters for 3
 * bytes). Read it with {@link readQueuedMessage}.
 */
export interface QueuedMessageBody {
  /** The outbox message id: stable across retries, so a consumer deduplicates on it. */
  id: string;
  key: string;
  /** The message's headers, trace context (`traceparent`, `tracestate`, `baggage`) included. */
  headers: Record<string, string>;
  /** When the message was added, as `Date.prototype.toISOString` writes it (ISO 8601, UTC). */
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
  /**
   * The value as UTF-8 text, decoded from `value` (invalid sequences become U+FFFD; never throws):
   * `new TextEncoder().encode(text())` equals `value` whenever `value` is valid UTF-8.
   */
  text(): string;
  /** The value parsed as JSON; throws `JSON.parse`'s `SyntaxError` when it is not JSON. */
  json<T = unknown>(): T;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/**
 * The queue body of `message`, its value in whichever encoding makes the JSON text smaller: as
 * text when the bytes are valid UTF-8 and their JSON escaping costs no more than base64 would,
 * else base64. JSON writes a control byte as `\u00XX` (6 bytes for 1), so a value of NULs or
 * protobuf-like fields that happens to be valid UTF-8 is smaller, and fits where text would not,
 * as base64.
 */
export function queuedBody(message: Message): QueuedMessageBody {
  const bytes = message.value;
  let value: string | undefined;
  let encoding: QueuedMessageBody["encoding"] = "base64";
  if (jsonTextBytes(bytes) <= base64Length(bytes.length)) {
    try {
      value = strictUtf8.decode(bytes);
      encoding = "utf8";
    } catch {
      // Not UTF-8: base64 below.
    }
  }
  return {
    id: message.id,
    key: message.key,
    headers: message.headers,
    timestamp: message.timestamp.toISOString(),
    value: value ?? encodeBase64(bytes),
    encoding,
  };
}

/** Characters (all ASCII) of the padded base64 of `length` bytes. */
function base64Length(length: number): number {
  return Math.ceil(length / 3) * 4;
}

/**
 * The UTF-8 bytes `JSON.stringify` writes for the text of `bytes` (assumed valid UTF-8), quotes
 * left out: `"` and `\` and the five control characters with a short escape take 2, the other
 * control characters 6 (`\u00XX`), every other byte itself (JSON leaves U+007F and non-ASCII
 * as they are; valid UTF-8 holds no lone surrogate to escape).
 */
export function jsonTextBytes(bytes: Uint8Array): number {
  let size = 0;
  for (let i = 0; i < bytes.length; i++) size += JSON_BYTE_SIZE[bytes[i]!]!;
  return size;
}

/** What each byte of UTF-8 text costs in JSON: 6 for `\u00XX`, 2 for `\n` and the like, else 1. */
const JSON_BYTE_SIZE = Uint8Array.from({ length: 256 }, (_, byte) => {
  if (byte === 0x08 || byte === 0x09 || byte === 0x0a || byte === 0x0c || byte === 0x0d) return 2;
  if (byte < 0x20) return 6;
  return byte === 0x22 || byte === 0x5c ? 2 : 1;
});

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
 * pull consumer gets). Strict, as the sender writes it: a plain object whose own properties are
 * a non-empty `id` and `key`, `headers` (a plain object of string values), a `timestamp` as
 * `toISOString` writes it, and a `value` that is well-formed text (`"utf8"`) or padded base64
 * (`"base64"`). Anything else, inherited properties and getters included, is a
 * {@link ValidationError} (code `INVALID_MESSAGE`) naming the field that is wrong.
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
  if (!isPlainObject(body)) throw invalid(`expected a plain object, got ${describe(body)}`);
  const id = ownString(body, "id");
  if (id === "") throw invalid("id is empty");
  const key = ownString(body, "key");
  if (key === "") throw invalid("key is empty");
  const value = ownString(body, "value");
  const timestamp = readTimestamp(ownString(body, "timestamp"));
  const headers = readHeaders(own(body, "headers"));
  const encoding = own(body, "encoding");
  let bytes: Uint8Array<ArrayBuffer>;
  if (encoding === "utf8") {
    // queueSender writes text only for valid UTF-8, which never decodes to a lone surrogate;
    // accepting one would make text() and value disagree (value would hold U+FFFD).
    if (wellFormedText(value) !== value) throw invalid("value holds a lone UTF-16 surrogate");
    bytes = encoder.encode(value);
  } else if (encoding === "base64") {
    if (!isCanonicalBase64(value)) throw invalid('value is not padded base64 although encoding is "base64"');
    bytes = decodeBase64(value);
  } else throw invalid(`encoding must be "utf8" or "base64"`);
  let decoded = encoding === "utf8" ? value : undefined;
  const asText = () => {
    decoded ??= lenientUtf8.decode(bytes);
    return decoded;
  };
  return {
    id,
    key,
    headers,
    timestamp,
    value: bytes,
    text: asText,
    json: <T>() => JSON.parse(asText()) as T,
  };
}

const lenientUtf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/** An object made by `{}`, `JSON.parse` or `Object.create(null)`: no class instance, Map, Date or array. */
function isPlainObject(value: unknown): value is object {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** An own data property of `fields` (never one inherited or behind a getter), else undefined. */
function own(fields: object, name: string): unknown {
  const descriptor = Object.getOwnPropertyDescriptor(fields, name);
  return descriptor !== undefined && "value" in descriptor ? descriptor.value : undefined;
}

function ownString(fields: object, name: string): string {
  const value = own(fields, name);
  if (typeof value !== "string") throw invalid(`${name} must be a string, got ${describe(value)}`);
  return value;
}

/** The timestamp as `Date.prototype.toISOString` writes it (which is what queueSender sends). */
function readTimestamp(text: string): Date {
  const date = ISO_TIMESTAMP.test(text) ? new Date(text) : undefined;
  // The round trip refuses what the pattern lets through but no calendar has (2026-02-30).
  if (date === undefined || Number.isNaN(date.getTime()) || date.toISOString() !== text) {
    throw invalid(
      `timestamp must be ISO 8601 as toISOString writes it (2026-01-31T12:00:00.000Z), got "${text.slice(0, 40)}"`,
    );
  }
  return date;
}

const ISO_TIMESTAMP = /^(?:\d{4}|[+-]\d{6})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A copy of `headers`, a plain object of own string values (a `__proto__` key stays a key). */
function readHeaders(headers: unknown): Record<string, string> {
  if (!isPlainObject(headers))
    throw invalid(`headers must be a plain object of strings, got ${describe(headers)}`);
  const copy: Record<string, string> = {};
  for (const name of Reflect.ownKeys(headers)) {
    if (typeof name !== "string") throw invalid("headers must have string names");
    const value = own(headers, name);
    if (typeof value !== "string") throw invalid(`header "${name.slice(0, 60)}" is not a string`);
    Object.defineProperty(copy, name, { value, enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/**
 * Whether `text` is base64 exactly as `encodeBase64` writes it: the standard alphabet, padded to
 * a multiple of 4, no whitespace, and no bits set after the last byte (so one value has one text).
 */
function isCanonicalBase64(text: string): boolean {
  if (text.length % 4 !== 0 || !BASE64.test(text)) return false;
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  if (padding === 0) return true;
  const last = BASE64_ALPHABET.indexOf(text[text.length - 1 - padding]!);
  return (last & (padding === 2 ? 0b1111 : 0b11)) === 0;
}

const BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") {
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor
      ?.name;
    return typeof name === "string" && name !== "Object" ? `a ${name.slice(0, 40)}` : "an object";
  }
  return typeof value;
}

function invalid(problem: string): ValidationError {
  return new ValidationError(`not a message queued by queueSender: ${problem}`, { code: "INVALID_MESSAGE" });
}
