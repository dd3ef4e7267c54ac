/**
 * Telemetry of the streaming send window, with the real OpenTelemetry SDK: one `send outbox`
 * span per claim (from the claim until its last message is recorded), under the tick's span,
 * with the claim's counts; the message counter and the batch-size histogram add up to exactly
 * what `tick()` returned; a store error met recording a claim ends that claim's span with it.
 */

import { SpanStatusCode } from "@opentelemetry/api";
import type { Histogram } from "@opentelemetry/sdk-metrics";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../../adapters/memory.ts";
import { type Claim, type ClaimOptions, type Message, type Sender, StoreError } from "../../mod.ts";
import { findPoint, instrumented, pointValue, useCleanups } from "./support.ts";

useCleanups();

/**
 * One message per send; every fifth fails (retried only after a minute, so never again within
 * the tick, however slow the machine), the rest are delivered after a short wait.
 */
function windowedSender(window: number): Sender {
  return {
    window,
    async send(messages: Message[]) {
      for (const message of messages) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        if (Number(message.text()) % 5 === 4) message.markAsFailed({ error: "HTTP 503", retryAfter: 60_000 });
        else message.markAsSent();
      }
      return messages;
    },
  };
}

describe("the send window's telemetry", () => {
  it("a span per claim under the tick's span; counters and spans add up to the tick's counts", async () => {
    const store = new MemoryStore();
    const { rig, outbox } = instrumented(store, windowedSender(4), { batchSize: 10 });
    await store.transaction(async (tx) => {
      for (let i = 0; i < 20; i++) await outbox.addMessage(tx, { key: `k${i}`, value: String(i) });
    });
    const result = await outbox.tick();
    expect(result).toMatchObject({ sent: 16, failed: 4, dead: 0 });

    const ticks = rig.spans().filter((s) => s.name === "relay outbox");
    const batches = rig.spans().filter((s) => s.name === "send outbox");
    expect(ticks).toHaveLength(1);
    expect(batches).toHaveLength(result.batches);
    for (const span of batches) {
      expect(span.parentSpanContext?.spanId).toBe(ticks[0]!.spanContext().spanId);
      // A claim takes up to batchSize into the window's queue; the window bounds what is in flight.
      expect(span.attributes["messaging.batch.message_count"]).toBeLessThanOrEqual(10);
    }
    const sum = (name: string) => batches.reduce((n, s) => n + Number(s.attributes[name]), 0);
    expect(sum("outbox.sent")).toBe(16);
    expect(sum("outbox.failed")).toBe(4);
    expect(sum("messaging.batch.message_count")).toBe(20);

    const metrics = await rig.collect();
    const messages = metrics.get("messaging.client.sent.messages");
    expect(pointValue(messages, { "outbox.outcome": "sent" })).toBe(16);
    expect(pointValue(messages, { "outbox.outcome": "failed" })).toBe(4);
    expect(pointValue(metrics.get("outbox.batch.size"))).toBe(result.batches);
    // Each claim's duration, from its claim to its last record, in seconds: a few ms here.
    const duration = findPoint(metrics.get("messaging.client.operation.duration"), {})!.value as Histogram;
    expect(duration.count).toBe(result.batches);
    expect(duration.min).toBeGreaterThanOrEqual(0);
    expect(duration.max).toBeLessThan(1);
  });

  it("an empty store: the window's tick claims once and records no batch", async () => {
    const store = new MemoryStore();
    const { rig, outbox } = instrumented(store, windowedSender(4), { batchSize: 10 });
    expect(await outbox.tick()).toMatchObject({ batches: 0, sent: 0, failed: 0, dead: 0 });
    expect(rig.spans().filter((s) => s.name === "send outbox")).toEqual([]);
    expect(findPoint((await rig.collect()).get("outbox.batch.size"), {})).toBeUndefined();
  });

  it("dead messages count as dead in the tick's result and the counter", async () => {
    const store = new MemoryStore();
    const killing: Sender = {
      window: 2,
      async send(messages: Message[]) {
        for (const message of messages) {
          if (message.text() === "m1") message.markAsDead({ error: "HTTP 410" });
          else message.markAsSent();
        }
        return messages;
      },
    };
    const { rig, outbox } = instrumented(store, killing, { batchSize: 3 });
    await store.transaction(async (tx) => {
      for (let i = 0; i < 3; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `m${i}` });
    });
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 2, failed: 0, dead: 1 });
    const sent = (await rig.collect()).get("messaging.client.sent.messages");
    expect(pointValue(sent, { "outbox.outcome": "dead" })).toBe(1);
    expect(pointValue(sent, { "outbox.outcome": "sent" })).toBe(2);
  });

  it("a claim whose send timed out says so on its span and duration (a timeout, not a sender's verdict)", async () => {
    const store = new MemoryStore();
    const hanging: Sender = {
      window: 2,
      async send(messages: Message[]) {
        // m0 hangs past sendTimeout; m1 is delivered.
        if (messages[0]!.text() === "m0") await new Promise(() => {});
        for (const message of messages) message.markAsSent();
        return messages;
      },
    };
    const { rig, outbox } = instrumented(store, hanging, {
      batchSize: 2,
      sendTimeout: 50,
      backoff: { initialDelay: 60_000, maxDelay: 60_000 },
    });
    await store.transaction(async (tx) => {
      for (let i = 0; i < 2; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `m${i}` });
    });
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 1, failed: 1 });
    const [batch] = rig.spans().filter((s) => s.name === "send outbox");
    expect(batch?.attributes).toMatchObject({
      "error.type": "SEND_TIMEOUT",
      "outbox.sent": 1,
      "outbox.failed": 1,
    });
    const metrics = await rig.collect();
    const duration = metrics.get("messaging.client.operation.duration");
    expect(pointValue(duration, { "error.type": "SEND_TIMEOUT" })).toBe(1);
    expect(
      pointValue(metrics.get("messaging.client.sent.messages"), {
        "outbox.outcome": "failed",
        "error.type": "SEND_TIMEOUT",
      }),
    ).toBe(1);
  });

  it.each([
    ["with recordAndFetch (the combined write fails, then the plain marks)", true],
    ["without recordAndFetch (the plain marks fail)", false],
  ])(
    "a store error recording a claim, %s: its span ends with the error, no claim follows, the tick rejects",
    async (_, combined) => {
      const failure = new StoreError("disk I/O error", { retryable: false });
      const calls: string[] = [];
      /** Claims work; every write of outcomes fails. */
      class FailingMarks extends MemoryStore {
        override fetchAndLock(options: ClaimOptions): Promise<Claim> {
          calls.push("claim");
          return super.fetchAndLock(options);
        }
        override async markAsSent(): Promise<number> {
          calls.push("failed write");
          throw failure;
        }
      }
      const store = new FailingMarks();
      if (combined) {
        store.recordAndFetch = async () => {
          calls.push("failed combined write");
          throw failure;
        };
      } else Object.defineProperty(store, "recordAndFetch", { value: undefined });
      const { rig, outbox } = instrumented(store, windowedSender(2), { batchSize: 2 });
      await store.transaction(async (tx) => {
        for (let i = 0; i < 4; i++) await outbox.addMessage(tx, { key: `k${i}`, value: String(i) });
      });
      await expect(outbox.tick()).rejects.toBe(failure);
      // After the first store error the window claims nothing more; a failed combined write's
      // outcomes are tried again at once with the plain marks.
      const firstFailure = calls.findIndex((call) => call.startsWith("failed"));
      expect(firstFailure).toBeGreaterThan(0);
      expect(calls.slice(firstFailure)).not.toContain("claim");
      if (combined)
        expect(calls.slice(firstFailure, firstFailure + 2)).toEqual([
          "failed combined write",
          "failed write",
        ]);
      // Every claim's outcomes met the error: each claim's span ends with it (as does the span
      // of a combined write's claim, which failed with it).
      const batches = rig.spans().filter((s) => s.name === "send outbox");
      expect(batches).toHaveLength(calls.filter((call) => call === "claim").length + (combined ? 1 : 0));
      for (const batch of batches) {
        expect(batch.status).toEqual({ code: SpanStatusCode.ERROR, message: "disk I/O error" });
        expect(batch.attributes["error.type"]).toBe("STORE_ERROR");
      }
      // Nothing recorded: what was claimed comes back when its lease ends.
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 4 });
    },
  );
});
