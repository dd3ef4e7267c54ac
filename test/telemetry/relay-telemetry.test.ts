import { context, type SpanContext, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpSender } from "../../adapters/http.ts";
import { MemoryStore } from "../../adapters/memory.ts";
import {
  type Claim,
  type ClaimOptions,
  Outbox,
  type OutboxOptions,
  type Sender,
  StoreError,
} from "../../mod.ts";
import { recordingSender } from "../support/senders.ts";
import {
  findPoint,
  installContextManager,
  installPropagator,
  instrumented,
  onCleanup,
  otel,
  pointValue,
  receiver,
  useCleanups,
} from "./support.ts";

// The relay reads producers' contexts, and addMessage writes them, through the global propagator.
let uninstall: Array<() => void>;
beforeAll(() => {
  uninstall = [installContextManager(), installPropagator()];
});
afterAll(() => {
  for (const undo of uninstall) undo();
});

useCleanups();

type Rig = ReturnType<typeof otel>;

function setup(sender: Sender, options: OutboxOptions = {}, store = new MemoryStore()) {
  return instrumented(store, sender, options);
}

/** Adds each message in its own transaction under its own producer span; returns their contexts. */
async function produce(rig: Rig, store: MemoryStore, outbox: Outbox<unknown>, count: number) {
  const producers = new Map<string, SpanContext>();
  for (let i = 0; i < count; i++) {
    await rig.tracer.startActiveSpan("POST /orders", async (span) => {
      await store.transaction((tx) => outbox.addMessage(tx, { key: `order:${i}`, value: `body-${i}` }));
      producers.set(`body-${i}`, span.spanContext());
      span.end();
    });
  }
  return producers;
}

const named = (rig: Rig, name: string) => rig.spans().filter((s) => s.name === name);
const parentId = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe("a healthy receiver", () => {
  it("counts, spans, links and traceparent all match what the receiver got", async () => {
    const http = await receiver();
    onCleanup(http.close);
    const { rig, store, outbox, errors } = setup(httpSender({ url: http.url, unsigned: true }), {
      batchSize: 3,
    });
    const producers = await produce(rig, store, outbox, 7);
    // A caller's own (garbage) traceparent is kept as given, sent, and never becomes a link.
    await store.transaction((tx) =>
      outbox.addMessage(tx, { key: "odd", value: "garbage", headers: { traceparent: "not-a-trace" } }),
    );

    const result = await rig.tracer.startActiveSpan("cron", async (cron) => {
      const r = await outbox.tick();
      cron.end();
      return r;
    });
    expect(errors).toEqual([]);
    expect(result).toMatchObject({ batches: 3, sent: 8, failed: 0, dead: 0 });
    expect(http.received).toHaveLength(8);

    // The receiver sees each producer's trace in traceparent: its trace continues the request.
    for (const request of http.received) {
      const producer = producers.get(request.body);
      if (request.body === "garbage") {
        expect(request.headers.traceparent).toBe("not-a-trace");
        continue;
      }
      expect(request.headers.traceparent).toBe(`00-${producer?.traceId}-${producer?.spanId}-01`);
    }

    const metrics = await rig.collect();
    const sent = metrics.get("messaging.client.sent.messages");
    expect(pointValue(sent, { "outbox.outcome": "sent" })).toBe(http.received.length);
    expect(findPoint(sent, { "outbox.outcome": "sent" })?.attributes).toEqual({
      "messaging.system": "edge-outbox",
      "messaging.operation.name": "send",
      "outbox.outcome": "sent",
      "outbox.name": "memory",
    });
    expect(findPoint(sent, { "outbox.outcome": "failed" })).toBeUndefined();
    expect(findPoint(sent, { "outbox.outcome": "dead" })).toBeUndefined();
    const duration = metrics.get("messaging.client.operation.duration");
    expect(duration?.descriptor.unit).toBe("s");
    expect(pointValue(duration, {})).toBe(3);
    expect(findPoint(duration, {})?.attributes["error.type"]).toBeUndefined();
    const size = findPoint(metrics.get("outbox.batch.size"), {})?.value as { sum: number; count: number };
    expect(size).toMatchObject({ sum: 8, count: 3 });

    // One tick span, child of the caller's span; one batch span per batch under it.
    const [cron] = named(rig, "cron");
    const ticks = named(rig, "relay outbox");
    expect(ticks).toHaveLength(1);
    const tick = ticks[0] as ReadableSpan;
    expect(parentId(tick)).toBe(cron?.spanContext().spanId);
    expect(tick.kind).toBe(SpanKind.INTERNAL);
    expect(tick.attributes).toMatchObject({ "outbox.batches": 3, "outbox.sent": 8, "outbox.failed": 0 });
    expect(tick.status.code).toBe(SpanStatusCode.UNSET);
    const batches = named(rig, "send outbox");
    expect(batches).toHaveLength(3);
    for (const batch of batches) {
      expect(parentId(batch)).toBe(tick.spanContext().spanId);
      expect(batch.spanContext().traceId).toBe(cron?.spanContext().traceId);
      expect(batch.kind).toBe(SpanKind.CLIENT);
      expect(batch.status.code).toBe(SpanStatusCode.UNSET);
      expect(batch.attributes).toMatchObject({
        "messaging.system": "edge-outbox",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
      });
    }
    expect(batches.map((b) => b.attributes["messaging.batch.message_count"])).toEqual([3, 3, 2]);
    expect(batches.map((b) => b.attributes["outbox.sent"])).toEqual([3, 3, 2]);

    // Links point at exactly the producers' contexts (the garbage traceparent links nothing).
    const links = batches.flatMap((b) => b.links);
    expect(links.map((l) => `${l.context.traceId}-${l.context.spanId}`).sort()).toEqual(
      [...producers.values()].map((p) => `${p.traceId}-${p.spanId}`).sort(),
    );
    expect(links.every((l) => typeof l.attributes?.["messaging.message.id"] === "string")).toBe(true);
  });

  it("the start() loop records a span only for drains that claimed something", async () => {
    let claims = 0;
    class CountingStore extends MemoryStore {
      override fetchAndLock(options: ClaimOptions): Promise<Claim> {
        claims += 1;
        return super.fetchAndLock(options);
      }
    }
    const store = new CountingStore();
    const { rig, outbox } = setup(recordingSender(), { period: 5 }, store);
    await produce(rig, store, outbox, 2);
    outbox.start();
    // Bounded wait: several idle passes after the one that sent both messages.
    for (let i = 0; i < 400 && claims < 6; i++) await new Promise((r) => setTimeout(r, 5));
    await outbox.stop();
    expect(claims).toBeGreaterThanOrEqual(6);
    expect(named(rig, "relay outbox")).toHaveLength(1);
    expect(named(rig, "send outbox")).toHaveLength(1);
  });
});

describe("a failing receiver", () => {
  it("shows in failed and dead counts, error.type and span status", async () => {
    const http = await receiver(() => 503);
    onCleanup(http.close);
    const { rig, store, outbox, errors } = setup(httpSender({ url: http.url, unsigned: true }), {
      maxRetries: 1,
      backoff: { initialDelay: 0, maxDelay: 0 },
    });
    await produce(rig, store, outbox, 4);
    // Zero backoff: the same tick retries once, then the messages are dead.
    expect(await outbox.tick()).toMatchObject({ batches: 2, sent: 0, failed: 4, dead: 4 });
    expect(errors).toEqual([]);
    expect(http.received).toHaveLength(8);

    const metrics = await rig.collect();
    const sent = metrics.get("messaging.client.sent.messages");
    const failed = pointValue(sent, { "outbox.outcome": "failed", "error.type": "SEND_FAILED" });
    const dead = pointValue(sent, { "outbox.outcome": "dead", "error.type": "SEND_FAILED" });
    expect([failed, dead]).toEqual([4, 4]);
    expect(failed + dead).toBe(http.received.length);
    expect(pointValue(sent, { "outbox.outcome": "sent" })).toBe(0);
    expect(pointValue(metrics.get("outbox.message.count"), { "outbox.message.state": "dead" })).toBe(4);

    const batches = named(rig, "send outbox");
    expect(batches).toHaveLength(2);
    for (const batch of batches) {
      expect(batch.status.code).toBe(SpanStatusCode.ERROR);
      expect(batch.attributes["error.type"]).toBe("SEND_FAILED");
    }
    expect(batches.map((b) => [b.attributes["outbox.failed"], b.attributes["outbox.dead"]])).toEqual([
      [4, 0],
      [0, 4],
    ]);
    const [tick] = named(rig, "relay outbox");
    expect(tick?.status.code).toBe(SpanStatusCode.ERROR);
    expect(tick?.attributes).toMatchObject({ "outbox.failed": 4, "outbox.dead": 4 });
  });

  it("a sender that throws leaves an exception event and its error code", async () => {
    const sender: Sender = {
      async send() {
        throw new Error("connection refused");
      },
    };
    const { rig, store, outbox, errors } = setup(sender, { backoff: { initialDelay: 60_000 } });
    await produce(rig, store, outbox, 2);
    expect(await outbox.tick()).toMatchObject({ failed: 2 });
    expect(errors).toHaveLength(1);

    const [batch] = named(rig, "send outbox");
    expect(batch?.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: "sender threw: connection refused",
    });
    expect(batch?.attributes["error.type"]).toBe("SEND_FAILED");
    const exception = batch?.events.find((e) => e.name === "exception");
    expect(exception?.attributes?.["exception.message"]).toBe("sender threw: connection refused");
    const metrics = await rig.collect();
    expect(
      pointValue(metrics.get("messaging.client.operation.duration"), { "error.type": "SEND_FAILED" }),
    ).toBe(1);
  });

  it("a store that throws fails the batch and tick spans and the duration metric", async () => {
    class BrokenStore extends MemoryStore {
      override async fetchAndLock(): Promise<Claim> {
        throw new StoreError("database is locked", { retryable: true });
      }
    }
    const { rig, outbox } = setup(recordingSender(), {}, new BrokenStore());
    await expect(outbox.tick()).rejects.toThrow("database is locked");

    const [batch] = named(rig, "send outbox");
    const [tick] = named(rig, "relay outbox");
    for (const span of [batch, tick]) {
      expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: "database is locked" });
      expect(span?.attributes["error.type"]).toBe("STORE_BUSY");
      expect(span?.events.some((e) => e.name === "exception")).toBe(true);
    }
    expect(parentId(batch as ReadableSpan)).toBe(tick?.spanContext().spanId);
    const metrics = await rig.collect();
    expect(
      pointValue(metrics.get("messaging.client.operation.duration"), { "error.type": "STORE_BUSY" }),
    ).toBe(1);
  });
});

describe("no SDK", () => {
  it("reads no traceparent for links when the tracer does not record", async () => {
    let reads = 0;
    class WatchedStore extends MemoryStore {
      override async fetchAndLock(options: ClaimOptions): Promise<Claim> {
        const claim = await super.fetchAndLock(options);
        for (const message of claim.messages) {
          Object.defineProperty(message, "headers", {
            value: new Proxy(message.headers, {
              get(target, name) {
                if (name === "traceparent") reads += 1;
                return Reflect.get(target, name);
              },
            }),
          });
        }
        return claim;
      }
    }
    const store = new WatchedStore();
    const producer = otel();
    onCleanup(producer.shutdown);
    // No meter or tracer option and no global provider: the API's no-ops.
    const outbox = new Outbox(store, recordingSender());
    onCleanup(() => outbox[Symbol.asyncDispose]());
    await produce(producer, store, outbox as Outbox<unknown>, 3);
    expect(await outbox.tick()).toMatchObject({ sent: 3 });
    expect(reads).toBe(0);
    expect(trace.getSpan(context.active())).toBeUndefined();

    // The same store under a recording tracer does read them (the watch works).
    const withSdk = setup(recordingSender(), {}, store);
    await produce(withSdk.rig, store, withSdk.outbox, 1);
    await withSdk.outbox.tick();
    expect(reads).toBe(1);
  });
});
