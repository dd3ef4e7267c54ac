import { describe, expect, it } from "vitest";
import { classifyStatus, isPermanentStatus, parseRetryAfter } from "../../adapters/http.ts";

describe("classifyStatus", () => {
  it.each([
    [200, "sent"],
    [201, "sent"],
    [204, "sent"],
    [299, "sent"],
    [0, "retry"],
    [301, "retry"],
    [302, "retry"],
    [304, "retry"],
    [307, "retry"],
    [308, "retry"],
    [408, "retry"],
    [425, "retry"],
    [429, "retry"],
    [500, "retry"],
    [502, "retry"],
    [503, "retry"],
    [504, "retry"],
    [400, "dead"],
    [401, "dead"],
    [403, "dead"],
    [404, "dead"],
    [410, "dead"],
    [413, "dead"],
    [422, "dead"],
  ] as const)("%i is %s", (status, outcome) => {
    expect(classifyStatus(status)).toBe(outcome);
  });

  it("takes a permanent-failure policy, which cannot turn a 2xx into a failure", () => {
    const retryAll = () => false;
    expect(classifyStatus(404, retryAll)).toBe("retry");
    expect(classifyStatus(503, (s) => s === 503)).toBe("dead");
    expect(classifyStatus(200, () => true)).toBe("sent");
  });

  it("isPermanentStatus is 4xx except 408, 425, 429", () => {
    expect([400, 401, 404, 499].every(isPermanentStatus)).toBe(true);
    expect([408, 425, 429, 500, 302, 200].some(isPermanentStatus)).toBe(false);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");

  it("reads delay-seconds as milliseconds", () => {
    expect(parseRetryAfter("0", now)).toBe(0);
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter(" 5 ", now)).toBe(5000);
  });

  it("reads an HTTP date relative to now, never negative", () => {
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter(new Date(now + 90_000).toUTCString(), now)).toBe(90_000);
    expect(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now)).toBe(0);
  });

  it("ignores absent and malformed values", () => {
    for (const value of [null, undefined, "", "soon", "-5", "1.5", "12abc", "2026-01-01"]) {
      expect(parseRetryAfter(value, now)).toBeUndefined();
    }
  });
});
