import { describe, expect, it } from "vitest";
import { backoffDelay, DEFAULT_OPTIONS, nextAttemptAt } from "../mod.ts";

const options = { initialDelay: 1000, maxDelay: 10_000, factor: 2 };

describe("backoff", () => {
  it("draws uniformly below a bound that doubles per retry (full jitter)", () => {
    expect(backoffDelay(0, options, () => 0.999999)).toBe(999);
    expect(backoffDelay(1, options, () => 0.999999)).toBe(1999);
    expect(backoffDelay(3, options, () => 0.5)).toBe(4000);
    expect(backoffDelay(3, options, () => 0)).toBe(0);
  });

  it("never exceeds maxDelay, even after many retries", () => {
    expect(backoffDelay(60, options, () => 0.999999)).toBeLessThan(10_000);
    expect(backoffDelay(5000, DEFAULT_OPTIONS.backoff, () => 0.999999)).toBeLessThan(300_000);
  });

  it("honours a sender's retryAfter as is", () => {
    expect(nextAttemptAt(1_000, 0, 120_000, options).getTime()).toBe(121_000);
    expect(nextAttemptAt(1_000, 2, undefined, options, () => 0.5).getTime()).toBe(3_000);
  });
});
