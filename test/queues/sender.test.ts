/**
 * `queueSender`'s own logic, in process: option checks, the body format and its reader, the
 * split to limits, aborts. The binding here is a recording object (the Workers runtime cannot
 * run in-process); test/queues/miniflare.test.ts runs the same sender against a real queue.
 */
import { describe, expect, it } from "vitest";
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
  it.each([
    ["null", null],
    ["a string", "hello"],
    ["an array", []],
    ["no id", { ...good, id: undefined }],
    ["a numeric id", { ...good, id: 1 }],
    ["a bad timestamp", { ...good, timestamp: "yesterday" }],
    ["headers not an object", { ...good, headers: "x" }],
    ["a header not a string", { ...good, headers: { a: 1 } }],
    ["an unknown encoding", { ...good, encoding: "hex" }],
    ["bad base64", { ...good, encoding: "base64", value: "not base64!" }],
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
  });
});
