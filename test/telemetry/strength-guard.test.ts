/**
 * The batch span a sender sees as the active span (its own instrumentation writes to it), with
 * the real OpenTelemetry SDK and with a tracer whose spans throw, and the instruments' units and
 * bucket boundaries a dashboard is built on. Written against mutants the older telemetry suites
 * let survive.
 */
import {
  INVALID_SPAN_CONTEXT,
  type Meter,
  type Span,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { Histogram } from "@opentelemetry/sdk-metrics";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryStore } from "../../adapters/memory.ts";
import { CallbackError, type Sender } from "../../mod.ts";
import { installContextManager, instrumented, otel, remote, useCleanups } from "./support.ts";

let uninstall: () => void;
beforeAll(() => {
  uninstall = installContextManager();
});
afterAll(() => uninstall());

useCleanups();

const SPAN_METHODS = [
  "spanContext",
  "setAttribute",
  "setAttributes",
  "addEvent",
  "addLink",
  "addLinks",
  "setStatus",
  "updateName",
  "end",
  "isRecording",
  "recordException",
] as const;

/** A sender that instruments the active span (the batch span) the way an HTTP client would. */
function instrumentingSender(seen: { span?: Span; results: unknown[] }): Sender {
  return {
    async send(messages) {
      const span = trace.getActiveSpan() as Span;
      seen.span = span;
      seen.results = [
        span.spanContext(),
        span.isRecording(),
        span.setAttribute("http.request.method", "POST"),
        span.setAttributes({ "server.port": 8080 }),
        span.addEvent("request sent", { "http.request.body.size": 2 }),
        span.addLink({ context: remote() }),
        span.addLinks([{ context: remote({ spanId: "1111111111111111" }) }]),
        span.updateName("send orders"),
        span.recordException(new Error("first try reset")),
        span.setStatus({ code: SpanStatusCode.OK }),
      ];
      for (const m of messages) m.markAsSent();
      return messages;
    },
  };
}

describe("the batch span a sender writes to", () => {
  it("records what the sender's own instrumentation adds, under the batch span's own context", async () => {
    const seen: { span?: Span; results: unknown[] } = { results: [] };
    const store = new MemoryStore();
    const { rig, outbox, errors } = instrumented(store, instrumentingSender(seen));
    await store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    expect(await outbox.tick()).toMatchObject({ sent: 1 });
    expect(errors).toEqual([]);
    const [batch] = rig.spans().filter((s) => s.attributes["messaging.operation.name"] === "send");
    expect(batch?.name).toBe("send orders");
    expect(batch?.attributes).toMatchObject({ "http.request.method": "POST", "server.port": 8080 });
    expect(batch?.events.map((e) => [e.name, e.attributes])).toEqual([
      ["request sent", { "http.request.body.size": 2 }],
      ["exception", expect.objectContaining({ "exception.message": "first try reset" })],
    ]);
    expect(batch?.links.map((l) => l.context.spanId)).toEqual([remote().spanId, "1111111111111111"]);
    expect(batch?.status.code).toBe(SpanStatusCode.OK);
    const [context, recording, ...chained] = seen.results;
    expect(context).toEqual(batch?.spanContext());
    expect(recording).toBe(true);
    // The setters chain on the span the sender holds, as the API's do.
    expect(chained.slice(0, 6)).toEqual(Array(6).fill(seen.span));
  });

  it("costs the sender nothing when every span method throws: each reported once, all delivered", async () => {
    const real = otel();
    const brokenSpan = Object.fromEntries(
      SPAN_METHODS.map((name) => [
        name,
        () => {
          throw new Error(`${name} is broken`);
        },
      ]),
    ) as unknown as Span;
    const tracer = { ...real.tracer, startSpan: () => brokenSpan } as unknown as Tracer;
    const seen: { span?: Span; results: unknown[] } = { results: [] };
    const store = new MemoryStore();
    const { outbox, errors } = instrumented(store, instrumentingSender(seen), { tracer });
    await store.transaction(async (tx) => {
      await outbox.addMessage(tx, { key: "a", value: "v" });
      await outbox.addMessage(tx, { key: "b", value: "v" });
    });
    expect(await outbox.tick()).toMatchObject({ sent: 2, failed: 0 });
    await store.transaction((tx) => outbox.addMessage(tx, { key: "c", value: "v" }));
    expect(await outbox.tick()).toMatchObject({ sent: 1 });
    await real.shutdown();
    const [context, recording, ...chained] = seen.results;
    expect(context).toEqual(INVALID_SPAN_CONTEXT);
    expect(recording).toBe(false);
    expect(chained.slice(0, 6)).toEqual(Array(6).fill(seen.span));
    expect(errors.every((e) => e instanceof CallbackError)).toBe(true);
    const reported = errors.map((e) => (e as CallbackError).callback);
    // The relay itself only ends the spans when they do not record; the sender called the rest.
    expect(reported.sort()).toEqual(SPAN_METHODS.map((name) => `span.${name}`).sort());
    expect((errors[0] as CallbackError).message).toMatch(/^span\.\w+ threw: \w+ is broken$/);
  });

  it("a span whose methods return a thenable that throws when read is reported, not thrown", async () => {
    const real = otel();
    const poisoned = {
      // biome-ignore lint/suspicious/noThenProperty: a thenable whose `then` getter throws is the point
      get then() {
        throw new Error("then is poisoned");
      },
    };
    const tracer = {
      startSpan: (name: string, options: unknown, ctx: unknown) => {
        const span = real.tracer.startSpan(name, options as never, ctx as never);
        return new Proxy(span, {
          get(target, property, receiver) {
            const value = Reflect.get(target, property, receiver);
            if (property === "end") {
              return (...args: unknown[]) => {
                (value as (...a: unknown[]) => void).apply(target, args);
                return poisoned;
              };
            }
            return typeof value === "function" ? value.bind(target) : value;
          },
        });
      },
    } as unknown as Tracer;
    const store = new MemoryStore();
    const { outbox, errors } = instrumented(store, instrumentingSender({ results: [] }), { tracer });
    await store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    expect(await outbox.tick()).toMatchObject({ sent: 1 });
    expect(errors.map((e) => (e as CallbackError).callback)).toEqual(["span.end"]);
    expect(String((errors[0] as CallbackError).cause)).toContain("then is poisoned");
    expect(
      real
        .spans()
        .map((s) => s.name)
        .sort(),
    ).toEqual(["relay outbox", "send orders"]);
    await real.shutdown();
  });
});

describe("the relay's instruments", () => {
  it("carry the units and bucket boundaries of the messaging conventions", async () => {
    const store = new MemoryStore();
    const { rig, outbox } = instrumented(store, instrumentingSender({ results: [] }));
    await store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    await outbox.tick();
    const metrics = await rig.collect();
    const descriptor = (name: string) => metrics.get(name)?.descriptor;
    expect(descriptor("messaging.client.sent.messages")).toMatchObject({
      unit: "{message}",
      description: expect.stringContaining("outbox.outcome"),
    });
    expect(descriptor("messaging.client.operation.duration")).toMatchObject({
      unit: "s",
      description: expect.stringContaining("relay batch"),
    });
    expect(descriptor("outbox.batch.size")).toMatchObject({
      unit: "{message}",
      description: expect.stringContaining("claimed"),
    });
    expect(descriptor("outbox.message.count")).toMatchObject({
      unit: "{message}",
      description: expect.stringContaining("outbox.message.state"),
    });
    expect(descriptor("outbox.message.oldest_age")).toMatchObject({
      unit: "s",
      description: expect.stringContaining("oldest"),
    });
    const boundaries = (name: string) =>
      (metrics.get(name)?.dataPoints[0]?.value as Histogram | undefined)?.buckets.boundaries;
    expect(boundaries("messaging.client.operation.duration")).toEqual([
      0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
    ]);
    expect(boundaries("outbox.batch.size")).toEqual([1, 2, 5, 10, 25, 50, 100, 250, 500, 1000]);
  });
});

describe("a meter and tracer that throw or reject", () => {
  it("each throwing factory is reported once under its own name, and its stand-in reports nothing more", async () => {
    const broken = (name: string) => () => {
      throw new Error(`${name} is broken`);
    };
    const meter = {
      createCounter: broken("createCounter"),
      createHistogram: broken("createHistogram"),
      createObservableGauge: broken("createObservableGauge"),
      addBatchObservableCallback: () => {},
      removeBatchObservableCallback: broken("removeBatchObservableCallback"),
    } as unknown as Meter;
    const tracer = { startSpan: broken("startSpan") } as unknown as Tracer;
    const store = new MemoryStore();
    const { outbox, errors } = instrumented(store, instrumentingSender({ results: [] }), { meter, tracer });
    await store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    expect(await outbox.tick()).toMatchObject({ sent: 1 });
    await outbox[Symbol.asyncDispose]();
    expect(errors.map((e) => (e as CallbackError).callback).sort()).toEqual([
      "meter.createCounter",
      "meter.createHistogram",
      "meter.createObservableGauge",
      "meter.removeBatchObservableCallback",
      "tracer.startSpan",
    ]);
  });

  it("a rejected or thenable result is reported under the method's name; null or a plain function is not", async () => {
    const real = otel();
    const rejecting = (message: string) => Promise.reject(new Error(message));
    // A function that is also a thenable, rejecting: settled like any promise.
    const thenableFunction = Object.assign(() => {}, {
      // biome-ignore lint/suspicious/noThenProperty: a thenable function is the point
      then: (_: unknown, reject: (reason: unknown) => void) => reject(new Error("late")),
    });
    const instrument = { add: () => rejecting("add"), record: () => rejecting("record") };
    const meter = {
      createCounter: () => instrument,
      createHistogram: () => instrument,
      createObservableGauge: () => ({}),
      addBatchObservableCallback: () => null,
      removeBatchObservableCallback: () => () => {},
    } as unknown as Meter;
    const tracer = {
      startSpan: (name: string, options: unknown, ctx: unknown) => {
        const span = real.tracer.startSpan(name, options as never, ctx as never);
        return new Proxy(span, {
          get(target, property, receiver) {
            if (property === "then") {
              return (_: unknown, reject: (reason: unknown) => void) => reject(new Error("span as promise"));
            }
            const value = Reflect.get(target, property, receiver);
            // `end` answers null, `setAttributes` a thenable function: after doing their work.
            const answers: Record<string | symbol, unknown> = { end: null, setAttributes: thenableFunction };
            if (property in answers) {
              return (...args: unknown[]) => {
                value.apply(target, args);
                return answers[property];
              };
            }
            return typeof value === "function" ? value.bind(target) : value;
          },
        });
      },
    } as unknown as Tracer;
    const store = new MemoryStore();
    const { outbox, errors } = instrumented(store, instrumentingSender({ results: [] }), { meter, tracer });
    await store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" }));
    expect(await outbox.tick()).toMatchObject({ sent: 1 });
    await outbox[Symbol.asyncDispose]();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(errors.map((e) => (e as CallbackError).callback).sort()).toEqual([
      "counter.add",
      "histogram.record",
      "span.setAttributes",
      "tracer.startSpan",
    ]);
    await real.shutdown();
  });
});
