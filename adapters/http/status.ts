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
 * Whether a status says the endpoint itself is in trouble, so it counts towards opening its
 * circuit breaker: 5xx (the server failed), 408 (it did not read the request in time) and 429
 * (it asks everyone to slow down). Any other answer, a permanent 4xx included, comes from a
 * server that is up and answering: one message's fault says nothing about the endpoint's health.
 */
export function isUnhealthyStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
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

const DELAY_SECONDS = /^\d+$/;
const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
const LONG_DAY = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)";
const MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)";
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";
// RFC 9110 section 5.6.7: the three HTTP-date forms, all in GMT, names case-sensitive.
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAY} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
// Beyond any sane wait, and far below what a Date can hold: keeps every result finite.
const MAX_DELAY_MS = 100 * 365 * 86_400_000;

/**
 * Milliseconds a `Retry-After` header asks to wait, per RFC 9110: delay-seconds (`"120"`) or
 * an HTTP-date in one of its three forms, all GMT (`"Sun, 06 Nov 1994 08:49:37 GMT"`,
 * `"Sunday, 06-Nov-94 08:49:37 GMT"`, `"Sun Nov  6 08:49:37 1994"`), relative to `now` and
 * never negative. `undefined` when the header is absent or anything else (`"a 1"`,
 * `"1.5"`, an ISO date), so the relay falls back to its own backoff. Always finite: a huge
 * value is held to 100 years (a sender caps it further with `maxRetryAfter`).
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (typeof value !== "string") return undefined;
  const text = value.trim(); // optional whitespace around a field value is not part of it
  if (DELAY_SECONDS.test(text)) return Math.min(Number(text) * 1000, MAX_DELAY_MS);
  const at = parseHttpDate(text, now);
  if (at === undefined) return undefined;
  return Math.min(Math.max(0, at - now), MAX_DELAY_MS);
}

/** Epoch ms of an RFC 9110 HTTP-date, or `undefined` when `text` is not exactly one. */
export function parseHttpDate(text: string, now: number = Date.now()): number | undefined {
  const parts = dateParts(text, now);
  if (parts === undefined) return undefined;
  const { year, month, day, hours, minutes, seconds } = parts;
  // Leap seconds (60) are allowed by the grammar and carried into the next minute.
  if (hours > 23 || minutes > 59 || seconds > 60 || day < 1) return undefined;
  // Not Date.UTC: it reads years 0-99 as 1900-1999.
  const midnight = new Date(0).setUTCFullYear(year, MONTHS.indexOf(month), day);
  // Refuses a day the month does not have ("31 Feb") instead of rolling it over.
  if (new Date(midnight).getUTCDate() !== day) return undefined;
  const at = midnight + ((hours * 60 + minutes) * 60 + seconds) * 1000;
  return Number.isFinite(at) ? at : undefined;
}

interface DateParts {
  year: number;
  month: string;
  day: number;
  hours: number;
  minutes: number;
  seconds: number;
}

function dateParts(text: string, now: number): DateParts | undefined {
  const time = (match: RegExpExecArray, from: number) => ({
    hours: Number(match[from]),
    minutes: Number(match[from + 1]),
    seconds: Number(match[from + 2]),
  });
  const imf = IMF_FIXDATE.exec(text);
  if (imf) return { day: Number(imf[1]), month: imf[2]!, year: Number(imf[3]), ...time(imf, 4) };
  const rfc850 = RFC850_DATE.exec(text);
  if (rfc850) {
    // A two-digit year more than 50 years ahead is the most recent past year ending so.
    const thisYear = new Date(now).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(rfc850[3]);
    if (year > thisYear + 50) year -= 100;
    return { day: Number(rfc850[1]), month: rfc850[2]!, year, ...time(rfc850, 4) };
  }
  const asctime = ASCTIME_DATE.exec(text);
  if (asctime) {
    return {
      month: asctime[1]!,
      day: Number(asctime[2]!.trim()),
      year: Number(asctime[6]),
      ...time(asctime, 3),
    };
  }
  return undefined;
}
