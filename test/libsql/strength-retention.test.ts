/**
 * Retention of delivered rows as the SQL stores share it (`adapters/sql/retention.ts`): which
 * options are taken, what a refusal says, and when a store purges after a sent mark. Written
 * against mutation survivors (TESTING.md).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { LibsqlStore } from "../../adapters/libsql.ts";
import { PURGE_INTERVAL, PurgeSchedule } from "../../adapters/sql/retention.ts";
import { ValidationError } from "../../mod.ts";

const client = { execute() {}, transaction() {} } as never;

afterEach(() => {
  vi.useRealTimers();
});

describe("retention options", () => {
  it("takes delete, keep with any whole number of ms from 0, and no option at all", () => {
    for (const retention of [
      undefined,
      { sent: "delete" },
      { sent: "keep", keepFor: 0 },
      { sent: "keep", keepFor: Number.MAX_SAFE_INTEGER },
    ] as const) {
      expect(() => new LibsqlStore(client, { retention })).not.toThrow();
    }
  });

  it("refuses keepFor that is not a whole number of ms >= 0, saying what it got", () => {
    for (const keepFor of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1, "10", undefined]) {
      const make = () => new LibsqlStore(client, { retention: { sent: "keep", keepFor: keepFor as number } });
      expect(make).toThrow(ValidationError);
      expect(make).toThrow(
        `retention.keepFor must be an integer number of milliseconds >= 0, got ${String(keepFor)}`,
      );
    }
  });

  it("refuses any other shape, showing it", () => {
    for (const retention of [null, {}, { sent: "maybe" }, "keep"]) {
      const make = () => new LibsqlStore(client, { retention: retention as never });
      expect(make).toThrow(ValidationError);
      expect(make).toThrow(
        `retention must be { sent: "delete" } or { sent: "keep", keepFor: ms }, got ${JSON.stringify(retention)}`,
      );
    }
  });
});

describe("the purge schedule after sent marks", () => {
  it("purges on the first mark, then once the interval has fully passed, never when rows are deleted at once", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(1_000_000);
    let purges = 0;
    const schedule = new PurgeSchedule(1000, async () => {
      purges++;
    });
    await schedule.afterSent();
    expect(purges).toBe(1);
    vi.setSystemTime(1_000_000 + PURGE_INTERVAL - 1);
    await schedule.afterSent();
    expect(purges).toBe(1);
    vi.setSystemTime(1_000_000 + PURGE_INTERVAL);
    await schedule.afterSent();
    expect(purges).toBe(2);
    expect(PURGE_INTERVAL).toBe(60_000);

    let deletes = 0;
    const none = new PurgeSchedule(undefined, async () => {
      deletes++;
    });
    await none.afterSent();
    expect(deletes).toBe(0);
  });

  it("never fails the mark that triggered a failed purge, and tries again only after the interval", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(5_000_000);
    let calls = 0;
    const schedule = new PurgeSchedule(0, () => {
      calls++;
      return Promise.reject(new Error("database gone"));
    });
    await expect(schedule.afterSent()).resolves.toBeUndefined();
    await expect(schedule.afterSent()).resolves.toBeUndefined();
    expect(calls).toBe(1);
    vi.setSystemTime(5_000_000 + PURGE_INTERVAL);
    await expect(schedule.afterSent()).resolves.toBeUndefined();
    expect(calls).toBe(2);
  });
});
