/** How an HTTP response decides a message's fate: pure functions, tested directly. */

/** What a response means for the message: delivered, retry later, or give up now. */
export type StatusOutcome = "sent" | "retry" | "dead";

// Client errors that say "not now" rather than "never": timeout, too early, rate limited.
const RETRYABLE_CLIENT_ERRORS: ReadonlySet<number> = new Set([408, 425, 429]);

/**
 * The default permanent-failure policy: a 4xx other than 408, 425 and 429. Such a request will
 * not succeed by repeating it, so the message is dead at once (it stays queryable and can be
 * requeued after the receiver is fixed).
 */
export function isPermanentStatus(status: number): boolean {
  return status >= 400 && status < 500 && !RETRYABLE_CLIENT_ERRORS.has(status);
}

/**
 * Classifies a response status: 2xx is `sent`; a status `permanent` accepts is `dead`;
 * everything else (3xx, 408, 425, 429, 5xx, an opaque redirect's 0) is `retry`.
 *
 * @param permanent the permanent-failure policy; default {@link isPermanentStatus}
 */
export function classifyStatus(
  status: number,
  permanent: (status: number) => boolean = isPermanentStatus,
): StatusOutcome {
  if (status >= 200 && status < 300) return "sent";
  return permanent(status) ? "dead" : "retry";
}

const DELAY_SECONDS = /^\s*(\d+)\s*$/;

/**
 * Milliseconds a `Retry-After` header asks to wait: delay-seconds (`"120"`) or an HTTP date
 * (`"Wed, 21 Oct 2015 07:28:00 GMT"`, relative to `now`, never negative). `undefined` when the
 * header is absent or malformed, so the relay falls back to its own backoff.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const seconds = DELAY_SECONDS.exec(value);
  if (seconds) return Number(seconds[1]) * 1000;
  // RFC 9110 allows only IMF-fixdate and two obsolete forms; all contain a letter and a comma
  // or a space, which keeps Date.parse from accepting bare numbers or ISO fragments here.
  if (!/[A-Za-z]/.test(value)) return undefined;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
