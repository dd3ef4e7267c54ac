/**
 * What callers match on in the errors edge-outbox throws or reports: each class's `name` (what a
 * log line or `String(error)` shows), `code`, `instanceof` across the hierarchy, the fields each
 * carries, and texts that never throw, whatever value they describe.
 */
import { describe, expect, it } from "vitest";
import {
  CallbackError,
  describeValue,
  LeaseLostError,
  OutboxError,
  SendError,
  SendTimeoutError,
  StoreError,
  ValidationError,
} from "../mod.ts";

describe("error classes", () => {
  it("each has its own name, code and place in the hierarchy", () => {
    const cases: Array<[Error, string, string, Array<abstract new (...args: never[]) => unknown>]> = [
      [new OutboxError("STORE_ERROR", "x"), "OutboxError", "STORE_ERROR", [OutboxError]],
      [new ValidationError("x"), "ValidationError", "INVALID_OPTIONS", [OutboxError, ValidationError]],
      [new StoreError("x", { retryable: false }), "StoreError", "STORE_ERROR", [OutboxError, StoreError]],
      [new LeaseLostError(["a"]), "LeaseLostError", "LEASE_LOST", [OutboxError, LeaseLostError]],
      [new SendError("x"), "SendError", "SEND_FAILED", [OutboxError, SendError]],
      [
        new SendTimeoutError(50),
        "SendTimeoutError",
        "SEND_TIMEOUT",
        [OutboxError, SendError, SendTimeoutError],
      ],
      [
        new CallbackError("span.end", new Error("x")),
        "CallbackError",
        "CALLBACK_FAILED",
        [OutboxError, CallbackError],
      ],
    ];
    for (const [error, name, code, types] of cases) {
      expect(error.name).toBe(name);
      expect((error as OutboxError).code).toBe(code);
      expect(String(error).startsWith(`${name}: `)).toBe(true);
      expect(error).toBeInstanceOf(Error);
      for (const type of types) expect(error).toBeInstanceOf(type);
    }
    expect(new SendError("x")).not.toBeInstanceOf(SendTimeoutError);
    expect(new ValidationError("x")).not.toBeInstanceOf(StoreError);
  });

  it("ValidationError and StoreError take their code from the options or from retryable", () => {
    expect(new ValidationError("x", { code: "INVALID_MESSAGE" }).code).toBe("INVALID_MESSAGE");
    const busy = new StoreError("locked", { retryable: true });
    expect([busy.code, busy.retryable]).toEqual(["STORE_BUSY", true]);
    const forced = new StoreError("x", { retryable: true, code: "STORE_ERROR" });
    expect([forced.code, forced.retryable]).toEqual(["STORE_ERROR", true]);
  });

  it("SendError built with a message alone has no status, no message id and no cause", () => {
    const error = new SendError("receiver refused");
    expect(error.message).toBe("receiver refused");
    expect(error.status).toBeUndefined();
    expect(error.messageId).toBeUndefined();
    expect(error.cause).toBeUndefined();
    const full = new SendError("429", {
      status: 429,
      messageId: "msg_1",
      cause: "busy",
      code: "MALFORMED_SEND_RESULT",
    });
    expect([full.status, full.messageId, full.cause, full.code]).toEqual([
      429,
      "msg_1",
      "busy",
      "MALFORMED_SEND_RESULT",
    ]);
  });

  it("SendTimeoutError names the timeout and keeps the cause", () => {
    const cause = new Error("aborted");
    const error = new SendTimeoutError(2500, { cause });
    expect(error.message).toBe("sender did not finish within sendTimeout (2500 ms)");
    expect(error.cause).toBe(cause);
  });

  it("CallbackError says what threw and why, and keeps the thrown value as its cause", () => {
    const cause = new Error("meter exploded");
    const error = new CallbackError("meter.createCounter", cause);
    expect(error.message).toBe("meter.createCounter threw: meter exploded");
    expect(error.callback).toBe("meter.createCounter");
    expect(error.cause).toBe(cause);
    expect(new CallbackError("span.end", 42).message).toBe("span.end threw: 42");
  });
});

describe("LeaseLostError", () => {
  it("lists every id of a group of five or fewer", () => {
    const error = new LeaseLostError(["1", "2", "3", "4", "5"], 2);
    expect(error.message).toBe(
      "lease lost before the outcome of 2 of 5 message(s) was recorded (ids 1, 2, 3, 4, 5); their new owner decides",
    );
    expect(error.messageIds).toEqual(["1", "2", "3", "4", "5"]);
    expect(new LeaseLostError(["7"]).message).toBe(
      "lease lost before the outcome of 1 of 1 message(s) was recorded (ids 7); their new owner decides",
    );
  });

  it("lists the first five ids of a larger group and says there are more", () => {
    const ids = Array.from({ length: 8 }, (_, i) => `msg_${i + 1}`);
    const error = new LeaseLostError(ids);
    expect(error.message).toBe(
      "lease lost before the outcome of 8 of 8 message(s) was recorded (ids msg_1, msg_2, msg_3, msg_4, msg_5, ...); their new owner decides",
    );
    expect(error.messageIds).toEqual(ids);
  });
});

describe("describeValue", () => {
  it("describes errors by their message, strings as they are and other values as String() does", () => {
    expect(describeValue(new TypeError("bad"))).toBe("bad");
    expect(describeValue("plain")).toBe("plain");
    expect(describeValue(undefined)).toBe("undefined");
    expect(describeValue(null)).toBe("null");
    expect(describeValue({ toString: () => "custom" })).toBe("custom");
  });

  it("falls back to the object tag when String() throws", () => {
    const hostile = {
      toString() {
        throw new Error("no");
      },
    };
    expect(describeValue(hostile)).toBe("[object Object]");
    expect(describeValue(Object.create(null))).toBe("[object Object]");
  });

  it("gives a fixed text when even the object tag cannot be read", () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error("every read throws");
        },
      },
    );
    expect(describeValue(hostile)).toBe("a value that cannot be described");
    expect(new CallbackError("tracer.startSpan", hostile).message).toBe(
      "tracer.startSpan threw: a value that cannot be described",
    );
  });

  it("classifies a value whose prototype cannot be read without throwing", () => {
    const hostile = new Proxy(
      {},
      {
        getPrototypeOf() {
          throw new Error("no prototype");
        },
      },
    );
    expect(describeValue(hostile)).toBe("[object Object]");
  });
});
