/**
 * Target URLs of the outgoing senders: what is allowed (absolute http/https, no credentials, no
 * control characters), and how a URL appears in an error (never its credentials or query).
 * Internal: no subpath export.
 */
import { truncateText } from "../../mod.ts";

/** A checked target URL, or what is wrong with it, described without echoing secrets. */
export type UrlCheck = { url: string } | { problem: string };

const SURROUNDING_SPACE = /^\s|\s$/;
// A scheme as shown for a value that does not parse: only when slashes follow, since in
// "admin:hunter2@host" the "scheme" is a user name.
const SHOWN_SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]{0,31}):[/\\]/;

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
    // "admin:hunter2@host" parses with the scheme "admin:": a user name, not shown.
    const scheme = value.includes("@") ? "another scheme" : parsed.protocol.slice(0, 20);
    return { problem: `uses ${scheme}; only http: and https: are allowed` };
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
    const scheme = SHOWN_SCHEME.exec(url)?.[1];
    return scheme === undefined ? "no scheme; not shown" : `scheme ${scheme}:, the rest not shown`;
  }
  const credentials =
    parsed.username !== "" || parsed.password !== "" || /^[^:]*:[/\\]*[^/?#\\]*@/.test(url) ? "***@" : "";
  const rest = parsed.search !== "" || parsed.hash !== "" ? "?…" : "";
  // A "password" with a "/" parses as a port and a path ("https://u:12/pw@h"): the free-text
  // rule then hides everything up to the last "@".
  return redactWord(`${parsed.protocol}//${credentials}${parsed.host}${parsed.pathname}${rest}`);
}

// Bounded, so that finding one is linear: an unbounded scheme makes the scan quadratic on "a.a.a…".
const SCHEME_IN_TEXT = /[a-zA-Z][a-zA-Z0-9+.-]{0,31}:/g;

/**
 * `text` with every URL in it redacted: for error texts from `fetch` or a service. In each
 * whitespace-delimited word that holds a URL (a scheme followed by slashes, or by an "@"),
 * everything from after `scheme://` to the word's last `@` becomes `***@` (a password may hold
 * `/`, `?` or `#`, so those do not end it; an `@` in a path or query hides more, which is fine),
 * and a query or fragment after that becomes `?…`. Forgiven forms (`https:u:p@h`,
 * `https:\\u:p@h`) and schemes of any length are caught too. Linear in the text.
 */
export function redactUrls(text: string): string {
  return text.replace(/\S+/g, redactWord);
}

function redactWord(word: string): string {
  const at = word.lastIndexOf("@");
  for (const scheme of word.matchAll(SCHEME_IN_TEXT)) {
    const colon = scheme.index + scheme[0].length;
    let authority = colon;
    while (authority < word.length && (word[authority] === "/" || word[authority] === "\\")) authority++;
    if (authority === colon && at < colon) continue; // "key:value" or "node:internal": not a URL
    let rest = word.slice(authority);
    let url = word.slice(scheme.index, authority);
    if (at >= authority) {
      url += "***@";
      rest = word.slice(at + 1);
    }
    const cut = rest.search(/[?#]/);
    url += cut >= 0 ? `${rest.slice(0, cut)}?…` : rest;
    return word.slice(0, scheme.index) + truncateText(url, 120);
  }
  return word;
}

/** Whether `value` is a promise-like (something a callback returned by mistake, say from `async`). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}
