/**
 * Well-formed text for storage: every string a store writes goes through these, so that no
 * lone UTF-16 surrogate ever becomes invalid UTF-8 in a database (the native libSQL driver
 * aborts the process when it reads such a row back).
 *
 * @module
 */

// `String.prototype.toWellFormed` is in every runtime we target today (Node 20, Deno, Bun,
// workerd); the fallback keeps an older runtime correct rather than crashing on a missing method.
const nativeWellFormed: ((this: string) => string) | undefined = (
  String.prototype as { toWellFormed?: (this: string) => string }
).toWellFormed;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `text` with every lone UTF-16 surrogate replaced by U+FFFD, so that it encodes to valid
 * UTF-8. Well-formed text comes back unchanged (the same string).
 *
 * @example
 * wellFormedText("a\uD800b"); // "a\uFFFDb"
 */
export function wellFormedText(text: string): string {
  return nativeWellFormed ? nativeWellFormed.call(text) : text.replace(LONE_SURROGATE, "\uFFFD");
}

/**
 * `text` made well-formed and, when longer than `maxLength` UTF-16 code units, cut to at most
 * `maxLength` units ending in `…`, never inside a surrogate pair. For operator-facing texts
 * (a sender's error) that a store keeps in bounded space.
 *
 * @example
 * truncateText("x".repeat(5000), 2000).length; // 2000
 */
export function truncateText(text: string, maxLength: number): string {
  const clean = wellFormedText(text);
  if (clean.length <= maxLength) return clean;
  let end = Math.max(0, maxLength - 1);
  // Cutting between a high and a low surrogate would leave a lone high one behind.
  const last = clean.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${clean.slice(0, end)}…`;
}
