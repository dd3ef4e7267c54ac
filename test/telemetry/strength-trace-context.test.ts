/**
 * Edges of trace context across the outbox with the real W3C propagators and hand-written ones
 * with the quirks real propagators have: header values a Node-style record holds that are not
 * strings, `fields()` that is not a list of names, a setter called with a name that is not a
 * string, an `extract()` that throws or returns half a context, and the span context a relay's
 * link copies (remote flag, trace state, ids of the wrong type).
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
  trace,
} from "@opentelemetry/api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { extractTraceContext } from "../../mod.ts";
import { injectTraceContext, producerSpanContext } from "../../src/trace-context.ts";
import {
  installContextManager,
  installPropagator,
  remote,
  TRACE,
  TRACEPARENT,
  w3cPropagator,
} from "./support.ts";

function producerContext(): Context {
  const baggage = propagation.createBaggage({ tenant: { value: "acme" } });
  return propagation.setBaggage(trace.setSpanContext(ROOT_CONTEXT, remote()), baggage);
}

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

function register(propagator: TextMapPropagator = w3cPropagator()) {
  propagation.disable();
  undo.push(installPropagator(propagator));
}

/** The W3C propagators with `fields()` replaced. */
function w3cWithFields(fields: () => unknown): TextMapPropagator {
  const w3c = w3cPropagator();
  return {
    inject: (ctx, carrier, setter) => w3c.inject(ctx, carrier, setter),
    extract: (ctx, carrier, getter) => w3c.extract(ctx, carrier, getter),
    fields: fields as () => string[],
  };
}

describe("extractTraceContext from a Node-style record with values that are not strings", () => {
  it("ignores a repeated header that holds anything but strings", () => {
    register();
    const found = extractTraceContext({ traceparent: [TRACEPARENT, 7 as unknown as string] }, ROOT_CONTEXT);
    expect(trace.getSpanContext(found)).toBeUndefined();
    const state = extractTraceContext(
      { traceparent: TRACEPARENT, tracestate: ["v=1", 7 as unknown as string] },
      ROOT_CONTEXT,
    );
    expect(trace.getSpanContext(state)).toEqual(remote());
  });

  it("ignores a single value that is not a string", () => {
    register();
    const found = extractTraceContext(
      { traceparent: TRACEPARENT, tracestate: 5 as unknown as string, baggage: {} as unknown as string },
      ROOT_CONTEXT,
    );
    expect(trace.getSpanContext(found)).toEqual(remote());
    expect(propagation.getBaggage(found)).toBeUndefined();
    expect(warnings).toEqual([]);
  });
});

describe("injectTraceContext with a propagator whose fields() is odd", () => {
  for (const [label, fields] of [
    ["not an array", () => undefined],
    ["a string", () => "traceparent"],
    ["a list with non-names", () => [null, 42, "traceparent", "baggage"]],
  ] as const) {
    it(`fields() ${label}: the trace context is still added next to the caller's headers`, () => {
      register(w3cWithFields(fields));
      expect(injectTraceContext({ "content-type": "application/json" }, producerContext())).toEqual({
        "content-type": "application/json",
        traceparent: TRACEPARENT,
        baggage: "tenant=acme",
      });
      expect(warnings).toEqual([]);
    });
  }

  it("fields() with the caller's header name in another case still keeps the caller's trace whole", () => {
    register(w3cWithFields(() => ["TraceParent", "TraceState", "Baggage"]));
    expect(injectTraceContext({ tracestate: "mine=1" }, producerContext())).toEqual({
      tracestate: "mine=1",
      baggage: "tenant=acme",
    });
  });
});

describe("injectTraceContext with a propagator that writes a name that is not a string", () => {
  it("drops that pair, keeps the valid ones and the caller's headers", () => {
    const w3c = w3cPropagator();
    register({
      inject(ctx, carrier, setter) {
        setter.set(carrier, 42 as unknown as string, "odd");
        w3c.inject(ctx, carrier, setter);
      },
      extract: (ctx, carrier, getter) => w3c.extract(ctx, carrier, getter),
      fields: () => w3c.fields(),
    });
    expect(injectTraceContext({ "x-request-id": "r1" }, producerContext())).toEqual({
      "x-request-id": "r1",
      traceparent: TRACEPARENT,
      baggage: "tenant=acme",
    });
    expect(warnings.some((w) => w.includes("not a valid HTTP header"))).toBe(true);
  });
});

describe("injectTraceContext never overwrites a caller's header", () => {
  it("not even one the propagator writes only when a span and baggage are both active", () => {
    const w3c = w3cPropagator();
    register({
      inject(ctx, carrier, setter) {
        w3c.inject(ctx, carrier, setter);
        const span = trace.getSpanContext(ctx);
        const tenant = propagation.getBaggage(ctx)?.getEntry("tenant")?.value;
        if (span !== undefined && tenant !== undefined)
          setter.set(carrier, "x-correlation", `${tenant}/${span.traceId}`);
      },
      extract: (ctx, carrier, getter) => w3c.extract(ctx, carrier, getter),
      fields: () => w3c.fields(),
    });
    expect(injectTraceContext({}, producerContext())).toEqual({
      traceparent: TRACEPARENT,
      baggage: "tenant=acme",
      "x-correlation": `acme/${TRACE}`,
    });
    expect(injectTraceContext({ "x-correlation": "mine" }, producerContext())).toEqual({
      "x-correlation": "mine",
      traceparent: TRACEPARENT,
      baggage: "tenant=acme",
    });
  });
});

describe("extractTraceContext with a propagator that fails", () => {
  const base = ROOT_CONTEXT.setValue(createContextKey("server"), "GET /hook");

  it("one that throws gives the base context and says so through diag", () => {
    register({
      inject() {},
      extract() {
        throw new Error("extract exploded");
      },
      fields: () => [],
    });
    expect(extractTraceContext({ traceparent: TRACEPARENT }, base)).toBe(base);
    expect(warnings).toContain("edge-outbox: the registered propagator threw while reading trace headers");
  });

  it("one that returns an object lacking setValue or deleteValue gives the base context", () => {
    const noop = () => undefined;
    for (const returned of [
      { getValue: noop, deleteValue: noop },
      { getValue: noop, setValue: noop },
    ]) {
      register({ inject() {}, extract: () => returned as unknown as Context, fields: () => [] });
      expect(extractTraceContext({}, base)).toBe(base);
    }
    expect(warnings.some((w) => w.includes("returned no context"))).toBe(true);
  });
});

describe("producerSpanContext: the copy a relay's link holds", () => {
  /** A propagator whose extract() puts `found` in the context, as a hand-written one might. */
  const extracting = (found: SpanContext) =>
    register({ inject() {}, extract: (ctx) => trace.setSpanContext(ctx, found), fields: () => [] });

  it("headers without trace context give no link and no warning", () => {
    register();
    expect(producerSpanContext({ "content-type": "text/plain" })).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it("keeps the producer's trace state, and has none when the headers carry none or an empty one", () => {
    register();
    expect(
      producerSpanContext({ traceparent: TRACEPARENT, tracestate: "v=1" })?.traceState?.serialize(),
    ).toBe("v=1");
    expect(producerSpanContext({ traceparent: TRACEPARENT })).toEqual(remote());
    expect(producerSpanContext({ traceparent: TRACEPARENT })?.traceState).toBeUndefined();
    expect(producerSpanContext({ traceparent: TRACEPARENT, tracestate: "" })?.traceState).toBeUndefined();

    extracting(remote({ traceState: createTraceState("") }));
    expect(producerSpanContext({})).toEqual(remote());
    expect(producerSpanContext({})?.traceState).toBeUndefined();
    const odd = { serialize: () => undefined } as unknown as SpanContext["traceState"];
    extracting(remote({ traceState: odd }));
    expect(producerSpanContext({})?.traceState).toBeUndefined();
  });

  it("keeps isRemote as the propagator said, false when it said nothing", () => {
    extracting(remote({ isRemote: false }));
    expect(producerSpanContext({})?.isRemote).toBe(false);
    const { isRemote: _, ...unsaid } = remote();
    extracting(unsaid);
    expect(producerSpanContext({})?.isRemote).toBe(false);
    extracting(remote());
    expect(producerSpanContext({})?.isRemote).toBe(true);
  });

  it("gives no link for a span id or trace flags of the wrong type", () => {
    extracting(remote({ spanId: 1234567890123456 as unknown as string }));
    expect(producerSpanContext({})).toBeUndefined();
    extracting(remote({ traceFlags: "1" as unknown as number }));
    expect(producerSpanContext({})).toBeUndefined();
  });
});

describe("with the active context", () => {
  it("injectTraceContext and extractTraceContext default to it", () => {
    register();
    context.with(producerContext(), () => {
      expect(injectTraceContext({})).toEqual({ traceparent: TRACEPARENT, baggage: "tenant=acme" });
    });
    const key = createContextKey("handler");
    const active = ROOT_CONTEXT.setValue(key, "h");
    context.with(active, () => {
      const found = extractTraceContext({ traceparent: TRACEPARENT });
      expect(found.getValue(key)).toBe("h");
      expect(trace.getSpanContext(found)).toEqual(remote());
    });
  });
});
