/**
 * A message's validation limits and refusal texts (inclusive bounds, `null` named as such, long
 * strings cut in the text), and the marks a sender makes: called without options, with a
 * `retryAfter` that is not a wait, or after the relay has sealed the message.
 */
import { describe, expect, it } from "vitest";
import { createMessage, type MessageRecord, prepareMessage, SendStatus, ValidationError } from "../mod.ts";
import { sealMessage } from "../src/message.ts";

function refusal(input: unknown, maxMessageBytes = 16): ValidationError {
  try {
    prepareMessage(input, { maxMessageBytes });
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe("INVALID_MESSAGE");
    return error as ValidationError;
  }
  throw new Error("expected a ValidationError");
}

const record = (): MessageRecord => ({
  id: "msg_0123456789abcdef_1",
  key: "k",
  value: new TextEncoder().encode("v"),
  headers: {},
  timestamp: new Date(0),
  retries: 0,
});

describe("prepareMessage limits are inclusive", () => {
  it("accepts a key of exactly 1024 characters and refuses 1025", () => {
    expect(prepareMessage({ key: "k".repeat(1024), value: "" }, { maxMessageBytes: 16 }).key).toHaveLength(
      1024,
    );
    expect(refusal({ key: "k".repeat(1025), value: "" }).message).toBe(
      "message.key must be at most 1024 characters, got 1025",
    );
  });

  it("accepts a value of exactly maxMessageBytes and refuses one byte more", () => {
    expect(
      prepareMessage({ key: "k", value: "x".repeat(16) }, { maxMessageBytes: 16 }).value.byteLength,
    ).toBe(16);
    expect(
      prepareMessage({ key: "k", value: new Uint8Array(16) }, { maxMessageBytes: 16 }).value.byteLength,
    ).toBe(16);
    expect(refusal({ key: "k", value: new Uint8Array(17) }).message).toBe(
      "message.value must be at most 16 bytes (maxMessageBytes), got 17",
    );
  });
});

describe("prepareMessage refusal texts", () => {
  it("names null as null", () => {
    expect(refusal(null).message).toBe("message must be an object { key, value, headers? }, got null");
    expect(refusal({ key: null, value: "x" }).message).toBe(
      "message.key must be a non-empty string, got null",
    );
    expect(refusal({ key: "k", value: null }).message).toBe(
      "message.value must be a Uint8Array or a string, got null",
    );
    expect(refusal({ key: "k", value: "x", headers: { a: null } }).message).toBe(
      'message.headers["a"] must be a string, got null',
    );
  });

  it("refuses null headers with a ValidationError, not a TypeError", () => {
    expect(refusal({ key: "k", value: "x", headers: null }).message).toBe(
      "message.headers must be an object of string values, got null",
    );
    expect(refusal({ key: "k", value: "x", headers: ["a"] }).message).toMatch(/got an array$/);
  });

  it("quotes a string in full up to 40 characters and cuts a longer one", () => {
    const forty = "h".repeat(40);
    expect(refusal({ key: "k", value: "x", headers: forty }).message).toBe(
      `message.headers must be an object of string values, got "${forty}"`,
    );
    expect(refusal({ key: "k", value: "x", headers: `${forty}and more` }).message).toBe(
      `message.headers must be an object of string values, got "${forty}..."`,
    );
    expect(refusal(`${"m".repeat(41)}`).message).toBe(
      `message must be an object { key, value, headers? }, got "${"m".repeat(40)}..."`,
    );
  });
});

describe("a sender's marks", () => {
  it("markAsFailed and markAsDead without options record no wait and no error", () => {
    const failed = createMessage(record());
    failed.markAsFailed();
    expect([failed.status, failed.retryAfter, failed.error]).toEqual([SendStatus.Fail, undefined, undefined]);
    const dead = createMessage(record());
    dead.markAsDead();
    expect([dead.status, dead.error]).toEqual([SendStatus.Dead, undefined]);
    const empty = createMessage(record());
    empty.markAsFailed({});
    expect([empty.retryAfter, empty.error]).toEqual([undefined, undefined]);
  });

  it("keeps a retryAfter that is a wait (0 and Infinity included) and drops any other", () => {
    const cases: Array<[unknown, number | undefined]> = [
      [0, 0],
      [1500, 1500],
      [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY],
      [-1, undefined],
      [Number.NaN, undefined],
      ["5000", undefined],
      [null, undefined],
    ];
    for (const [retryAfter, kept] of cases) {
      const message = createMessage(record());
      message.markAsFailed({ retryAfter: retryAfter as number });
      expect(message.retryAfter).toBe(kept);
    }
  });

  it("keeps an error string as is and describes any other value", () => {
    const message = createMessage(record());
    message.markAsFailed({ error: "HTTP 503" });
    expect(message.error).toBe("HTTP 503");
    message.markAsDead({ error: new Error("gone") as unknown as string });
    expect(message.error).toBe("gone");
    message.markAsFailed({ error: 404 as unknown as string });
    expect(message.error).toBe("404");
  });

  it("attempted is true unless the last mark was markAsFailed({ attempted: false })", () => {
    expect(createMessage(record()).attempted).toBe(true);
    const skipped = createMessage(record());
    skipped.markAsFailed({ attempted: false });
    expect(skipped.attempted).toBe(false);
    // A sender that changes its mind (the breaker closed, the retry went out) marks again.
    skipped.markAsSent();
    expect([skipped.status, skipped.attempted]).toEqual([SendStatus.Sent, true]);
    const killed = createMessage(record());
    killed.markAsFailed({ attempted: false });
    killed.markAsDead({ error: "gone" });
    expect([killed.status, killed.attempted]).toEqual([SendStatus.Dead, true]);
    const retried = createMessage(record());
    retried.markAsFailed({ attempted: false });
    retried.markAsFailed({ error: "HTTP 503" });
    expect(retried.attempted).toBe(true);
  });

  it("a sealed message ignores every later mark", () => {
    const message = createMessage(record());
    message.markAsFailed({ retryAfter: 100, error: "first" });
    sealMessage(message);
    message.markAsSent();
    message.markAsDead({ error: "late" });
    message.markAsFailed({ retryAfter: 5, error: "late" });
    expect([message.status, message.retryAfter, message.error]).toEqual([SendStatus.Fail, 100, "first"]);

    const untouched = createMessage(record());
    sealMessage(untouched);
    untouched.markAsDead({ error: "late" });
    expect([untouched.status, untouched.error]).toEqual([SendStatus.None, undefined]);
  });

  it("sealing a message a custom store built itself (not with createMessage) is harmless", () => {
    const own = { ...record(), status: SendStatus.None } as unknown as Parameters<typeof sealMessage>[0];
    expect(() => sealMessage(own)).not.toThrow();
  });
});
