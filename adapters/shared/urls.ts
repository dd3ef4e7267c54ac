/**
 * Target URLs of the outgoing senders: what is allowed (absolute http/https, no credentials, no
 * control characters), and how a URL appears in an error (never its credentials or query).
 * Internal: no subpath export.
 */
import { truncateText } from "../../mod.ts";

/** A checked target URL, or what is wrong with it, described without echoing secrets. */
export type UrlCheck = { url: string } | { problem: string };

const SURROUNDING_SPACE = /^\s|\s$/;
const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]{0,31}):/;

/**
 * Checks that `value` is an absolute `http:`/`https:` URL, written `scheme://host/...`, without
 * `user:password@`, control characters or surrounding whitespace. Credentials in a URL are
 * refused rather than turned into a header: `fetch` rejects them, and a URL is logged and stored
 * in too many places to hold a password. Put them in `headers` instead. The problem never
 * quotes a secret: see {@link redactUrl}.
 */
export function checkTargetUrl(value: unknown): UrlCheck {
  if (value instanceof URL) return checkTargetUrl(value.href);
  if (isThenable(value)) {
    // Its rejection must not go unhandled (that would end a Node process).
    Promise.resolve(value).catch(() => {});
    return { problem: "is a Promise: the URL must be returned synchronously" };
  }
  if (typeof value !== "string") {
    return {
      problem: `is not a string (got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value})`,
    };
  }
  const control = controlIndex(value);
  if (control >= 0) {
    const code = value.charCodeAt(control).toString(16).toUpperCase().padStart(4, "0");
    return {
      problem: `contains the control character U+${code} at index ${control} (tab, CR, LF and other controls are not allowed: the URL is sent as written)`,
    };
  }
  if (SURROUNDING_SPACE.test(value)) {
    return { problem: "starts or ends with whitespace (the URL is sent as written: trim it)" };
  }
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return { problem: `is not an absolute http(s) URL (${redactUrl(value)})` };
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return { problem: `uses ${parsed.protocol.slice(0, 20)}; only http: and https: are allowed` };
  }
  // The parser forgives "https:host" and "https:/host"; a service given the text as is may not.
  if (!/^https?:\/\/[^/\\]/i.test(value)) {
    return { problem: `is not an absolute http(s) URL written scheme://host/... (${redactUrl(value)})` };
  }
  // An "@" in the authority as written, even with empty credentials ("https://:@host").
  if (parsed.username !== "" || parsed.password !== "" || /^https?:\/\/[^/?#\\]*@/i.test(value)) {
    return {
      problem: `carries credentials (user:password@) in ${redactUrl(value)}; send them in headers (e.g. authorization) instead`,
    };
  }
  return { url: value };
}

/**
 * Where the first C0 or C1 control character or DEL of `text` is, or -1. The URL parser silently
 * drops tab, CR and LF and trims the ends, but a checked URL is sent as written (QStash gets the
 * text), so the text must be what was checked.
 */
function controlIndex(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return i;
  }
  return -1;
}

/**
 * A single URL value as an error may show it: an http(s) URL that parses becomes
 * `protocol//host/path` (credentials as `***@`, a query or fragment as `?…`); anything else
 * shows only its scheme, since where its credentials end cannot be known. Bounded.
 */
export function redactUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
    const scheme = SCHEME.exec(url)?.[1];
    return scheme === undefined ? "no scheme; not shown" : `scheme ${scheme}:, the rest not shown`;
  }
  const credentials =
    parsed.username !== "" || parsed.password !== "" || /^[^:]*:[/\\]*[^/?#\\]*@/.test(url) ? "***@" : "";
  const rest = parsed.search !== "" || parsed.hash !== "" ? "?…" : "";
  // A "password" with a "/" parses as a port and a path ("https://u:12/pw@h"): the free-text
  // rule then hides everything up to the last "@".
  return redactUrlInText(`${parsed.protocol}//${credentials}${parsed.host}${parsed.pathname}${rest}`);
}

// Bounded scheme: an unbounded one makes the scan quadratic on "a.a.a.a…". Backslashes count as
// slashes, as the URL parser reads them in http(s) URLs.
const URL_IN_TEXT = /\b[a-zA-Z][a-zA-Z0-9+.-]{0,31}:[/\\]{2}\S*/g;

/**
 * `text` with every `scheme://…` in it redacted: for error texts from `fetch` or a service.
 * Everything from `//` to the last `@` before the next whitespace becomes `***@` (a password may
 * hold `/`, `?` or `#`, so those do not end it; an `@` in a path is hidden too, which is fine),
 * and a query or fragment after that becomes `?…`.
 */
export function redactUrls(text: string): string {
  return text.replace(URL_IN_TEXT, redactUrlInText);
}

function redactUrlInText(url: string): string {
  const authority = url.search(/[/\\]{2}/) + 2;
  const at = url.lastIndexOf("@");
  let text = url;
  let tail = authority;
  if (at >= authority) {
    text = `${url.slice(0, authority)}***@${url.slice(at + 1)}`;
    tail = authority + 4;
  }
  const cut = text.slice(tail).search(/[?#]/);
  if (cut >= 0) text = `${text.slice(0, tail + cut)}?…`;
  return truncateText(text, 120);
}

/** Whether `value` is a promise-like (something a callback returned by mistake, say from `async`). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}
