/**
 * The bounds of the retry wait a user configures: a zero initial delay means "retry at once"
 * however many retries went before; a curve never yields a negative wait; a sender's
 * `retryAfter` is honoured only when it is a number >= 0, and cut to `maxRetryAfter`.
 */
import { describe, expect, it } from "vitest";
import { backoffDelay, nextAttemptAt, retryDelay } from "../mod.ts";

const curve = { initialDelay: 1000, maxDelay: 10_000, factor: 2 };
const almostOne = () => 0.999999;

describe("backoffDelay bounds", () => {
  it("a zero initial delay retries at once, after any number of retries", () => {
    const immediate = { initialDelay: 0, maxDelay: 60_000, factor: 2 };
    // 2 ** 2000 is Infinity, and 0 * Infinity is NaN: still no wait.
    for (const retries of [0, 1, 30, 1100, 2000, Number.NaN]) {
      expect(backoffDelay(retries, immediate, almostOne)).toBe(0);
      expect(retryDelay(retries, undefined, immediate, almostOne)).toBe(0);
    }
  });

  it("a curve that outgrows maxDelay draws below maxDelay, never beyond", () => {
    expect(backoffDelay(4, curve, almostOne)).toBe(9999); // 1000 * 2^4 = 16000 > 10000
    expect(backoffDelay(2000, curve, almostOne)).toBe(9999); // Infinity
    expect(backoffDelay(Number.NaN, curve, almostOne)).toBe(9999);
    expect(backoffDelay(4, curve, () => 0.5)).toBe(5000);
  });

  it("a curve that reaches exactly maxDelay draws below it", () => {
    expect(backoffDelay(1, { initialDelay: 5000, maxDelay: 10_000, factor: 2 }, almostOne)).toBe(9999);
  });

  it("never gives a negative wait, even for a curve that goes below zero", () => {
    const falling = { initialDelay: 1000, maxDelay: 4000, factor: -2 };
    for (const retries of [0, 1, 2, 3]) {
      const delay = backoffDelay(retries, falling, almostOne);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(4000);
    }
    expect(backoffDelay(1, falling, () => 0.5)).toBe(2000);
  });
});

describe("retryDelay: what a sender's retryAfter can ask for", () => {
  const options = { ...curve, maxRetryAfter: 3_600_000 };

  it("honours a number >= 0, rounded up to whole ms and cut to maxRetryAfter", () => {
    expect(retryDelay(5, 0, options, almostOne)).toBe(0);
    expect(retryDelay(0, 1500.2, options, almostOne)).toBe(1501);
    expect(retryDelay(0, 7_200_000, options, almostOne)).toBe(3_600_000);
    expect(retryDelay(0, 7_200_000, curve, almostOne)).toBe(7_200_000); // default cap: one day
    expect(retryDelay(0, 2 * 86_400_000, curve, almostOne)).toBe(86_400_000);
  });

  it("falls back to the backoff for a negative number, NaN or a non-number", () => {
    for (const retryAfter of [-1, -0.5, Number.NEGATIVE_INFINITY, Number.NaN, "5000", "0", null, true, {}]) {
      expect(retryDelay(1, retryAfter, options, () => 0.5)).toBe(1000);
    }
  });

  it("nextAttemptAt is now plus that wait, a valid date whatever was asked", () => {
    expect(nextAttemptAt(10_000, 1, -5, options, () => 0.5).getTime()).toBe(11_000);
    expect(nextAttemptAt(10_000, 1, Number.POSITIVE_INFINITY, options).getTime()).toBe(3_610_000);
    expect(nextAttemptAt(10_000, 1, Number.NaN, options, () => 0.5).getTime()).toBe(11_000);
  });
});
