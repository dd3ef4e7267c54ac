/** How a QStash client error decides the fate of the messages it was about: pure functions. */
import { callPermanent, describeThrown, safeText } from "../shared/error-text.ts";

/** `retry`: fail now, try again later (after `retryAfter` ms when known); `dead`: give up. */
export interface QStashFailure {
  outcome: "retry" | "dead";
  /** Milliseconds until the rate limit resets, when QStash said. */
  retryAfter?: number;
  /** HTTP status of QStash's answer, when there was one. */
  status?: number;
  /** A short description for `message.error` (no token, no message body). */
  description: string;
}

const RATE_LIMIT_ERRORS: ReadonlySet<string> = new Set([
  "QstashRatelimitError",
  "QstashDailyRatelimitError",
  "QstashChatRatelimitError",
]);
const RETRYABLE_CLIENT_ERRORS: ReadonlySet<number> = new Set([408, 425, 429]);
const MAX_DETAIL = 200;
/** The longest wait {@link resetDelay} reports: QStash's longest limit (daily) resets within a day. */
export const MAX_RESET_DELAY = 86_400_000;

/**
 * The default permanent-failure policy for QStash answers: a 4xx other than 408, 425 and 429.
 * (A whole batch answered 4xx means QStash refused the request itself: a bad destination,
 * token or option, which repeating it will not mend.)
 */
export function isPermanentQStashStatus(status: number): boolean {
  return status >= 400 && status < 500 && !RETRYABLE_CLIENT_ERRORS.has(status);
}

/**
 * Classifies what `@upstash/qstash` threw. Rate limit errors (`QstashRatelimitError`,
 * `QstashDailyRatelimitError`, `QstashChatRatelimitError`, or any status 429) are retried after
 * their reset time; 5xx, 408, 425 and errors without a status (network, DNS) are retried;
 * statuses `permanent` accepts are dead. Errors are matched by name and `status`, not
 * `instanceof`, so two copies of the client package still classify alike. A `permanent` that
 * throws or returns a non-boolean makes the failure a retry, its description naming `permanent`.
 * Descriptions are well-formed, bounded, and carry no URL credentials or query.
 */
export function classifyQStashError(
  error: unknown,
  permanent: (status: number) => boolean = isPermanentQStashStatus,
  now: number = Date.now(),
): QStashFailure {
  const fields = (typeof error === "object" && error !== null ? error : {}) as Record<string, unknown>;
  const name = typeof fields.name === "string" ? fields.name : "";
  const status = typeof fields.status === "number" ? fields.status : undefined;
  if (RATE_LIMIT_ERRORS.has(name) || status === 429) {
    const retryAfter = latest(
      [fields.reset, fields.resetRequests, fields.resetTokens].map((reset) => resetDelay(reset, now)),
    );
    const wait = retryAfter === undefined ? "" : `, resets in ${Math.ceil(retryAfter / 1000)} s`;
    return {
      outcome: "retry",
      status: 429,
      description: `QStash rate limit${name ? ` (${name})` : ""}${wait}`,
      ...(retryAfter === undefined ? {} : { retryAfter }),
    };
  }
  if (status !== undefined) {
    const description = `QStash answered ${status}: ${detail(fields.message)}`;
    const verdict = callPermanent(permanent, status);
    if ("error" in verdict)
      return { outcome: "retry", status, description: `${description}; ${verdict.error}` };
    return { outcome: verdict.permanent ? "dead" : "retry", status, description };
  }
  return { outcome: "retry", description: `QStash request failed: ${describeThrown(error)}` };
}

/**
 * Milliseconds until a rate limit `reset` value: a unix time in seconds (QStash's
 * `Burst-RateLimit-Reset` and `RateLimit-Reset`) or milliseconds, a small number of seconds
 * from now, or a duration such as `"6m0s"` or `"250ms"` (chat limits). Never negative, never
 * more than {@link MAX_RESET_DELAY} (a day; a huge or far-future value cannot push the next
 * attempt out of a `Date`'s range); `undefined` when absent or unreadable.
 */
export function resetDelay(reset: unknown, now: number = Date.now()): number | undefined {
  if (reset === null || reset === undefined || reset === "") return undefined;
  if (typeof reset !== "string" && typeof reset !== "number") return undefined;
  const text = String(reset).trim();
  let delay: number | undefined;
  const numeric = typeof reset === "number" ? reset >= 0 : /^\d+(\.\d+)?$/.test(text);
  if (numeric) {
    const value = Number(reset);
    if (value >= 1e12)
      delay = value - now; // epoch milliseconds
    else if (value >= 1e9)
      delay = value * 1000 - now; // epoch seconds
    else delay = value * 1000; // seconds from now
  } else {
    delay = parseDuration(text);
  }
  if (delay === undefined || Number.isNaN(delay)) return undefined;
  return Math.round(Math.min(Math.max(0, delay), MAX_RESET_DELAY));
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function parseDuration(text: string): number | undefined {
  if (!/^(\d+(\.\d+)?(ms|h|m|s))+$/.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) total += Number(amount) * UNIT_MS[unit!]!;
  return total;
}

function latest(delays: (number | undefined)[]): number | undefined {
  const known = delays.filter((d): d is number => d !== undefined);
  return known.length === 0 ? undefined : Math.max(...known);
}

/** QStash's own diagnostic (its `{ error }` text), trimmed; it names the request, never our token. */
function detail(message: unknown): string {
  let text = typeof message === "string" ? message : "";
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed?.error === "string") text = parsed.error;
  } catch {
    // Not JSON: keep the text.
  }
  if (text === "") return "no detail";
  return safeText(text, MAX_DETAIL);
}
