import { describe, expect, it } from "vitest";
import { parseHttpDate } from "../../adapters/http/status.ts";
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

describe("parseRetryAfter: strict RFC 9110", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");

  it("reads the three HTTP-date forms, all as GMT", () => {
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Thursday, 01-Jan-26 00:00:30 GMT", now)).toBe(30_000);
    // asctime has no zone: RFC 9110 says GMT, whatever the local time zone is.
    expect(parseRetryAfter("Thu Jan  1 00:00:30 2026", now)).toBe(30_000);
    expect(parseRetryAfter("Thu Jan 01 00:01:00 2026", now)).toBe(60_000);
    expect(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT")).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT", now)).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpDate("Sun Nov  6 08:49:37 1994")).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
  });

  it("reads a two-digit rfc850 year more than 50 years ahead as the past century", () => {
    expect(new Date(parseHttpDate("Monday, 01-Jan-76 00:00:00 GMT", now)!).getUTCFullYear()).toBe(2076);
    expect(new Date(parseHttpDate("Monday, 01-Jan-77 00:00:00 GMT", now)!).getUTCFullYear()).toBe(1977);
  });

  it("refuses anything else, including what Date.parse would accept", () => {
    for (const value of [
      "a 1",
      "1 a",
      "Jan 1 2026",
      "2026-01-01T00:00:30Z",
      "Thu, 01 Jan 2026 00:00:30 UTC",
      "Thu, 01 Jan 2026 00:00:30 +0000",
      "thu, 01 jan 2026 00:00:30 GMT",
      "Thu, 1 Jan 2026 00:00:30 GMT",
      "Thu, 31 Feb 2026 00:00:30 GMT",
      "Thu, 01 Jan 2026 24:00:00 GMT",
      "Thu, 01 Jan 2026 00:60:00 GMT",
      "Thu Jan  1 00:00:30 2026 GMT",
      "Thursday, 01-Jan-2026 00:00:30 GMT",
      "+5",
      "0x10",
      "5 s",
    ]) {
      expect(parseRetryAfter(value, now), value).toBeUndefined();
    }
  });

  it("is always finite: a huge delay is held to 100 years", () => {
    const huge = parseRetryAfter("9".repeat(400), now)!;
    expect(Number.isFinite(huge)).toBe(true);
    expect(huge).toBe(100 * 365 * 86_400_000);
    expect(parseRetryAfter("Fri, 01 Jan 9999 00:00:00 GMT", now)).toBe(huge);
  });
});
