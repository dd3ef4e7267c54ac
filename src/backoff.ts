import type { BackoffOptions } from "./options.ts";

/** The settings {@link backoffDelay} needs. */
export type BackoffCurve = Required<Pick<BackoffOptions, "initialDelay" | "maxDelay" | "factor">>;

// The documented default of `backoff.maxRetryAfter` (options.ts imports from here, not back).
const DEFAULT_MAX_RETRY_AFTER = 86_400_000;

/**
 * The delay (ms) before retry number `retries + 1`: exponential backoff with full jitter,
 * a uniform pick in `[0, min(maxDelay, initialDelay * factor ** retries)]`. Jitter spreads
 * retries of a batch that failed together so a recovering receiver is not hit all at once.
 *
 * @param retries failed attempts so far (0 after the first failure)
 * @param random a source in [0, 1); injectable for tests
 */
export function backoffDelay(
  retries: number,
  options: BackoffCurve,
  random: () => number = Math.random,
): number {
  const grown = options.initialDelay * options.factor ** retries;
  // 0 * Infinity (a zero initial delay after ~1000 retries) and a NaN retry count are NaN.
  const bound = grown < options.maxDelay ? grown : options.initialDelay === 0 ? 0 : options.maxDelay;
  return Math.floor(random() * (bound >= 0 ? bound : options.maxDelay));
}

/**
 * The wait (integer ms >= 0) before the next attempt of a failed message, whatever the sender
 * said: a `retryAfter` that is a number >= 0 is honoured (a receiver knows its own load best)
 * but cut to `maxRetryAfter` (so `Infinity` or a value beyond what a `Date` can hold waits
 * `maxRetryAfter`) and rounded up to whole ms; anything else (undefined, NaN, a negative or
 * non-number) gets {@link backoffDelay}. The one clamp for every sender. Without
 * `maxRetryAfter`, the default (1 day) applies.
 */
export function retryDelay(
  retries: number,
  retryAfter: unknown,
  options: BackoffCurve & { maxRetryAfter?: number },
  random?: () => number,
): number {
  if (typeof retryAfter === "number" && retryAfter >= 0) {
    return Math.ceil(Math.min(retryAfter, options.maxRetryAfter ?? DEFAULT_MAX_RETRY_AFTER));
  }
  return backoffDelay(retries, options, random);
}

/**
 * The next attempt time of a failed message: `now` plus {@link retryDelay}. Always a valid date.
 */
export function nextAttemptAt(
  now: number,
  retries: number,
  retryAfter: number | undefined,
  options: BackoffCurve & { maxRetryAfter?: number },
  random?: () => number,
): Date {
  return new Date(now + retryDelay(retries, retryAfter, options, random));
}
