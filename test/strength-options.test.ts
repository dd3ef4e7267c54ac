/**
 * `resolveOptions` and `checkBudget` at their edges: every refusal is a `ValidationError` naming
 * the option, and every edge value allowed is kept. Written against mutation survivors
 * (TESTING.md).
 */
import { describe, expect, it } from "vitest";
import { ValidationError } from "../mod.ts";
import { checkBudget, resolveOptions } from "../src/options.ts";

const refuses = (options: unknown, message: RegExp) => {
  expect(() => resolveOptions(options as never)).toThrow(ValidationError);
  expect(() => resolveOptions(options as never)).toThrow(message);
};

describe("resolveOptions edges", () => {
  it("refuses options and backoff that are not objects", () => {
    refuses(null, /options must be an object/);
    refuses("fast", /options must be an object/);
    refuses({ backoff: 5 }, /backoff must be an object/);
    refuses({ backoff: "x" }, /backoff must be an object/);
    expect(resolveOptions({ backoff: null as never }).backoff.factor).toBe(2);
  });

  it("keeps both orderings and refuses any other", () => {
    expect(resolveOptions({ ordering: "key" }).ordering).toBe("key");
    expect(resolveOptions({ ordering: "none" }).ordering).toBe("none");
    expect(resolveOptions({}).ordering).toBe("none");
    refuses({ ordering: "Key" }, /ordering must be "none" or "key"/);
    refuses({ ordering: "" }, /ordering must be/);
  });

  it("names the option in each refusal", () => {
    refuses({ backoff: { maxDelay: -1 } }, /backoff\.maxDelay must be/);
    refuses({ backoff: { maxRetryAfter: -1 } }, /backoff\.maxRetryAfter must be/);
    refuses({ statsCacheTtl: -1 }, /statsCacheTtl must be/);
    refuses({ backoff: { factor: 0.5 } }, /backoff\.factor must be a number >= 1/);
    refuses({ backoff: { factor: Number.NaN } }, /backoff\.factor/);
    refuses({ backoff: { factor: "2" } }, /backoff\.factor/);
    refuses({ onError: 5 }, /onError must be a function/);
  });

  it("keeps the edge values allowed", () => {
    const resolved = resolveOptions({
      period: 2 ** 31 - 1,
      leaseDuration: 2 ** 31 - 1,
      backoff: { factor: 1, maxRetryAfter: 0 },
      statsCacheTtl: 0,
      onError: () => {},
    });
    expect(resolved.period).toBe(2 ** 31 - 1);
    expect(resolved.backoff.factor).toBe(1);
    expect(resolved.backoff.maxRetryAfter).toBe(0);
    expect(resolved.statsCacheTtl).toBe(0);
    refuses({ period: 2 ** 31 }, /period must be a number of milliseconds between 1 and 2147483647/);
  });

  it("takes the given default name, a name up to 200 characters, and refuses others", () => {
    expect(resolveOptions({}, "orders").name).toBe("orders");
    expect(resolveOptions({}).name).toBe("outbox");
    expect(resolveOptions({ name: "n".repeat(200) }, "orders").name).toHaveLength(200);
    for (const name of ["", "n".repeat(201), 5])
      refuses({ name }, /name must be a non-empty string of at most 200/);
  });
});

describe("checkBudget", () => {
  it("takes undefined and numbers >= 0, refuses the rest", () => {
    for (const ok of [undefined, 0, 0.5, 10_000]) expect(() => checkBudget(ok)).not.toThrow();
    for (const bad of [-1, Number.NaN, "5", null]) {
      expect(() => checkBudget(bad)).toThrow(ValidationError);
      expect(() => checkBudget(bad)).toThrow(/budgetMs must be a number >= 0/);
    }
  });
});
