/**
 * Trace capture and reading through the global propagator: what `addMessage` stores, what a
 * caller's own headers change, and what a broken propagator cannot break.
 */
import {
  type Context,
  context,
  createContextKey,
  createTraceState,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  type TextMapPropagator,
  trace,
} from "@opentelemetry/api";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryStore } from "../../adapters/memory.ts";
import { extractTraceContext, Outbox } from "../../mod.ts";
import { injectTraceContext, producerSpanContext } from "../../src/trace-context.ts";
import { recordingSender } from "../support/senders.ts";
import { installContextManager, installPropagator, remote, TRACE, TRACEPARENT } from "./support.ts";

/** A context with a span and baggage, as a request handler's would be. */
function producerContext(spanContext: SpanContext = remote()): Context {
  const baggage = propagation.createBaggage({ tenant: { value: "acme" }, "user.id": { value: "42" } });
  return propagation.setBaggage(trace.setSpanContext(ROOT_CONTEXT, spanContext), baggage);
}

const undo: Array<() => void> = [];
afterEach(() => {
  for (const u of undo.splice(0).reverse()) u();
});
const register = (propagator?: TextMapPropagator) => undo.push(installPropagator(propagator));

describe("injectTraceContext with W3C trace context and baggage registered", () => {
  it("writes traceparent, tracestate and baggage", () => {
    register();
    expect(injectTraceContext({}, producerContext())).toEqual({
      traceparent: TRACEPARENT,
      baggage: "tenant=acme,user.id=42",
    });
    const withState = trace.setSpanContext(ROOT_CONTEXT, remote({ traceState: createTraceState("v=1") }));
    expect(injectTraceContext({}, withState)).toEqual({ traceparent: TRACEPARENT, tracestate: "v=1" });
  });

  it("writes nothing for a context without a span or baggage", () => {
    register();
    expect(injectTraceContext({}, ROOT_CONTEXT)).toEqual({});
    expect(
      injectTraceContext({}, trace.setSpanContext(ROOT_CONTEXT, remote({ traceId: "0".repeat(32) }))),
    ).toEqual({});
  });

  it("keeps the caller's trace context whole: no traceparent or tracestate of ours beside it", () => {
    register();
    const own = `00-${"1".repeat(32)}-${"2".repeat(16)}-00`;
    const ctx = propagation.extract(producerContext(), { traceparent: TRACEPARENT, tracestate: "ours=1" });
    // Baggage is a separate concern: the active one still goes along.
    expect(injectTraceContext({ traceparent: own }, ctx)).toEqual({
      traceparent: own,
      baggage: "tenant=acme,user.id=42",
    });
  });

  it("keeps the caller's baggage whole, and still adds the active trace context", () => {
    register();
    expect(injectTraceContext({ baggage: "mine=1" }, producerContext())).toEqual({
      baggage: "mine=1",
      traceparent: TRACEPARENT,
    });
  });

  it("never overwrites a caller's header of the same name, even one it cannot read", () => {
    register();
    expect(injectTraceContext({ traceparent: "not-a-trace" }, producerContext())).toMatchObject({
      traceparent: "not-a-trace",
      baggage: "tenant=acme,user.id=42",
    });
  });
});

describe("with no propagator registered", () => {
  it("adds no header and reads no context", () => {
    expect(injectTraceContext({}, producerContext())).toEqual({});
    expect(injectTraceContext({ "x-a": "1" }, producerContext())).toEqual({ "x-a": "1" });
    expect(producerSpanContext({ traceparent: TRACEPARENT })).toBeUndefined();
    expect(extractTraceContext({ traceparent: TRACEPARENT }, ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
  });
});

describe("extractTraceContext", () => {
  const key = createContextKey("receiver's own value");

  it("reads fetch Headers and Node-style records (any case, repeated headers)", () => {
    register();
    const fromHeaders = extractTraceContext(
      new Headers({ TraceParent: TRACEPARENT, Baggage: "tenant=acme" }),
      ROOT_CONTEXT,
    );
    expect(trace.getSpanContext(fromHeaders)).toEqual(remote());
    expect(propagation.getBaggage(fromHeaders)?.getEntry("tenant")?.value).toBe("acme");

    const fromRecord = extractTraceContext(
      { TRACEPARENT: TRACEPARENT, baggage: ["tenant=acme", "user.id=42"], "x-odd": undefined },
      ROOT_CONTEXT,
    );
    expect(trace.getSpanContext(fromRecord)).toEqual(remote());
    expect(
      propagation
        .getBaggage(fromRecord)
        ?.getAllEntries()
        .map(([k]) => k),
    ).toEqual(["tenant", "user.id"]);
  });

  it("lists header names in lowercase for propagators that scan them (Jaeger's uberctx-*)", () => {
    const seen: string[][] = [];
    register({
      inject() {},
      extract(ctx, carrier, getter) {
        seen.push(getter.keys(carrier).sort());
        return ctx;
      },
      fields: () => [],
    });
    extractTraceContext(new Headers({ "UberCtx-Tenant": "acme", Accept: "*/*" }), ROOT_CONTEXT);
    extractTraceContext({ "UberCtx-Tenant": "acme", accept: ["*/*"] }, ROOT_CONTEXT);
    expect(seen).toEqual([
      ["accept", "uberctx-tenant"],
      ["accept", "uberctx-tenant"],
    ]);
  });

  it("builds on the active context by default, and gives it back when there is nothing to read", () => {
    register();
    undo.push(installContextManager());
    const active = ROOT_CONTEXT.setValue(key, "kept");
    context.with(active, () => {
      const ctx = extractTraceContext({ traceparent: TRACEPARENT });
      expect(ctx.getValue(key)).toBe("kept");
      expect(trace.getSpanContext(ctx)?.traceId).toBe(TRACE);
      expect(extractTraceContext({ "content-type": "text/plain" })).toBe(active);
      // Garbage in a header is the propagator's to ignore.
      expect(extractTraceContext({ traceparent: "00-garbage" })).toBe(active);
    });
  });
});

/** A propagator that throws on every call. */
const throwing: TextMapPropagator = {
  inject() {
    throw new Error("inject exploded");
  },
  extract() {
    throw new Error("extract exploded");
  },
  fields: () => ["x-broken"],
};

/** A propagator that writes every kind of bad header, and one good one. */
const garbage: TextMapPropagator = {
  inject(_ctx, carrier, setter) {
    setter.set(carrier, "bad name", "v");
    setter.set(carrier, "x-crlf", "a\r\nx-injected: 1");
    setter.set(carrier, "x-nul", "a\0b");
    setter.set(carrier, "x-number", 42 as unknown as string);
    setter.set(carrier, "", "empty name");
    setter.set(carrier, 7 as unknown as string, "numeric name");
    setter.set(carrier, "content-type", "text/evil");
    setter.set(carrier, "X-Good", "fine");
    setter.set(carrier, "x-twice", "first");
    setter.set(carrier, "x-twice", "second");
  },
  extract: (ctx) => ctx,
  fields: () => [],
};

describe("Outbox.addMessage", () => {
  /** The headers of the messages `add` wrote, as the relay handed them to the sender. */
  async function stored(add: (outbox: Outbox<unknown>, store: MemoryStore) => Promise<void>) {
    const store = new MemoryStore();
    const sent: Array<Record<string, string>> = [];
    const sender = recordingSender((m) => {
      sent.push({ ...m.headers });
      m.markAsSent();
    });
    const outbox = new Outbox(store, sender) as Outbox<unknown>;
    await add(outbox, store);
    // Whatever was stored is sendable: the relay hands it to the sender and records it.
    const result = await outbox.tick();
    await outbox[Symbol.asyncDispose]();
    expect(result).toMatchObject({ sent: sent.length, failed: 0, dead: 0 });
    return sent;
  }

  it("stores the active context through the registered propagator; the caller's headers win", async () => {
    register();
    undo.push(installContextManager());
    const headers = await stored((outbox, store) =>
      context.with(producerContext(), () =>
        store.transaction(async (tx) => {
          await outbox.addMessage(tx, { key: "k", value: "v", headers: { "x-a": "1" } });
          await outbox.addMessage(tx, { key: "k", value: "v", headers: { Traceparent: "own" } });
        }),
      ),
    );
    expect(headers).toEqual([
      { "x-a": "1", traceparent: TRACEPARENT, baggage: "tenant=acme,user.id=42" },
      { traceparent: "own", baggage: "tenant=acme,user.id=42" },
    ]);
  });

  it("stores no trace headers when no span or baggage is active", async () => {
    register();
    const headers = await stored((outbox, store) =>
      store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "v" })),
    );
    expect(headers).toEqual([{}]);
  });

  it("a propagator that throws adds nothing and fails nothing", async () => {
    register(throwing);
    undo.push(installContextManager());
    const headers = await stored((outbox, store) =>
      context.with(producerContext(), () =>
        store.transaction(async (tx) => {
          await outbox.addMessage(tx, { key: "k", value: "v" });
          await outbox.addMessage(tx, { key: "k", value: "v", headers: { "x-a": "1" } });
        }),
      ),
    );
    expect(headers).toEqual([{}, { "x-a": "1" }]);
    expect(producerSpanContext({ traceparent: TRACEPARENT })).toBeUndefined();
    expect(extractTraceContext({ traceparent: TRACEPARENT }, ROOT_CONTEXT)).toBe(ROOT_CONTEXT);
  });

  it("a propagator that writes invalid headers has them dropped, the valid ones kept", async () => {
    register(garbage);
    const headers = await stored((outbox, store) =>
      store.transaction(async (tx) => {
        await outbox.addMessage(tx, { key: "k", value: "v" });
        await outbox.addMessage(tx, {
          key: "k",
          value: "v",
          headers: { "content-type": "application/json" },
        });
      }),
    );
    expect(headers).toEqual([
      { "content-type": "text/evil", "x-good": "fine", "x-twice": "second" },
      // It writes the same headers whatever the context holds, so each is in both the span's
      // group and the baggage's: the caller's content-type claims both, and nothing is added.
      { "content-type": "application/json" },
    ]);
  });
});
