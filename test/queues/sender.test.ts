/**
 * `queueSender`'s own logic, in process: option checks, the body format and its reader, the
 * split to limits, aborts. The binding here is a recording object (the Workers runtime cannot
 * run in-process); test/queues/miniflare.test.ts runs the same sender against a real queue.
 */
import { describe, expect, it } from "vitest";
import { jsonBytes, jsonTextBytes, queuedBody } from "../../adapters/queues/body.ts";
import { splitToLimits } from "../../adapters/queues/sender.ts";
import {
  QUEUE_LIMITS,
  type QueueProducer,
  type QueueSendRequest,
  queueSender,
  readQueuedMessage,
} from "../../adapters/queues.ts";
import { SendStatus, ValidationError } from "../../mod.ts";
import { testMessage } from "../support/http-receiver.ts";

function recordingQueue(fail?: (call: number) => unknown): QueueProducer & { calls: QueueSendRequest[][] } {
  const calls: QueueSendRequest[][] = [];
  return {
    calls,
    async send() {
      throw new Error("queueSender must use sendBatch");
    },
    async sendBatch(messages) {
      const list = [...messages];
      calls.push(list);
      const error = fail?.(calls.length);
      if (error !== undefined) throw error;
    },
  };
}

const signal = new AbortController().signal;

describe("queueSender options", () => {
  it.each([
    ["no options", undefined],
    ["no queue", {}],
    ["a D1 binding", { queue: { prepare() {}, batch() {} } }],
    ["a queue with send only", { queue: { send() {} } }],
    ["a string", { queue: "ORDERS_QUEUE" }],
    ["limits not an object", { queue: recordingQueue(), limits: 100 }],
    ["batchMessages 0", { queue: recordingQueue(), limits: { batchMessages: 0 } }],
    ["batchMessages 1.5", { queue: recordingQueue(), limits: { batchMessages: 1.5 } }],
    ["batchBytes NaN", { queue: recordingQueue(), limits: { batchBytes: Number.NaN } }],
    ["messageBytes a string", { queue: recordingQueue(), limits: { messageBytes: "128000" } }],
    [
      "messageBytes over batchBytes",
      { queue: recordingQueue(), limits: { messageBytes: 5000, batchBytes: 4000 } },
    ],
  ])("refuses %s with a ValidationError", (_, options) => {
    expect(() => queueSender(options as never)).toThrow(ValidationError);
  });

  it("names what is wrong", () => {
    expect(() => queueSender({ queue: { send() {} } as never })).toThrow(
      /queue must be a Cloudflare Queue producer binding \(with send and sendBatch methods\), got an object/,
    );
    expect(() => queueSender({ queue: recordingQueue(), limits: { batchMessages: 0 } })).toThrow(
      "limits.batchMessages must be an integer >= 1, got 0",
    );
  });

  it("uses Cloudflare's documented limits by default", () => {
    expect(QUEUE_LIMITS).toEqual({ batchMessages: 100, batchBytes: 256_000, messageBytes: 128_000 });
  });
});

describe("queueSender sends", () => {
  it("one json message per outbox message, readable with readQueuedMessage", async () => {
    const queue = recordingQueue();
    const bytes = new Uint8Array([0, 0xff, 0xfe, 0x80, 10]);
    const messages = [
      testMessage("1", "plain ✓", { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }),
      testMessage("2", bytes),
    ];
    await queueSender({ queue }).send(messages, signal);
    expect(messages.map((m) => m.status)).toEqual([SendStatus.Sent, SendStatus.Sent]);
    expect(queue.calls).toHaveLength(1);
    const [text, binary] = queue.calls[0]!;
    expect(text).toMatchObject({
      contentType: "json",
      body: { id: "1", key: "k1", value: "plain ✓", encoding: "utf8" },
    });
    expect(binary).toMatchObject({
      contentType: "json",
      body: { id: "2", encoding: "base64", value: "AP/+gAo=" },
    });
    // Through JSON, as the runtime carries it.
    const read = readQueuedMessage(JSON.parse(JSON.stringify(binary!.body)));
    expect([...read.value]).toEqual([...bytes]);
    expect(readQueuedMessage(JSON.parse(JSON.stringify(text!.body))).text()).toBe("plain ✓");
    expect(readQueuedMessage(text!.body).headers.traceparent).toMatch(/^00-4bf9/);
    expect(readQueuedMessage(text!.body).timestamp).toEqual(messages[0]!.timestamp);
  });

  it("fails every message of a call that throws, with the error, and sends the other calls' messages", async () => {
    const queue = recordingQueue((call) =>
      call === 2 ? new Error("Queue sendBatch failed: internal error") : undefined,
    );
    const messages = Array.from({ length: 5 }, (_, i) => testMessage(String(i)));
    await queueSender({ queue, limits: { batchMessages: 2 } }).send(messages, signal);
    expect(messages.map((m) => m.status)).toEqual([1, 1, 2, 2, 1]);
    expect(messages[2]!.error).toBe(
      "the queue refused message 2: Error: Queue sendBatch failed: internal error",
    );
    expect(messages[2]!.retryAfter).toBeUndefined();
  });

  it("waits a second after Too Many Requests", async () => {
    const queue = recordingQueue(() => new Error("Queue sendBatch failed: Too Many Requests"));
    const [message] = [testMessage("1")];
    await queueSender({ queue }).send([message!], signal);
    expect(message!.status).toBe(SendStatus.Fail);
    expect(message!.retryAfter).toBe(1000);
  });

  it("splits a call refused as over a limit into halves, down to the message refused", async () => {
    const queue = recordingQueue((call) => {
      const sent = queue.calls[call - 1]!;
      if (sent.some((r) => (r.body as { key: string }).key === "k2"))
        return new Error("message exceeds limit");
    });
    const messages = Array.from({ length: 4 }, (_, i) => testMessage(String(i)));
    await queueSender({ queue }).send(messages, signal);
    expect(messages.map((m) => m.status)).toEqual([1, 1, 2, 1]);
    expect(queue.calls.map((c) => c.length)).toEqual([4, 2, 2, 1, 1]);
  });

  it("kills a message over the per-message limit without sending it", async () => {
    const queue = recordingQueue();
    const messages = [testMessage("1", "a"), testMessage("2", "b".repeat(2000)), testMessage("3", "c")];
    await queueSender({ queue, limits: { messageBytes: 1000 } }).send(messages, signal);
    expect(messages.map((m) => m.status)).toEqual([1, 3, 1]);
    expect(messages[1]!.error).toMatch(
      /^message 2 is \d+ bytes as a queue message .* over the limit of 1000 per message/,
    );
    expect(queue.calls.flat().map((r) => (r.body as { id: string }).id)).toEqual(["1", "3"]);
  });

  it("fails, without a call, what is left once the signal aborts", async () => {
    const controller = new AbortController();
    const queue = recordingQueue(() => {
      controller.abort();
    });
    const messages = Array.from({ length: 3 }, (_, i) => testMessage(String(i)));
    await queueSender({ queue, limits: { batchMessages: 1 } }).send(messages, controller.signal);
    expect(messages.map((m) => m.status)).toEqual([1, 2, 2]);
    expect(queue.calls).toHaveLength(1);
    expect(messages[1]!.error).toMatch(/aborted before the handoff/);
  });
});

describe("queueSender and the abort signal", () => {
  it("starts no halving call once the signal has aborted: the rest fail, never handed over", async () => {
    const controller = new AbortController();
    // Every call of more than one message is refused as over a limit, as workerd does when one
    // message is larger than it may be; the relay's sendTimeout fires during the first call.
    const queue = recordingQueue((call) => {
      if (call === 1) controller.abort();
      return queue.calls[call - 1]!.length > 1 ? new Error("sendBatch() exceeds limit") : undefined;
    });
    const messages = Array.from({ length: 8 }, (_, i) => testMessage(String(i)));
    await queueSender({ queue }).send(messages, controller.signal);
    expect(queue.calls.map((c) => c.length)).toEqual([8]);
    expect(messages.map((m) => m.status)).toEqual(Array(8).fill(SendStatus.Fail));
    expect(messages[0]!.error).toBe("aborted before the handoff to the queue (message 0)");
  });

  it("stops between the halves of a split when the signal aborts during one", async () => {
    const controller = new AbortController();
    const queue = recordingQueue((call) => {
      const sent = queue.calls[call - 1]!;
      if (call === 3) controller.abort(); // during the first half's first quarter
      return sent.length > 2 ? new Error("sendBatch() exceeds limit") : undefined;
    });
    const messages = Array.from({ length: 8 }, (_, i) => testMessage(String(i)));
    await queueSender({ queue }).send(messages, controller.signal);
    expect(queue.calls.map((c) => c.length)).toEqual([8, 4, 2]);
    expect(messages.map((m) => m.status)).toEqual([1, 1, 2, 2, 2, 2, 2, 2]);
    expect(messages.slice(2).every((m) => m.error?.startsWith("aborted before the handoff"))).toBe(true);
  });
});

describe("the value's encoding", () => {
  const body = (value: Uint8Array<ArrayBuffer> | string) => queuedBody(testMessage("1", value));

  it("counts the JSON text of UTF-8 bytes exactly as JSON.stringify writes it", () => {
    const encoder = new TextEncoder();
    const samples = [
      "",
      "plain",
      '"quoted" \\ back',
      "\b\t\n\f\r\u0000\u0001\u001f\u007f",
      "漢字 ✓ \u{1F389} naïve \u2028\u2029",
      Array.from({ length: 128 }, (_, i) => String.fromCharCode(i)).join(""),
    ];
    for (let seed = 1; seed <= 200; seed++) {
      let text = "";
      for (let i = 0; i < 40; i++)
        text += String.fromCodePoint(((seed * 7919 + i * 104_729) % 0x2000) + (i % 3) * 0x30);
      samples.push(text);
    }
    for (const text of samples) {
      expect(jsonTextBytes(encoder.encode(text)), JSON.stringify(text)).toBe(
        encoder.encode(JSON.stringify(text)).byteLength - 2,
      );
    }
  });

  it("sends text when its JSON is no larger than base64, and base64 when it is", () => {
    expect(body("order 42 ✓")).toMatchObject({ encoding: "utf8", value: "order 42 ✓" });
    expect(body('{"order":42,"city":"Zürich","paid":true}')).toMatchObject({ encoding: "utf8" });
    // Short JSON is mostly quotes, each 2 bytes as JSON text: base64 is smaller.
    expect(body('{"a":"b"}')).toMatchObject({ encoding: "base64" });
    // NULs are 6 bytes each as JSON text, 4/3 as base64.
    expect(body("\u0000".repeat(30))).toMatchObject({ encoding: "base64", value: "A".repeat(40) });
    // Protobuf-like fields, all bytes under 0x80: valid UTF-8, smaller as base64.
    const protobuf = new Uint8Array(9000).map(
      (_, i) => [0x08, 0x16, 0x10, 0x02, 0x1a, 0x03, 0x61, 0x62, 0x63][i % 9]!,
    );
    expect(body(protobuf).encoding).toBe("base64");
    // A few newlines in text cost less than base64's third.
    expect(body("line\n".repeat(100)).encoding).toBe("utf8");
  });

  it("sends a 25 KB value of control characters that text would blow past 128 KB, and reads it back", async () => {
    const queue = recordingQueue();
    const nul = testMessage("1", "\u0000".repeat(25_000));
    const control = testMessage("2", "\u0001\u001f".repeat(15_000));
    await queueSender({ queue }).send([nul, control], signal);
    expect([nul.status, control.status]).toEqual([SendStatus.Sent, SendStatus.Sent]);
    const [first, second] = queue.calls[0]!;
    expect(jsonBytes(first!.body as never)).toBeLessThan(40_000);
    expect(readQueuedMessage(JSON.parse(JSON.stringify(first!.body))).text()).toBe("\u0000".repeat(25_000));
    expect([...readQueuedMessage(JSON.parse(JSON.stringify(second!.body))).value]).toEqual([
      ...control.value,
    ]);
  });

  it("kills a message only when no encoding fits", async () => {
    const queue = recordingQueue();
    const nul = testMessage("1", "\u0000".repeat(99_000)); // 132,000 bytes as base64
    await queueSender({ queue }).send([nul], signal);
    expect(nul.status).toBe(SendStatus.Dead);
    expect(queue.calls).toHaveLength(0);
  });
});

describe("splitToLimits", () => {
  const sized = (...bytes: number[]) => bytes.map((b) => ({ bytes: b }));
  it("keeps order and respects both the count and the byte limit", () => {
    expect(splitToLimits(sized(1, 1, 1, 1, 1), 2, 100).map((b) => b.length)).toEqual([2, 2, 1]);
    expect(splitToLimits(sized(60, 50, 10, 90), 10, 100).map((b) => b.map((e) => e.bytes))).toEqual([
      [60],
      [50, 10],
      [90],
    ]);
    expect(splitToLimits(sized(100, 100), 10, 100)).toHaveLength(2);
    expect(splitToLimits([], 10, 100)).toEqual([]);
  });
});

describe("readQueuedMessage", () => {
  const good = {
    id: "1",
    key: "k",
    headers: {},
    timestamp: new Date(0).toISOString(),
    value: "v",
    encoding: "utf8",
  };
  const without = (name: keyof typeof good) =>
    Object.fromEntries(Object.entries(good).filter(([k]) => k !== name));
  class WithGetter {
    get id() {
      return "inherited";
    }
  }
  it.each([
    ["null", null],
    ["a string", "hello"],
    ["an array", []],
    ["a Map", new Map(Object.entries(good))],
    ["no id", { ...good, id: undefined }],
    ["an empty id", { ...good, id: "" }],
    ["an empty key", { ...good, key: "" }],
    ["a numeric id", { ...good, id: 1 }],
    ["an id from a prototype getter", Object.assign(new WithGetter(), without("id"))],
    ["an inherited id", Object.assign(Object.create({ id: "1" }), without("id"))],
    ["an own getter for id", Object.defineProperty({ ...good }, "id", { get: () => "1", enumerable: true })],
    ["a bad timestamp", { ...good, timestamp: "yesterday" }],
    ["a timestamp of 0", { ...good, timestamp: "0" }],
    ["a timestamp of 12", { ...good, timestamp: "12" }],
    ["a date in words", { ...good, timestamp: "Tue Mar 1 2022" }],
    ["a date without time", { ...good, timestamp: "2026-01-01" }],
    ["a timestamp without milliseconds", { ...good, timestamp: "2026-01-01T00:00:00Z" }],
    ["a timestamp with an offset", { ...good, timestamp: "2026-01-01T00:00:00.000+01:00" }],
    ["a day no calendar has", { ...good, timestamp: "2026-02-30T00:00:00.000Z" }],
    ["headers not an object", { ...good, headers: "x" }],
    ["headers an array", { ...good, headers: [] }],
    ["headers a Map", { ...good, headers: new Map([["a", "1"]]) }],
    ["headers a Date", { ...good, headers: new Date() }],
    ["a header not a string", { ...good, headers: { a: 1 } }],
    [
      "a header behind a getter",
      { ...good, headers: Object.defineProperty({}, "a", { get: () => "1", enumerable: true }) },
    ],
    ["an unknown encoding", { ...good, encoding: "hex" }],
    ["an inherited encoding", Object.assign(Object.create({ encoding: "utf8" }), without("encoding"))],
    ["bad base64", { ...good, encoding: "base64", value: "not base64!" }],
    ["base64 with spaces", { ...good, encoding: "base64", value: " aG k " }],
    ["base64 without padding", { ...good, encoding: "base64", value: "aGk" }],
    ["base64 with bits after the last byte", { ...good, encoding: "base64", value: "aGl=" }],
    ["base64url", { ...good, encoding: "base64", value: "__8=" }],
    ["text with a lone surrogate", { ...good, value: "a\ud800b" }],
  ])("refuses %s with a ValidationError (INVALID_MESSAGE)", (_, body) => {
    try {
      readQueuedMessage(body);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).code).toBe("INVALID_MESSAGE");
      expect((error as Error).message).toMatch(/^not a message queued by queueSender: /);
    }
  });

  it("reads text, bytes and JSON", () => {
    const message = readQueuedMessage({ ...good, value: '{"a":1}' });
    expect(message.json()).toEqual({ a: 1 });
    expect(message.timestamp.getTime()).toBe(0);
    expect(readQueuedMessage({ ...good, encoding: "base64", value: "/w==" }).text()).toBe("\uFFFD");
    expect([...readQueuedMessage({ ...good, encoding: "base64", value: "" }).value]).toEqual([]);
    expect([...readQueuedMessage({ ...good, encoding: "base64", value: "aGk=" }).value]).toEqual([104, 105]);
  });

  it("reads what queueSender writes for any timestamp, the extended years included", () => {
    for (const time of [0, Date.UTC(2026, 1, 28, 23, 59, 59, 999), -62_198_755_200_000, 8.64e15, -8.64e15]) {
      const written = queuedBody(testMessage("1", "v"));
      written.timestamp = new Date(time).toISOString();
      expect(readQueuedMessage(JSON.parse(JSON.stringify(written))).timestamp.getTime()).toBe(time);
    }
  });

  it("keeps text() and value the same text, and header names such as __proto__ as plain keys", () => {
    const message = readQueuedMessage({ ...good, value: "naïve 🎉" });
    expect(new TextDecoder().decode(message.value)).toBe(message.text());
    const json = (headers: string) =>
      JSON.parse(
        `{"id":"1","key":"k","headers":${headers},"timestamp":"2026-01-01T00:00:00.000Z","value":"a","encoding":"utf8"}`,
      );
    const headers = readQueuedMessage(json('{"__proto__":"x","traceparent":"y"}')).headers;
    expect(Object.keys(headers)).toEqual(["__proto__", "traceparent"]);
    expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
    expect(() => readQueuedMessage(json('{"__proto__":{"polluted":"1"}}'))).toThrow(
      /header "__proto__" is not a string/,
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
