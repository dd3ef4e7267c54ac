/**
 * Error texts the outgoing senders store as a message's `error`: well-formed (no lone
 * surrogates), bounded, and without a URL's credentials or query. Internal: no subpath export.
 */
import { truncateText, wellFormedText } from "../../mod.ts";
import { isThenable, redactUrls } from "./urls.ts";

/** Longest detail (UTF-16 units) a sender copies from a thrown error or a service's answer. */
export const MAX_DETAIL = 300;

/**
 * `text` made safe to store: well-formed, URLs redacted, at most `max` units. A long text is cut
 * to a generous `4 * max` first, so redaction never scans megabytes of a service's answer; the
 * word cut there is dropped whole if it holds a URL (which may be cut inside its credentials,
 * before the "@" that would have redacted them).
 */
export function safeText(text: string, max: number = MAX_DETAIL): string {
  let bounded = text;
  if (text.length > 4 * max) {
    bounded = text.slice(0, 4 * max);
    const lastSpace = bounded.search(/\s\S*$/);
    const lastWord = bounded.slice(lastSpace + 1);
    // Every URL form has a colon after its scheme; a word without one cannot be a cut URL.
    if (lastWord.includes(":")) bounded = `${bounded.slice(0, lastSpace + 1)}…`;
  }
  return truncateText(redactUrls(wellFormedText(bounded)), max);
}

/** `Name: message (CODE)` of what was thrown (any value), made safe to store. */
export function describeThrown(error: unknown): string {
  try {
    if (!(error instanceof Error)) return safeText(String(error));
    // fetch puts the system error's code (ECONNREFUSED, ...) on its cause; node:http on the error.
    const code = [
      (error as { cause?: { code?: unknown } }).cause?.code,
      (error as { code?: unknown }).code,
    ].find((c): c is string => typeof c === "string" && !error.message.includes(c));
    return safeText(`${error.name}: ${error.message}${code === undefined ? "" : ` (${code})`}`);
  } catch {
    // A value whose toString or getters throw (a hostile or frozen proxy): say what it was.
    return `a thrown ${error === null ? "null" : typeof error}`;
  }
}

/**
 * Calls a user's `permanent(status)`: its boolean, or the error text when it throws or returns
 * something else (the sender then fails the message, to be retried, rather than guess).
 */
export function callPermanent(
  permanent: (status: number) => boolean,
  status: number,
): { permanent: boolean } | { error: string } {
  let result: unknown;
  try {
    result = permanent(status);
  } catch (error) {
    return { error: `permanent(${status}) threw: ${describeThrown(error)}` };
  }
  if (isThenable(result)) {
    Promise.resolve(result).catch(() => {}); // never an unhandled rejection
    return { error: `permanent(${status}) returned a Promise, expected a boolean (it must be synchronous)` };
  }
  if (typeof result !== "boolean") {
    return {
      error: `permanent(${status}) returned ${result === null ? "null" : typeof result}, expected a boolean`,
    };
  }
  return { permanent: result };
}
