/**
 * A caller's own trace headers in `addMessage` are kept whole, with real propagators (W3C, B3
 * single and multi-header, composites): when the caller set any header of the propagator's span
 * group or baggage group, none of the active context's headers of that group is added beside
 * it, so the consumer reads the caller's context (or nothing), never half of each.
 */
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type TextMapPropagator,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { B3InjectEncoding, B3Propagator } from "@opentelemetry/propagator-b3";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../../adapters/memory.ts";
import { extractTraceContext, Outbox } from "../../mod.ts";
import { recordingSender } from "../support/senders.ts";
import {
  installContextManager,
  installPropagator,
  SPAN,
  TRACE,
  TRACEPARENT,
  w3cPropagator,
} from "./support.ts";

const CALLERS_TRACE = "1".repeat(32);

const active = { traceId: TRACE, spanId: SPAN, traceFlags: TraceFlags.SAMPLED, isRemote: true };
const withSpan = trace.setSpanContext(ROOT_CONTEXT, active);
const withSpanAndBaggage = propagation.setBaggage(
  withSpan,
  propagation.createBaggage({ tenant: { value: "acme" } }),
);

const undo: Array<() => void> = [];
afterEach(() => {
  for (const u of undo.splice(0).reverse()) u();
});

function register(propagator: TextMapPropagator) {
  undo.push(installContextManager(), installPropagator(propagator));
}

/** The headers the sender got for one message added under `ctx` with the caller's `headers`. */
async function stored(ctx: Context, headers: Record<string, string>): Promise<Record<string, string>> {
  const store = new MemoryStore();
  const sent: Array<Record<string, string>> = [];
  const outbox = new Outbox(
    store,
    recordingSender((m) => {
      sent.push({ ...m.headers });
      m.markAsSent();
    }),
  );
  await context.with(ctx, () =>
    store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v", headers })),
  );
  expect(await outbox.tick()).toMatchObject({ sent: 1 });
  await outbox[Symbol.asyncDispose]();
  return sent[0] as Record<string, string>;
}

/** The span context a consumer reads from `headers`. */
const consumerReads = (headers: Record<string, string>) =>
  trace.getSpanContext(extractTraceContext(headers, ROOT_CONTEXT));

const b3 = (injectEncoding: B3InjectEncoding) =>
  new CompositePropagator({
    propagators: [new B3Propagator({ injectEncoding }), new W3CBaggagePropagator()],
  });

describe("W3C trace context and baggage", () => {
  it("a caller's tracestate alone keeps our traceparent out: no tracestate on a span it was not for", async () => {
    register(w3cPropagator());
    const headers = await stored(withSpanAndBaggage, { tracestate: "vendor=caller" });
    expect(headers).toEqual({ tracestate: "vendor=caller", baggage: "tenant=acme" });
    expect(consumerReads(headers)).toBeUndefined();
  });

  it("a caller's baggage keeps ours out and our trace context in, whether or not baggage is active", async () => {
    register(w3cPropagator());
    for (const ctx of [withSpanAndBaggage, withSpan]) {
      expect(await stored(ctx, { Baggage: "mine=1" })).toEqual({
        baggage: "mine=1",
        traceparent: TRACEPARENT,
      });
    }
  });

  it("a caller who sets both groups gets nothing of ours; one who sets neither gets all of it", async () => {
    register(w3cPropagator());
    const own = `00-${CALLERS_TRACE}-${"2".repeat(16)}-00`;
    expect(await stored(withSpanAndBaggage, { traceparent: own, baggage: "mine=1" })).toEqual({
      traceparent: own,
      baggage: "mine=1",
    });
    expect(await stored(withSpanAndBaggage, { "content-type": "text/plain" })).toEqual({
      "content-type": "text/plain",
      traceparent: TRACEPARENT,
      baggage: "tenant=acme",
    });
  });
});

describe("B3 multi-header and baggage", () => {
  it("a caller's X-B3-TraceId alone: no span id of ours beside it", async () => {
    register(b3(B3InjectEncoding.MULTI_HEADER));
    const headers = await stored(withSpanAndBaggage, { "X-B3-TraceId": CALLERS_TRACE });
    expect(headers).toEqual({ "x-b3-traceid": CALLERS_TRACE, baggage: "tenant=acme" });
    expect(consumerReads(headers)).toBeUndefined();
  });

  it("a caller's X-B3-Sampled: 0 alone is not turned into our sampled trace", async () => {
    register(b3(B3InjectEncoding.MULTI_HEADER));
    const headers = await stored(withSpanAndBaggage, { "X-B3-Sampled": "0" });
    expect(headers).toEqual({ "x-b3-sampled": "0", baggage: "tenant=acme" });
    expect(consumerReads(headers)).toBeUndefined();
  });

  it("with nothing of the caller's in either group, all of ours is added", async () => {
    register(b3(B3InjectEncoding.MULTI_HEADER));
    expect(await stored(withSpanAndBaggage, { "x-a": "1" })).toEqual({
      "x-a": "1",
      "x-b3-traceid": TRACE,
      "x-b3-spanid": SPAN,
      "x-b3-sampled": "1",
      baggage: "tenant=acme",
    });
  });
});

describe("W3C trace context, B3 single header and baggage together", () => {
  it("a caller's b3: 0 (deny sampling) keeps our traceparent out too", async () => {
    register(
      new CompositePropagator({
        propagators: [new W3CTraceContextPropagator(), new B3Propagator(), new W3CBaggagePropagator()],
      }),
    );
    const headers = await stored(withSpanAndBaggage, { b3: "0" });
    expect(headers).toEqual({ b3: "0", baggage: "tenant=acme" });
    expect(consumerReads(headers)?.traceFlags ?? TraceFlags.NONE).toBe(TraceFlags.NONE);
  });
});
