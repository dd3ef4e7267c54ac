/**
 * The tick and batch spans and the counters of passes that fail, with the real OpenTelemetry
 * SDK: senders that fail or kill some messages, a store that throws (a string, or an error whose
 * code cannot be read), and a failing pass of the `start()` loop, whose tick span starts late.
 * Written against mutants the older telemetry suites let survive.
 */
import { SpanStatusCode } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../../adapters/memory.ts";
import { type Claim, StoreError } from "../../mod.ts";
import { recordingSender, waitFor } from "../support/senders.ts";
import { findPoint, installContextManager, instrumented, pointValue, useCleanups } from "./support.ts";

let uninstall: () => void;
beforeAll(() => {
  uninstall = installContextManager();
});
afterAll(() => uninstall());

useCleanups();

const named = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const nanos = ([seconds, ns]: [number, number]) => BigInt(seconds) * 1_000_000_000n + BigInt(ns);

/** A MemoryStore whose claims throw `failure`, after `delayMs`. */
class ThrowingStore extends MemoryStore {
  constructor(
    readonly failure: () => unknown,
    readonly delayMs = 0,
  ) {
    super();
  }
  override async fetchAndLock(): Promise<Claim> {
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    throw this.failure();
  }
}

describe("a batch whose sender failed or killed some messages", () => {
  it("counts them by outcome, says how many on both spans, and adds no series for outcomes that did not happen", async () => {
    const store = new MemoryStore();
    let i = 0;
    const sender = recordingSender((m) => {
      i += 1;
      if (i === 1) m.markAsDead({ error: "HTTP 404" });
      else m.markAsFailed({ error: "HTTP 503" });
    });
    const { rig, outbox } = instrumented(store, sender, {
      backoff: { initialDelay: 60_000, maxDelay: 60_000 },
    });
    await store.transaction(async (tx) => {
      for (let k = 0; k < 3; k++) await outbox.addMessage(tx, { key: `k${k}`, value: "v" });
    });
    expect(await outbox.tick()).toMatchObject({ sent: 0, failed: 2, dead: 1 });
    const spans = rig.spans();
    for (const span of [...named(spans, "send outbox"), ...named(spans, "relay outbox")]) {
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: "2 message(s) failed and 1 died" });
      expect(span.attributes).toMatchObject({
        "error.type": "SEND_FAILED",
        "outbox.failed": 2,
        "outbox.dead": 1,
      });
    }
    const sent = (await rig.collect()).get("messaging.client.sent.messages");
    expect(pointValue(sent, { "outbox.outcome": "failed", "error.type": "SEND_FAILED" })).toBe(2);
    expect(pointValue(sent, { "outbox.outcome": "dead", "error.type": "SEND_FAILED" })).toBe(1);
    expect(findPoint(sent, { "outbox.outcome": "sent" })).toBeUndefined();
    expect(sent?.dataPoints).toHaveLength(2);
    // Failed and dead counts carry the same identifying attributes as sent ones: a dashboard
    // filters them by outbox and system like the rest.
    for (const outcome of ["failed", "dead"]) {
      expect(findPoint(sent, { "outbox.outcome": outcome })?.attributes).toEqual({
        "messaging.system": "edge-outbox",
        "messaging.operation.name": "send",
        "outbox.name": outbox.options.name,
        "outbox.outcome": outcome,
        "error.type": "SEND_FAILED",
      });
    }
  });
});

describe("a store that throws", () => {
  it("something that is not an Error: the text is the exception, the status and error.type _OTHER", async () => {
    const { rig, outbox } = instrumented(new ThrowingStore(() => "disk gone", 30), recordingSender());
    await expect(outbox.tick()).rejects.toBe("disk gone");
    for (const span of rig.spans()) {
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: "disk gone" });
      expect(span.attributes["error.type"]).toBe("_OTHER");
      const exception = span.events.find((e) => e.name === "exception");
      expect(exception?.attributes?.["exception.message"]).toBe("disk gone");
    }
    expect(rig.spans()).toHaveLength(2);
    const duration = (await rig.collect()).get("messaging.client.operation.duration");
    expect(pointValue(duration, { "error.type": "_OTHER" })).toBe(1);
    // In seconds, as the semantic conventions say: the claim failed after 30 ms.
    const point = findPoint(duration, { "error.type": "_OTHER" })!;
    expect(point.attributes).toEqual({
      "messaging.system": "edge-outbox",
      "messaging.operation.name": "send",
      "messaging.operation.type": "send",
      "outbox.name": outbox.options.name,
      "error.type": "_OTHER",
    });
    const { sum } = point.value as { sum: number };
    expect(sum).toBeGreaterThanOrEqual(0.025);
    expect(sum).toBeLessThan(1);
  });

  it("an OutboxError whose code cannot be read: error.type _OTHER, the tick still rejects with it", async () => {
    const failure = new Proxy(new StoreError("database is locked", { retryable: true }), {
      get(target, property, receiver) {
        if (property === "code") throw new Error("no code for you");
        return Reflect.get(target, property, receiver);
      },
    });
    const { rig, outbox } = instrumented(new ThrowingStore(() => failure), recordingSender());
    await expect(outbox.tick()).rejects.toBe(failure);
    const [batch] = named(rig.spans(), "send outbox");
    expect(batch?.attributes["error.type"]).toBe("_OTHER");
    expect(batch?.status).toEqual({ code: SpanStatusCode.ERROR, message: "database is locked" });
    const duration = (await rig.collect()).get("messaging.client.operation.duration");
    expect(pointValue(duration, { "error.type": "_OTHER" })).toBe(1);
  });

  it("in the start() loop: the pass's tick span is started for the error, backdated to before its batch", async () => {
    const failure = new StoreError("database is locked", { retryable: true });
    const { rig, outbox, errors } = instrumented(new ThrowingStore(() => failure, 30), recordingSender(), {
      period: 5,
    });
    outbox.start();
    await waitFor(() => errors.length > 0 && named(rig.spans(), "relay outbox").length > 0);
    await outbox.stop();
    const [tick] = named(rig.spans(), "relay outbox");
    const [batch] = named(rig.spans(), "send outbox");
    expect(tick?.status).toEqual({ code: SpanStatusCode.ERROR, message: "database is locked" });
    expect(tick?.attributes).toMatchObject({ "error.type": "STORE_BUSY", "outbox.batches": 0 });
    expect(batch?.parentSpanContext?.spanId).toBe(tick?.spanContext().spanId);
    // The SDK places each span on the wall clock to within a millisecond: the claim's 30 ms
    // tell a span backdated to the pass's start from one started when the claim failed.
    expect(nanos(tick!.startTime)).toBeLessThanOrEqual(nanos(batch!.startTime) + 2_000_000n);
  });
});
