import { type Context, context } from "@opentelemetry/api";
import {
  constantTimeEqual,
  DEFAULT_MAX_MESSAGE_BYTES,
  extractTraceContext,
  OutboxError,
  ValidationError,
} from "../../mod.ts";
import { readBoundedBody } from "./body.ts";
import {
  decodeBase64,
  decodeSecrets,
  hmacAll,
  importHmacKeys,
  signedContent,
  type WebhookSecrets,
} from "./signing.ts";

/** Why a webhook was rejected; `error.reason` for logs and metrics. */
export type WebhookVerificationReason =
  | "missing_headers"
  | "invalid_timestamp"
  | "timestamp_too_old"
  | "timestamp_too_new"
  | "invalid_signature"
  | "body_too_large";

/**
 * A delivery failed verification: answer it 401 (413 for `body_too_large`) and do not process
 * it. `code` is `WEBHOOK_VERIFICATION_FAILED`; `reason` says which check failed.
 */
export class WebhookVerificationError extends OutboxError {
  /** Which check failed. */
  readonly reason: WebhookVerificationReason;

  constructor(reason: WebhookVerificationReason, message: string) {
    super("WEBHOOK_VERIFICATION_FAILED", message);
    this.name = "WebhookVerificationError";
    this.reason = reason;
  }
}

/** Options of {@link verifyWebhook}. */
export interface VerifyWebhookOptions {
  /** How far (seconds) `webhook-timestamp` may be from now, either way, against replays. Default 300. */
  toleranceSeconds?: number;
  /**
   * The current time (a valid `Date` or finite epoch ms), for tests. Default: the clock. An
   * invalid date is a `ValidationError`, never a clock that accepts every timestamp.
   */
  now?: Date | number;
  /**
   * The largest body (bytes) read. The body is read only after the headers, the timestamp and
   * the shape of a `v1` signature checked out, and reading stops (the stream is cancelled) as
   * soon as it passes this size: the error's reason is `body_too_large`; answer 413. Default
   * `DEFAULT_MAX_MESSAGE_BYTES` (1 MiB), the outbox's default `maxMessageBytes`: set both together.
   */
  maxBodyBytes?: number;
}

/** A verified delivery. */
export interface VerifiedWebhook {
  /** `webhook-id`: the outbox message id, stable across retries. Use it as the idempotency key. */
  id: string;
  /** `webhook-timestamp`: when this attempt was signed. */
  timestamp: Date;
  /** The raw body, exactly as signed. */
  body: Uint8Array;
  /** The body decoded as UTF-8. */
  text(): string;
  /** The body parsed as JSON (throws `SyntaxError` if it is not JSON). */
  json<T = unknown>(): T;
  /**
   * The producer's OpenTelemetry context, read from the request headers by the registered
   * propagator ({@link extractTraceContext}) on top of the context active when `verifyWebhook`
   * was called: the span of the request that wrote the message (a remote parent) and its
   * baggage. Without a propagator registered, or trace headers, it is that active context.
   *
   * @example
   * ```ts
   * // The handler's span continues the producer's trace:
   * await tracer.startActiveSpan("handle order", {}, hook.context, async (span) => { ... });
   * ```
   */
  context: Context;
}

/**
 * A delivery as a Node-style receiver has it: header names in any case (array values are
 * joined), and the body.
 */
export interface WebhookParts {
  headers: Headers | Record<string, string | string[] | undefined>;
  /**
   * The raw body, or where to read it from: a Node `IncomingMessage` (pass `req` itself, or
   * any async iterable of `Uint8Array`) or a `ReadableStream`. A source is read only after
   * the header checks, and never beyond `maxBodyBytes`: a larger body stops the read and closes
   * the source (a Node request is destroyed with its connection; a `content-length` over the
   * bound is refused without reading at all, and the request left to the server).
   */
  body: Uint8Array | string | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;
}

const DEFAULT_TOLERANCE_SECONDS = 300;
/**
 * The longest `webhook-signature` value (UTF-16 units, all lines joined) that is parsed at all.
 * One `v1` signature is 47 characters, so 8 KiB holds about 170 of them, far more than any
 * rotation needs, and it is half of Node's default limit for all headers together (16 KiB). The
 * length, not a count of signatures, is the bound: parsing is linear in it, and each candidate
 * costs one 32-byte comparison per key (the HMAC is computed once per key, whatever the count).
 */
export const MAX_SIGNATURE_HEADER_LENGTH = 8 * 1024;
const MAC_BYTES = 32; // HMAC-SHA256
const COMMA = 0x2c;
const TIMESTAMP = /^\d{1,15}$/;

/**
 * Verifies a Standard Webhooks delivery (from {@link httpSender}, or any conforming sender)
 * and returns its id and body. Takes a web `Request`, or `{ headers, body }` where `body` may be
 * a Node `IncomingMessage` (`{ headers: req.headers, body: req }`): no need to buffer the body
 * first. Reads the body of `request`; pass a clone to read it again.
 *
 * Checks that the three `webhook-*` headers are present, that the timestamp is within
 * `toleranceSeconds` of now, and that some `v1` signature matches one of `secret` (a list
 * during rotation), comparing in constant time. The body is read last, only when a well-formed
 * `v1` signature is present, and never beyond `maxBodyBytes` (default 1 MiB). Several
 * `webhook-signature` header lines are read as one list; a `webhook-signature` longer than
 * 8 KiB (about 170 signatures) is refused unparsed, which bounds the work a request can ask for.
 *
 * @throws {WebhookVerificationError} when any check fails.
 * @throws {ValidationError} on a bad secret or option (a configuration error, not a bad request).
 * @example
 * ```ts
 * export default {
 *   async fetch(request: Request, env: Env) {
 *     try {
 *       const hook = await verifyWebhook(request, env.WEBHOOK_SECRET);
 *       if (await alreadyProcessed(hook.id)) return new Response(null, { status: 204 });
 *       await handle(hook.json());
 *       return new Response(null, { status: 204 });
 *     } catch (error) {
 *       if (!(error instanceof WebhookVerificationError)) throw error; // a 5xx: the sender retries
 *       return new Response(null, { status: error.reason === "body_too_large" ? 413 : 401 });
 *     }
 *   },
 * };
 * ```
 */
export async function verifyWebhook(
  request: Request | WebhookParts,
  secret: WebhookSecrets,
  options: VerifyWebhookOptions = {},
): Promise<VerifiedWebhook> {
  // Taken before the first await: a context manager that does not follow awaits (the web
  // StackContextManager) has lost it by the time the body is read.
  const base = context.active();
  const keys = decodeSecrets(secret);
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (typeof tolerance !== "number" || !Number.isFinite(tolerance) || tolerance < 0) {
    throw new ValidationError(`toleranceSeconds must be a finite number >= 0, got ${String(tolerance)}`);
  }
  const nowMs = currentTime(options.now);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 0) {
    throw new ValidationError(`maxBodyBytes must be an integer >= 0, got ${String(maxBodyBytes)}`);
  }
  const header = headerReader(request.headers);
  const id = header("webhook-id");
  const timestampText = header("webhook-timestamp");
  const signatures = header("webhook-signature");
  if (!id || !timestampText || !signatures) {
    throw new WebhookVerificationError(
      "missing_headers",
      "webhook-id, webhook-timestamp and webhook-signature headers are required",
    );
  }
  if (!TIMESTAMP.test(timestampText)) {
    throw new WebhookVerificationError(
      "invalid_timestamp",
      "webhook-timestamp must be whole seconds since the epoch",
    );
  }
  const timestamp = Number(timestampText);
  const now = Math.floor(nowMs / 1000);
  if (now - timestamp > tolerance) {
    throw new WebhookVerificationError(
      "timestamp_too_old",
      `webhook-timestamp is more than ${tolerance} s old`,
    );
  }
  if (timestamp - now > tolerance) {
    throw new WebhookVerificationError(
      "timestamp_too_new",
      `webhook-timestamp is more than ${tolerance} s in the future`,
    );
  }
  if (signatures.length > MAX_SIGNATURE_HEADER_LENGTH) {
    throw new WebhookVerificationError(
      "invalid_signature",
      `webhook-signature is ${signatures.length} characters long; at most ${MAX_SIGNATURE_HEADER_LENGTH} are read`,
    );
  }
  const candidates = v1Signatures(signatures);
  // Nothing that could match: answer before reading a byte of the body.
  if (candidates.length === 0) {
    throw new WebhookVerificationError(
      "invalid_signature",
      "webhook-signature has no well-formed v1 signature",
    );
  }

  const body = await readBoundedBody(request, maxBodyBytes, header);
  if (body === undefined) {
    throw new WebhookVerificationError(
      "body_too_large",
      `the body is larger than maxBodyBytes (${maxBodyBytes} bytes)`,
    );
  }
  const { content } = signedContent(id, timestamp, body);
  const expected = await hmacAll(await importHmacKeys(keys), content);
  let matched = false;
  // No early exit: every candidate is compared against every key, in constant time each.
  for (const given of candidates) {
    for (const mac of expected) matched = constantTimeEqual(given, mac) || matched;
  }
  if (!matched) {
    throw new WebhookVerificationError(
      "invalid_signature",
      "no webhook-signature matches the body and secret",
    );
  }
  return {
    id,
    timestamp: new Date(timestamp * 1000),
    body,
    text: () => new TextDecoder().decode(body),
    json: <T>() => JSON.parse(new TextDecoder().decode(body)) as T,
    context: extractTraceContext(request.headers, base),
  };
}

function headerReader(headers: WebhookParts["headers"]): (name: string) => string | undefined {
  // Duck-typed: a Headers from another realm or polyfill is not `instanceof` this one.
  if (typeof (headers as Headers).get === "function") {
    return (name) => (headers as Headers).get(name) ?? undefined;
  }
  const lower: Record<string, string | string[] | undefined> = {};
  for (const [name, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    lower[name.toLowerCase()] = value;
  }
  return (name) => {
    const value = lower[name];
    return Array.isArray(value) ? value.join(", ") : value;
  };
}

function currentTime(now: unknown): number {
  if (now === undefined) return Date.now();
  const ms = now instanceof Date ? now.getTime() : now;
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new ValidationError(
      `now must be a valid Date or a finite number of epoch milliseconds, got ${now instanceof Date ? "an invalid Date" : String(now)}`,
    );
  }
  return ms;
}

/**
 * The decoded `v1` MACs of a `webhook-signature` value (at most
 * {@link MAX_SIGNATURE_HEADER_LENGTH} long, checked before). Entries are space-separated;
 * several header lines arrive joined by ", " (what `Headers` and Node do), so trailing commas
 * are the join, not part of the base64. Other schemes and malformed entries are skipped.
 */
function v1Signatures(header: string): Uint8Array[] {
  const found: Uint8Array[] = [];
  for (const token of header.split(/\s+/)) {
    // A loop, not /,+$/: that pattern backtracks quadratically on ",,,,…,x" (seconds at 32 KB).
    let end = token.length;
    while (end > 0 && token.charCodeAt(end - 1) === COMMA) end--;
    if (!token.startsWith("v1,") || end <= 3) continue;
    let mac: Uint8Array;
    try {
      mac = decodeBase64(token.slice(3, end));
    } catch {
      continue;
    }
    if (mac.length === MAC_BYTES) found.push(mac);
  }
  return found;
}
