import type { BackoffOptions } from "./options.ts";

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
  options: Required<BackoffOptions>,
  random: () => number = Math.random,
): number {
  const bound = Math.min(options.maxDelay, options.initialDelay * options.factor ** retries);
  return Math.floor(random() * bound);
}

/**
 * The next attempt time of a failed message: the sender's `retryAfter` when it gave one
 * (honoured as is, a receiver knows its own load best), else {@link backoffDelay}.
 */
export function nextAttemptAt(
  now: number,
  retries: number,
  retryAfter: number | undefined,
  options: Required<BackoffOptions>,
  random?: () => number,
): Date {
  const delay = retryAfter ?? backoffDelay(retries, options, random);
  return new Date(now + delay);
}
