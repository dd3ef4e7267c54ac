/**
 * A registered propagator with the bugs hand-written ones have (extract() that returns nothing,
 * span contexts that throw when read, inject() that ignores the setter or treats the carrier as
 * something else) never stops a message: addMessage stores it, the relay sends it with a real
 * SDK's recording spans, and each fault is reported through the OpenTelemetry diag logger.
 */
import {
  type Context,
  context,
  createContextKey,
  createTraceState,
  DiagLogLevel,
  diag,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  type TextMapPropagator,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../../adapters/memory.ts";
import { extractTraceContext, type Outbox } from "../../mod.ts";
import { producerSpanContext } from "../../src/trace-context.ts";
import { recordingSender } from "../support/senders.ts";
import {
  installContextManager,
  installPropagator,
  instrumented,
  SPAN,
  TRACE,
  useCleanups,
} from "./support.ts";

const REQUEST = Symbol.for("edge-outbox.test.request-id");

const undo: Array<() => void> = [];
const warnings: string[] = [];
beforeEach(() => {
  const log = (message: string) => warnings.push(message);
  diag.setLogger({ error: log, warn: log, info() {}, debug() {}, verbose() {} }, DiagLogLevel.WARN);
  undo.push(installContextManager(), () => diag.disable());
});
afterEach(() => {
  for (const u of undo.splice(0).reverse()) u();
  warnings.length = 0;
});
useCleanups();

/** Registers `propagator` in place of the one registered (the API refuses a second one otherwise). */
function register(propagator: TextMapPropagator) {
  propagation.disable();
  undo.push(installPropagator(propagator));
}

/** A span context whose `traceId` throws when read, as a broken propagator might build. */
function explodingSpanContext(): SpanContext {
  return {
    get traceId(): string {
      throw new Error("getter exploded");
    },
    spanId: SPAN,
    traceFlags: TraceFlags.SAMPLED,
  };
}

/** A request-id propagator whose extract() forgets to return the context when its header is absent. */
const forgetsToReturn: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const id = ctx.getValue(REQUEST);
    if (typeof id === "string") setter.set(carrier, "x-request-id", id);
  },
  extract(ctx, carrier, getter) {
    const id = getter.get(carrier, "x-request-id");
    if (typeof id !== "string") return undefined as unknown as Context;
    return ctx.setValue(REQUEST, id);
  },
  fields: () => ["x-request-id"],
};

/**
 * Adds one message under each of `contexts`, runs a tick with a recording SDK, and returns what
 * the sender got.
 */
async function roundTrip(contexts: Context[] = [ROOT_CONTEXT], headers?: Record<string, string>) {
  const sent: Array<Record<string, string>> = [];
  const sender = recordingSender((m) => {
    sent.push({ ...m.headers });
    m.markAsSent();
  });
  const { rig, store, outbox, errors } = instrumented(new MemoryStore(), sender);
  for (const ctx of contexts) {
    await context.with(ctx, () =>
      store.transaction((tx) =>
        (outbox as Outbox<unknown>).addMessage(tx, { key: "k", value: "v", headers }),
      ),
    );
  }
  const result = await outbox.tick();
  const batches = rig.spans().filter((s) => s.name === "send outbox");
  return { result, sent, errors, batches, stats: await outbox.stats() };
}

describe("extract() that returns no context", () => {
  it("extractTraceContext gives the base context back, and says so", () => {
    register(forgetsToReturn);
    const base = ROOT_CONTEXT.setValue(createContextKey("server"), "GET /hook");
    expect(extractTraceContext({}, base)).toBe(base);
    expect(trace.getSpanContext(extractTraceContext({ traceparent: "x" }, base))).toBeUndefined();
    expect(extractTraceContext({ "x-request-id": "r1" }, base).getValue(REQUEST)).toBe("r1");
    expect(warnings.some((w) => w.includes("returned no context"))).toBe(true);

    for (const returned of [
      null,
      42,
      "ctx",
      {},
      { getValue: "not a function" },
      { getValue: () => undefined },
    ]) {
      register({ inject() {}, extract: () => returned as unknown as Context, fields: () => [] });
      expect(extractTraceContext({}, base)).toBe(base);
    }
  });

  it("the relay still sends the message, and its tick resolves", async () => {
    register(forgetsToReturn);
    const { result, sent, errors, stats, batches } = await roundTrip([
      ROOT_CONTEXT.setValue(REQUEST, "r1"),
      ROOT_CONTEXT,
    ]);
    expect(result).toMatchObject({ sent: 2, failed: 0, dead: 0 });
    expect(batches.map((b) => b.links)).toEqual([[]]);
    expect(sent).toEqual([{ "x-request-id": "r1" }, {}]);
    expect(errors).toEqual([]);
    expect(stats).toMatchObject({ pending: 0, inFlight: 0 });
  });
});

describe("a span context that throws when read", () => {
  it("producerSpanContext gives undefined instead of throwing", () => {
    register({
      inject() {},
      extract: (ctx) => trace.setSpanContext(ctx, explodingSpanContext()),
      fields: () => [],
    });
    expect(producerSpanContext({})).toBeUndefined();
    expect(warnings.some((w) => w.includes("cannot be read"))).toBe(true);
  });

  it("producerSpanContext drops ids that are not strings and keeps a copy, read once", () => {
    const traceState = createTraceState("v=1");
    let reads = 0;
    const found: SpanContext = {
      get traceId() {
        reads++;
        return TRACE;
      },
      spanId: SPAN,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState,
    };
    register({ inject() {}, extract: (ctx) => trace.setSpanContext(ctx, found), fields: () => [] });
    const copy = producerSpanContext({});
    expect(reads).toBe(1);
    expect(copy).not.toBe(found);
    expect({ ...copy, traceState: copy?.traceState?.serialize() }).toEqual({
      traceId: TRACE,
      spanId: SPAN,
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState: "v=1",
    });

    const odd = { traceId: { toString: () => TRACE }, spanId: SPAN, traceFlags: 1 } as unknown as SpanContext;
    register({ inject() {}, extract: (ctx) => trace.setSpanContext(ctx, odd), fields: () => [] });
    expect(producerSpanContext({})).toBeUndefined();
  });

  it("the relay still sends the message; the batch span has no link", async () => {
    register({
      inject() {},
      extract: (ctx) => trace.setSpanContext(ctx, explodingSpanContext()),
      fields: () => [],
    });
    const { result, sent, errors, stats, batches } = await roundTrip();
    expect(result).toMatchObject({ sent: 1, failed: 0, dead: 0 });
    expect(sent).toHaveLength(1);
    expect(batches.map((b) => b.links)).toEqual([[]]);
    expect(errors).toEqual([]);
    expect(stats).toMatchObject({ pending: 0, inFlight: 0 });
  });
});

describe("inject() that does not use the carrier as a setter target", () => {
  const producer = propagation.setBaggage(
    trace.setSpanContext(ROOT_CONTEXT, { traceId: TRACE, spanId: SPAN, traceFlags: TraceFlags.SAMPLED }),
    propagation.createBaggage({ tenant: { value: "acme" } }),
  );

  it("headers it writes into the carrier itself are checked and kept", async () => {
    register({
      inject(_ctx, carrier: Record<string, unknown>, setter) {
        setter.set(carrier, "x-via-setter", "1");
        carrier["X-Request-Id"] = "abc";
        carrier["x-smuggled"] = "a\r\nx-evil: 1";
        carrier["x-number"] = 42;
      },
      extract: (ctx) => ctx,
      fields: () => [],
    });
    const { sent } = await roundTrip([producer]);
    expect(sent).toEqual([{ "x-via-setter": "1", "x-request-id": "abc" }]);
    expect(warnings.filter((w) => w.includes("not a valid HTTP header"))).toHaveLength(2);
  });

  it("one that treats the carrier as an array, or leaves a getter that throws, adds nothing and fails nothing", async () => {
    const pushes: TextMapPropagator = {
      inject(_ctx, carrier, setter) {
        setter.set(carrier, "x-a", "1");
        (carrier as unknown as unknown[]).push(null);
      },
      extract: (ctx) => ctx,
      fields: () => [],
    };
    const trapped: TextMapPropagator = {
      inject(_ctx, carrier) {
        Object.defineProperty(carrier, "x-trap", {
          enumerable: true,
          get() {
            throw new Error("trap");
          },
        });
      },
      extract: (ctx) => ctx,
      fields: () => [],
    };
    for (const propagator of [pushes, trapped]) {
      register(propagator);
      const { result, sent } = await roundTrip([producer], { "x-caller": "kept" });
      expect(result).toMatchObject({ sent: 1, failed: 0, dead: 0 });
      expect(sent).toEqual([{ "x-caller": "kept" }]);
    }
    expect(warnings.filter((w) => w.includes("propagator threw"))).toHaveLength(2);
  });
});
