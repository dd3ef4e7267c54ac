/**
 * How D1Store words and classifies D1's failures, case by case: what a relay retries, the
 * STORE_BUSY of a busy database, and the texts an operator reads. Written against mutation
 * survivors (TESTING.md). The messages are D1's own wording.
 */
import { describe, expect, it } from "vitest";
import { isTooBig, toStoreError } from "../../adapters/d1/errors.ts";
import { StoreError } from "../../mod.ts";

describe("D1 failures as StoreErrors", () => {
  it.each([
    "D1_ERROR: database is locked: SQLITE_BUSY",
    "D1_ERROR: SQLITE_BUSY",
    "D1 DB is overloaded. Too many requests queued.",
  ])("makes a busy database (%s) a retryable STORE_BUSY saying nothing is lost", (text) => {
    const cause = new Error(text);
    const error = toStoreError(cause, "claiming messages");
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({
      code: "STORE_BUSY",
      retryable: true,
      message: `D1 database busy while claiming messages: ${text}; the next pass retries, nothing is lost`,
    });
    expect(error.cause).toBe(cause);
  });

  it.each([
    "D1_ERROR: Durable Object reset because its code was updated.",
    "D1_ERROR: Internal error while starting up D1 DB storage caused object to be reset.",
    "D1_ERROR: Internal error.",
    "D1_ERROR: storage operation exceeded timeout which caused object to be reset.",
    "D1_ERROR: Cannot resolve D1 DB due to an unknown problem.",
    "D1_ERROR: Network connection lost.",
    "D1_ERROR: a transient issue on remote node.",
  ])("makes a transient failure (%s) a retryable STORE_ERROR", (text) => {
    const error = toStoreError(new Error(text), "reading stats");
    expect(error).toMatchObject({
      code: "STORE_ERROR",
      retryable: true,
      message: `D1 failed while reading stats: ${text}`,
    });
  });

  it("words a failure that is not an Error by its text, with the migrate() hint when a table is missing", () => {
    expect(toStoreError("no such table: outbox_messages", "listing dead messages").message).toBe(
      "D1 failed while listing dead messages: no such table: outbox_messages (did you run `await store.migrate()`?)",
    );
    expect(toStoreError(42, "x")).toMatchObject({ message: "D1 failed while x: 42", retryable: false });
  });

  it("does not take a busy failure for a missing table, and no hint when the table exists", () => {
    const error = toStoreError(new Error("D1_ERROR: UNIQUE constraint failed: t.id"), "adding a message");
    expect(error.message).toBe("D1 failed while adding a message: D1_ERROR: UNIQUE constraint failed: t.id");
    expect(error).toMatchObject({ code: "STORE_ERROR", retryable: false });
  });

  it("recognises a too-big failure given as text, and only that", () => {
    expect(isTooBig("D1_ERROR: string or blob too big")).toBe(true);
    expect(isTooBig("STRING OR BLOB TOO BIG")).toBe(true);
    expect(isTooBig(new Error("SQLITE_TOOBIG"))).toBe(true);
    expect(isTooBig(new Error("D1_ERROR: too big a batch"))).toBe(false);
  });
});
