/**
 * Header rules the outgoing senders (HTTP, QStash) share: what a static header may be, and which
 * of a message's headers can go on the wire. Internal: no subpath export.
 */
import { ValidationError } from "../../mod.ts";

// RFC 9110 token characters for names; values of visible Latin-1 text, spaces and tabs (what
// `Headers` accepts), never CR, LF, NUL or other controls.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Whether `name` and `value` can be sent as an HTTP header field. */
export function isValidHeader(name: string, value: unknown): value is string {
  return HEADER_NAME.test(name) && typeof value === "string" && HEADER_VALUE.test(value);
}

/**
 * Checks a sender's static `headers` option and returns it with lowercased names. The error
 * names the header, never its value (static headers often carry credentials).
 */
/**
 * Headers that describe this hop's connection or framing, which the HTTP client owns: sent as
 * given they make the two transports disagree (fetch refuses them, node:http would put both
 * `transfer-encoding` and `content-length` on the wire, a request a server must reject).
 */
export const CONNECTION_HEADERS: ReadonlySet<string> = new Set([
  "connection",
  "content-length",
  "expect",
  "host",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Static headers checked at construction: names and values sendable, and none of `refused`
 * (lower-case names). A `ValidationError` names the header, never its value.
 */
export function checkStaticHeaders(
  headers: unknown,
  label = "headers",
  refused: ReadonlySet<string> = new Set(),
): Record<string, string> {
  const result: Record<string, string> = {};
  if (headers === undefined) return result;
  if (typeof headers !== "object" || headers === null || Array.isArray(headers)) {
    const kind = headers === null ? "null" : Array.isArray(headers) ? "an array" : typeof headers;
    throw new ValidationError(`${label} must be an object of string values, got ${kind}`);
  }
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name)) {
      throw new ValidationError(`${label}: "${name}" is not a valid HTTP header name`);
    }
    if (typeof value !== "string") {
      throw new ValidationError(
        `${label}["${name}"] must be a string, got ${value === null ? "null" : typeof value}`,
      );
    }
    if (!HEADER_VALUE.test(value)) {
      throw new ValidationError(
        `${label}["${name}"] must be a string without CR, LF or control characters (Latin-1 text only)`,
      );
    }
    if (refused.has(name.toLowerCase())) {
      throw new ValidationError(`${label}: "${name}" is set by the HTTP client for each request; remove it`);
    }
    result[name.toLowerCase()] = value;
  }
  return result;
}

/**
 * The headers of a message that can be sent, or why the message cannot be. Trace context is
 * optional metadata that the library adds itself: a `traceparent` or `tracestate` that is not a
 * sendable header field (`Headers` would throw on it) is dropped, a `tracestate` with its
 * `traceparent`, so a trace header never makes a message unsendable. A sendable one goes as given
 * (a caller's own value is theirs). Any other header `Headers` would refuse (a row written before
 * validation existed, or by hand) fails the message with an error naming the header, not its
 * value. `skip` names headers the sender sets itself (lowercase).
 */
export function sendableHeaders(
  own: Record<string, string>,
  skip?: ReadonlySet<string>,
): { headers: Record<string, string> } | { error: string } {
  const headers: Record<string, string> = {};
  // A row whose headers column held JSON null (hand-edited): nothing to forward, not a crash.
  if (typeof own !== "object" || own === null) return { headers };
  const traceparent = own.traceparent;
  const traceOk = traceparent === undefined || isValidHeader("traceparent", traceparent);
  for (const name in own) {
    const value = own[name];
    const lower = name.toLowerCase();
    if (skip?.has(lower)) continue;
    if (lower === "traceparent" || lower === "tracestate") {
      if (traceOk && isValidHeader(lower, value)) headers[lower] = value;
      continue;
    }
    if (!isValidHeader(name, value)) {
      const shown = HEADER_NAME.test(name) ? `"${name}"` : "with an invalid name";
      return { error: `header ${shown} cannot be sent (not a valid HTTP header field)` };
    }
    headers[lower] = value;
  }
  return { headers };
}
