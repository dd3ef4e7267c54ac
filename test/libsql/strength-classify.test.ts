/**
 * How LibsqlStore reads libSQL's failures (what a relay may retry, what an operator reads) and
 * how long it keeps retrying a busy statement, on the error shapes `@libsql/client` produces.
 * Written against mutation survivors (TESTING.md).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { isBusy, isTooBig, retryBusy, toStoreError } from "../../adapters/libsql/errors.ts";
import { inlineStatement } from "../../adapters/libsql/inline.ts";
import { OutboxError, StoreError } from "../../mod.ts";

const libsqlError = (fields: Record<string, unknown>, message = "m") =>
  Object.assign(new Error(message), fields);

describe("libSQL busy conditions", () => {
  it.each([
    [{ code: "SQLITE_LOCKED" }, true],
    [{ code: "SQLITE_BUSY" }, true],
    [{ extendedCode: "SQLITE_BUSY_RECOVERY" }, true],
    [{ extendedCode: "SQLITE_LOCKED_VTAB" }, true],
    [{ extendedCode: "X_SQLITE_BUSY" }, false],
    [{ extendedCode: "SQLITE_ERROR" }, false],
    [{ rawCode: 5 }, true],
    [{ rawCode: 6 }, true],
    [{ rawCode: 262 }, true],
    [{ rawCode: 7 }, false],
    [{ rawCode: 4 }, false],
    [{ rawCode: 1285 }, true],
    [{ rawCode: "5" }, false],
    [{ code: 5 }, false],
    [{ code: "SQLITE_BUSYX" }, false],
  ])("isBusy(%j) is %s", (fields, busy) => {
    expect(isBusy(libsqlError(fields))).toBe(busy);
  });

  it("is false for what is not an object", () => {
    for (const value of [null, undefined, "SQLITE_BUSY", 5]) expect(isBusy(value)).toBe(false);
  });
});

describe("libSQL too-big failures", () => {
  it("are recognised by code, extended code or raw code, raw or wrapped", () => {
    for (const fields of [{ code: "SQLITE_TOOBIG" }, { extendedCode: "SQLITE_TOOBIG" }, { rawCode: 18 }]) {
      const raw = libsqlError(fields);
      expect(isTooBig(raw), JSON.stringify(fields)).toBe(true);
      expect(isTooBig(toStoreError(raw, "claiming")), JSON.stringify(fields)).toBe(true);
    }
    for (const value of [libsqlError({ code: "SQLITE_ERROR", rawCode: 1 }), null, "SQLITE_TOOBIG"]) {
      expect(isTooBig(value)).toBe(false);
    }
    expect(isTooBig(new OutboxError("STORE_ERROR", "x", { cause: null }))).toBe(false);
  });
});

describe("libSQL failures as StoreErrors", () => {
  it("words a busy failure with its most precise code, or 'busy' when it has none", () => {
    const precise = toStoreError(
      libsqlError({ code: "SQLITE_BUSY", extendedCode: "SQLITE_BUSY_SNAPSHOT" }, "database is locked"),
      "claiming messages",
    );
    expect(precise.message).toBe(
      "libSQL database busy or locked while claiming messages (SQLITE_BUSY_SNAPSHOT): database is locked; the next pass retries, nothing is lost",
    );
    expect(toStoreError(libsqlError({ code: "SQLITE_BUSY" }, "locked"), "x").message).toBe(
      "libSQL database busy or locked while x (SQLITE_BUSY): locked; the next pass retries, nothing is lost",
    );
    expect(toStoreError(libsqlError({ rawCode: 5 }, "locked"), "x").message).toBe(
      "libSQL database busy or locked while x (busy): locked; the next pass retries, nothing is lost",
    );
  });

  it("words any other failure with its code when it has one, and keeps it as cause", () => {
    const cause = libsqlError({ code: "SQLITE_CONSTRAINT" }, "UNIQUE constraint failed");
    const error = toStoreError(cause, "adding a message");
    expect(error.message).toBe(
      "libSQL failed while adding a message (SQLITE_CONSTRAINT): UNIQUE constraint failed",
    );
    expect(error.cause).toBe(cause);
    expect(toStoreError(new Error("gone"), "x").message).toBe("libSQL failed while x: gone");
    expect(toStoreError("plain text", "x").message).toBe("libSQL failed while x: plain text");
    expect(toStoreError({ message: 7 }, "x").message).toBe("libSQL failed while x: [object Object]");
    expect(toStoreError(libsqlError({ code: 1 }, "n"), "x").message).toBe("libSQL failed while x: n");
  });

  it.each(["HRANA_WEBSOCKET_ERROR", "HRANA_CLOSED_ERROR", "SERVER_ERROR", "STREAM_EXPIRED"])(
    "makes a remote transport failure (%s) retryable",
    (code) => {
      expect(toStoreError(libsqlError({ code }), "x")).toMatchObject({
        code: "STORE_ERROR",
        retryable: true,
      });
    },
  );

  it("makes other failures permanent, a transport code in the extended code included", () => {
    for (const fields of [{ code: "SQLITE_ERROR" }, { extendedCode: "SERVER_ERROR" }, {}]) {
      expect(toStoreError(libsqlError(fields), "x")).toMatchObject({ code: "STORE_ERROR", retryable: false });
    }
  });
});

describe("retrying a busy statement", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const busy = () => libsqlError({ code: "SQLITE_BUSY" }, "database is locked");

  it("gets a lock within 100 ms of its release, however long it was held", async () => {
    vi.useFakeTimers();
    const start = Date.now();
    const releasedAt = start + 3_000;
    const result = retryBusy(10_000, "claiming messages", async () => {
      if (Date.now() < releasedAt) throw busy();
      return Date.now();
    });
    await vi.advanceTimersByTimeAsync(3_200);
    const got = await result;
    expect(got - releasedAt).toBeGreaterThanOrEqual(0);
    expect(got - releasedAt).toBeLessThanOrEqual(100);
  });

  it("gives up busy once busyTimeout has passed, not before", async () => {
    vi.useFakeTimers();
    const start = Date.now();
    let lastTry = start;
    const result = retryBusy(1_000, "claiming messages", async () => {
      lastTry = Date.now();
      throw busy();
    }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1_100);
    const error = await result;
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: "STORE_BUSY", retryable: true });
    expect((error as StoreError).message).toMatch(/^libSQL database busy or locked while claiming messages/);
    expect(lastTry - start).toBe(1_000);
  });

  it("fails at once on anything but busy", async () => {
    vi.useFakeTimers();
    const start = Date.now();
    let tries = 0;
    const error = await retryBusy(1_000, "reading stats", async () => {
      tries++;
      throw new Error("no such table: outbox_messages");
    }).catch((e: unknown) => e);
    expect(Date.now()).toBe(start);
    expect(tries).toBe(1);
    expect((error as StoreError).message).toBe(
      "libSQL failed while reading stats: no such table: outbox_messages (did you run `await store.migrate()`?)",
    );
  });
});

describe("inlining a statement without arguments", () => {
  it("takes a statement object with no args as it is", () => {
    expect(inlineStatement({ sql: "SELECT 1" })).toBe("SELECT 1");
  });
});
