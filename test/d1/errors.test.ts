/**
 * How D1 failures become `StoreError`s: what a relay may retry, and the too-big signal a claim
 * halves its batch on. The messages are D1's own (as workerd words them; see the live checks in
 * store.test.ts for the ones Miniflare produces).
 */
import { describe, expect, it } from "vitest";
import { isTooBig, toStoreError } from "../../adapters/d1/errors.ts";
import { chunks, inlinedValueBytes } from "../../adapters/d1/limits.ts";
import { OutboxError, StoreError, ValidationError } from "../../mod.ts";

describe("D1 errors", () => {
  it("marks D1's transient failures retryable and keeps the D1 error as cause", () => {
    for (const message of [
      "D1_ERROR: Network connection lost.",
      "D1 DB is overloaded. Requests queued for too long.",
      "D1_ERROR: Internal error in D1 DB storage caused object to be reset.",
      "D1_ERROR: Cannot resolve D1 DB due to transient issue on remote node.",
      "D1_ERROR: storage operation exceeded timeout which caused object to be reset.",
    ]) {
      const cause = new Error(message);
      const error = toStoreError(cause, "claiming messages");
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).retryable).toBe(true);
      expect(error.cause).toBe(cause);
      expect(error.message).toContain("claiming messages");
    }
    expect(toStoreError(new Error("D1 DB is overloaded."), "x").code).toBe("STORE_BUSY");
  });

  it("marks everything else permanent, with a hint for a missing table", () => {
    const missing = toStoreError(
      new Error("D1_ERROR: no such table: outbox_messages: SQLITE_ERROR"),
      "reading stats",
    );
    expect((missing as StoreError).retryable).toBe(false);
    expect(missing.code).toBe("STORE_ERROR");
    expect(missing.message).toMatch(/store\.migrate\(\)/);
    expect(toStoreError(new Error("D1_ERROR: boom"), "reading stats").message).toBe(
      "D1 failed while reading stats: D1_ERROR: boom",
    );
    expect((toStoreError("a string", "x") as StoreError).retryable).toBe(false);
    const own = new ValidationError("bad");
    expect(toStoreError(own, "x")).toBe(own);
  });

  it("recognises SQLITE_TOOBIG, raw or wrapped", () => {
    const raw = new Error("D1_ERROR: string or blob too big: SQLITE_TOOBIG");
    expect(isTooBig(raw)).toBe(true);
    expect(isTooBig(toStoreError(raw, "claiming"))).toBe(true);
    expect(isTooBig(new Error("D1_ERROR: no such table: x"))).toBe(false);
    expect(isTooBig(new OutboxError("STORE_ERROR", "too big", { cause: "string" }))).toBe(false);
  });
});

describe("D1 limits", () => {
  it("splits into groups of at most the size, in order, none when empty", () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([], 100)).toEqual([]);
    expect(chunks([1, 2], 2)).toEqual([[1, 2]]);
  });

  it("carries at most 1 MB of values in a claim's read", () => {
    expect(inlinedValueBytes(1)).toBe(1_000_000);
    expect(inlinedValueBytes(10)).toBe(100_000);
    expect(inlinedValueBytes(3) * 3).toBeLessThanOrEqual(1_000_000);
  });
});
