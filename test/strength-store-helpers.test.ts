/**
 * The helpers every store implementation uses to take `listDead`'s limit and `release`'s delay
 * (exported for custom stores), and `constantTimeEqual`, which checks cron secrets and webhook
 * signatures. Written against mutants the older suites let survive.
 */
import { describe, expect, it } from "vitest";
import {
  constantTimeEqual,
  DEFAULT_DEAD_LIMIT,
  deadListLimit,
  releaseDelay,
  ValidationError,
} from "../mod.ts";

describe("deadListLimit", () => {
  it("is 100 when not given and the integer given when it is at least 1", () => {
    expect(DEFAULT_DEAD_LIMIT).toBe(100);
    expect(deadListLimit(undefined)).toBe(100);
    expect(deadListLimit(1)).toBe(1);
    expect(deadListLimit(Number.MAX_SAFE_INTEGER)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("refuses anything else with a ValidationError that names the value", () => {
    for (const [bad, shown] of [
      [0, "0"],
      [-1, "-1"],
      [1.5, "1.5"],
      [Number.NaN, "NaN"],
      [Number.POSITIVE_INFINITY, "Infinity"],
      [2 ** 53, "9007199254740992"],
      ["5", "5"],
      [null, "null"],
    ] as const) {
      let thrown: unknown;
      try {
        deadListLimit(bad);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ValidationError);
      expect((thrown as Error).message).toBe(`limit must be an integer >= 1, got ${shown}`);
    }
  });
});

describe("releaseDelay", () => {
  it("rounds a positive delay up to whole milliseconds", () => {
    expect(releaseDelay(1)).toBe(1);
    expect(releaseDelay(0.2)).toBe(1);
    expect(releaseDelay(1500.5)).toBe(1501);
  });

  it("cuts a delay to 2^31 - 1 ms, what every timer and database interval holds", () => {
    expect(releaseDelay(2 ** 31 - 1)).toBe(2 ** 31 - 1);
    expect(releaseDelay(2 ** 31)).toBe(2 ** 31 - 1);
    expect(releaseDelay(1e15)).toBe(2 ** 31 - 1);
  });

  it("is 0 (claimable at once) for anything that is not a finite positive number", () => {
    for (const none of [
      0,
      -0,
      -5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      "100",
      undefined,
    ]) {
      expect(releaseDelay(none)).toBe(0);
    }
  });
});

describe("constantTimeEqual", () => {
  const bytes = (...values: number[]) => new Uint8Array(values);

  it("is true for equal bytes, empty ones included", () => {
    expect(constantTimeEqual(bytes(), bytes())).toBe(true);
    expect(constantTimeEqual(bytes(1, 2, 255), bytes(1, 2, 255))).toBe(true);
  });

  it("is false for a difference in the first, a middle or the last byte, or in length", () => {
    expect(constantTimeEqual(bytes(0, 2, 3), bytes(1, 2, 3))).toBe(false);
    expect(constantTimeEqual(bytes(1, 2, 3), bytes(1, 0, 3))).toBe(false);
    expect(constantTimeEqual(bytes(1, 2, 3), bytes(1, 2, 7))).toBe(false);
    expect(constantTimeEqual(bytes(255), bytes(0))).toBe(false);
    expect(constantTimeEqual(bytes(1, 2), bytes(1, 2, 3))).toBe(false);
    expect(constantTimeEqual(bytes(1, 2, 0), bytes(1, 2))).toBe(false);
  });
});
