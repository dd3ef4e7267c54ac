/**
 * Target URLs of the outgoing senders: what is allowed (absolute http/https, no credentials),
 * and how a URL appears in an error (never its credentials or query). Internal: no subpath export.
 */
import { truncateText } from "../../mod.ts";

/** A checked target URL, or what is wrong with it, described without echoing secrets. */
export type UrlCheck = { url: string } | { problem: string };

/**
 * Checks that `value` is an absolute `http:`/`https:` URL without `user:password@`. Credentials
 * in a URL are refused rather than turned into a header: `fetch` rejects them, and a URL is
 * logged and stored in too many places to hold a password. Put them in `headers` instead.
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
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return { problem: `is not an absolute http(s) URL: ${redactUrl(value)}` };
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return { problem: `uses ${parsed.protocol.slice(0, 20)}; only http: and https: are allowed` };
  }
  // The parser forgives "https:host" and "https:/host"; a service given the text as is may not.
  if (!/^https?:\/\/[^/]/i.test(value)) {
    return { problem: `is not an absolute http(s) URL (scheme://host/...): ${redactUrl(value)}` };
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return {
      problem: `carries credentials (user:password@) in ${redactUrl(value)}; send them in headers (e.g. authorization) instead`,
    };
  }
  return { url: value };
}

/**
 * `url` without what may be secret: credentials become `***@`, a query or fragment becomes `?…`.
 * Works on strings that do not parse too, and bounds the length.
 */
export function redactUrl(url: string): string {
  let text = url;
  const cut = text.search(/[?#]/);
  if (cut >= 0) text = `${text.slice(0, cut)}?…`;
  // Credentials: anything up to the last "@" before the path (with or without a scheme).
  text = text.replace(
    /^((?:[a-zA-Z][a-zA-Z0-9+.-]*:)?\/\/)?[^/]*@/,
    (_, scheme: string | undefined) => `${scheme ?? ""}***@`,
  );
  return truncateText(text, 120);
}

const URL_IN_TEXT = /\b[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^\s"'<>`]+/g;

/** `text` with every URL in it redacted ({@link redactUrl}): for error texts from `fetch` or a service. */
export function redactUrls(text: string): string {
  return text.replace(URL_IN_TEXT, redactUrl);
}

/** Whether `value` is a promise-like (something a callback returned by mistake, say from `async`). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}
