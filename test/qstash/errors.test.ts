import {
  QstashChatRatelimitError,
  QstashDailyRatelimitError,
  QstashError,
  QstashRatelimitError,
} from "@upstash/qstash";
import { describe, expect, it } from "vitest";
import { MAX_RESET_DELAY } from "../../adapters/qstash/errors.ts";
import { classifyQStashError, isPermanentQStashStatus, resetDelay } from "../../adapters/qstash.ts";

const now = 1_800_000_000_000; // epoch ms

describe("resetDelay", () => {
  it("reads unix seconds, unix milliseconds, relative seconds and durations", () => {
    expect(resetDelay(String(now / 1000 + 30), now)).toBe(30_000);
    expect(resetDelay(now / 1000 + 5, now)).toBe(5000);
    expect(resetDelay(String(now + 1500), now)).toBe(1500);
    expect(resetDelay("12", now)).toBe(12_000);
    expect(resetDelay("6m0s", now)).toBe(360_000);
    expect(resetDelay("1.5s", now)).toBe(1500);
    expect(resetDelay("250ms", now)).toBe(250);
    expect(resetDelay("1h2m3s", now)).toBe(3_723_000);
  });

  it("is never negative and ignores what it cannot read", () => {
    expect(resetDelay(String(now / 1000 - 60), now)).toBe(0);
    for (const value of [null, undefined, "", "soon", "5x", "-3", {}, ["5"], Number.NaN])
      expect(resetDelay(value, now)).toBeUndefined();
  });

  it("is capped at a day, so a huge value can never make the next attempt time NaN", () => {
    for (const value of ["9".repeat(400), 1e300, String(now * 1000), "99999999h", `${"9".repeat(400)}s`]) {
      expect(resetDelay(value, now)).toBe(MAX_RESET_DELAY);
    }
    expect(MAX_RESET_DELAY).toBe(86_400_000);
    const failure = classifyQStashError(
      { name: "QstashRatelimitError", reset: "9".repeat(400) },
      undefined,
      now,
    );
    expect(failure.retryAfter).toBe(MAX_RESET_DELAY);
    expect(failure.description).not.toContain("NaN");
  });
});

describe("classifyQStashError", () => {
  it("retries rate limits after their reset (burst, daily, chat)", () => {
    const reset = String(now / 1000 + 42);
    const burst = new QstashRatelimitError({ limit: "100", remaining: "0", reset });
    expect(classifyQStashError(burst, undefined, now)).toMatchObject({
      outcome: "retry",
      status: 429,
      retryAfter: 42_000,
    });
    expect(classifyQStashError(burst, undefined, now).description).toContain("QstashRatelimitError");
    const daily = new QstashDailyRatelimitError({ limit: "500", remaining: "0", reset });
    expect(classifyQStashError(daily, undefined, now)).toMatchObject({
      outcome: "retry",
      retryAfter: 42_000,
    });
    const chat = new QstashChatRatelimitError({
      "limit-requests": "1",
      "limit-tokens": "1",
      "remaining-requests": "0",
      "remaining-tokens": "0",
      "reset-requests": "2s",
      "reset-tokens": "1m",
    });
    expect(classifyQStashError(chat, undefined, now)).toMatchObject({ outcome: "retry", retryAfter: 60_000 });
    const noReset = new QstashRatelimitError({ limit: null, remaining: null, reset: null });
    expect(classifyQStashError(noReset, undefined, now).retryAfter).toBeUndefined();
  });

  it("retries 5xx, 408, 425 and errors without a status; kills other 4xx", () => {
    for (const status of [500, 502, 503, 408, 425]) {
      expect(classifyQStashError(new QstashError("x", status)).outcome).toBe("retry");
    }
    for (const status of [400, 401, 403, 404, 413]) {
      expect(classifyQStashError(new QstashError('{"error":"bad thing"}', status))).toMatchObject({
        outcome: "dead",
        status,
        description: `QStash answered ${status}: bad thing`,
      });
    }
    const network = new TypeError("fetch failed", {
      cause: Object.assign(new Error("refused"), { code: "ECONNREFUSED" }),
    });
    expect(classifyQStashError(network)).toEqual({
      outcome: "retry",
      description: "QStash request failed: TypeError: fetch failed (ECONNREFUSED)",
    });
    expect(classifyQStashError("weird").outcome).toBe("retry");
  });

  it("takes a permanent-failure policy", () => {
    expect(classifyQStashError(new QstashError("x", 401), () => false).outcome).toBe("retry");
    expect(classifyQStashError(new QstashError("x", 500), (s) => s >= 500).outcome).toBe("dead");
    expect(isPermanentQStashStatus(404)).toBe(true);
    expect(isPermanentQStashStatus(429)).toBe(false);
  });

  it("trims long QStash details", () => {
    const { description } = classifyQStashError(new QstashError("y".repeat(1000), 400));
    expect(description.length).toBeLessThan(260);
  });
});
