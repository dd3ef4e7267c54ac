/**
 * A trace crosses the outbox end to end, with the real SDK and real propagators: a producer
 * span with baggage writes a message into a real libSQL database, the relay sends it with the
 * HTTP sender to a real receiver on 127.0.0.1, and the receiver's handler span, started from
 * `verifyWebhook`'s `context` with one line, continues the producer's trace and sees its baggage.
 */
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  type TextMapPropagator,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import { CompositePropagator, W3CBaggagePropagator } from "@opentelemetry/core";
import { B3InjectEncoding, B3Propagator } from "@opentelemetry/propagator-b3";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { afterEach, describe, expect, it } from "vitest";
import { httpSender, verifyWebhook } from "../../adapters/http.ts";
import type { LibsqlStore } from "../../adapters/libsql.ts";
import { Outbox } from "../../mod.ts";
import { dbPath, openStore, tempDir } from "../libsql/helpers.ts";
import { installContextManager, installPropagator, w3cPropagator } from "./support.ts";

const SECRET = `whsec_${Buffer.from("propagation test secret, 32 b!!").toString("base64")}`;

/** What the receiver's handler saw for one delivery. */
interface Handled {
  headers: IncomingHttpHeaders;
  body: string;
  /** The handler span's context and its parent's span id. */
  span: SpanContext;
  parentSpanId: string | undefined;
  /** The baggage active inside the handler span. */
  baggage: Record<string, string>;
}

const undo: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const u of undo.splice(0).reverse()) await u();
});

/** The global SDK pieces: context manager, propagator (if any) and a tracer provider (if `sdk`). */
function register(propagator: TextMapPropagator | undefined, sdk = true) {
  undo.push(installContextManager());
  if (propagator) undo.push(installPropagator(propagator));
  const exporter = new InMemorySpanExporter();
  if (sdk) {
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.setGlobalTracerProvider(provider);
    undo.push(async () => {
      trace.disable();
      await provider.shutdown();
    });
  }
  return exporter;
}

/** A Standard Webhooks receiver on 127.0.0.1 whose handler traces with `verified.context`. */
async function consumer() {
  const handled: Handled[] = [];
  const tracer = trace.getTracer("consumer");
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    try {
      const hook = await verifyWebhook(
        { headers: req.headers, body: new Uint8Array(Buffer.concat(chunks)) },
        SECRET,
      );
      // The one line of user code: the handler's span continues the producer's trace.
      tracer.startActiveSpan("handle order", {}, hook.context, (span) => {
        const baggage = propagation.getBaggage(context.active())?.getAllEntries() ?? [];
        handled.push({
          headers: req.headers,
          body: hook.text(),
          span: span.spanContext(),
          parentSpanId: trace.getSpanContext(hook.context)?.spanId,
          baggage: Object.fromEntries(baggage.map(([key, entry]) => [key, entry.value])),
        });
        span.end();
      });
      res.statusCode = 204;
    } catch {
      res.statusCode = 401;
    }
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  undo.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, handled };
}

/** An outbox over a fresh libSQL file, sending to `url`, with the global tracer. */
async function outboxTo(url: string) {
  const tmp = tempDir();
  const { store, close } = await openStore(`file:${dbPath(tmp.dir)}`);
  const outbox = new Outbox(store, httpSender({ url, secret: SECRET }));
  undo.push(async () => {
    await outbox[Symbol.asyncDispose]();
    await close();
    tmp.cleanup();
  });
  return { store, outbox };
}

/** Writes one message per body, each under its own producer span carrying `baggage`. */
async function produce(
  store: LibsqlStore,
  outbox: Outbox<Parameters<LibsqlStore["addMessage"]>[0]>,
  bodies: string[],
) {
  const tracer = trace.getTracer("producer");
  const producers = new Map<string, SpanContext>();
  for (const body of bodies) {
    await tracer.startActiveSpan("POST /orders", async (span) => {
      const baggage = propagation.createBaggage({ tenant: { value: "acme" }, "order.body": { value: body } });
      await context.with(propagation.setBaggage(context.active(), baggage), () =>
        store.withTransaction((tx) => outbox.addMessage(tx, { key: "orders", value: body })),
      );
      producers.set(body, span.spanContext());
      span.end();
    });
  }
  return producers;
}

const zipkin = (injectEncoding: B3InjectEncoding) =>
  new CompositePropagator({
    propagators: [new B3Propagator({ injectEncoding }), new W3CBaggagePropagator()],
  });

describe.each([
  { name: "W3C trace context + baggage", propagator: w3cPropagator, wire: ["traceparent", "baggage"] },
  {
    name: "B3 single header + baggage",
    propagator: () => zipkin(B3InjectEncoding.SINGLE_HEADER),
    wire: ["b3"],
  },
  {
    name: "B3 multi-header + baggage",
    propagator: () => zipkin(B3InjectEncoding.MULTI_HEADER),
    wire: ["x-b3-traceid", "x-b3-spanid", "x-b3-sampled"],
  },
])("$name", ({ propagator, wire }) => {
  it("the consumer's span continues the producer's trace and sees its baggage", async () => {
    const exporter = register(propagator());
    const receiver = await consumer();
    const { store, outbox } = await outboxTo(receiver.url);
    const producers = await produce(store, outbox, ["first", "second", "third"]);

    expect(await outbox.tick()).toMatchObject({ sent: 3, failed: 0, dead: 0 });
    expect(receiver.handled).toHaveLength(3);
    for (const handled of receiver.handled) {
      const producer = producers.get(handled.body) as SpanContext;
      // The wire carries the registered propagator's headers, and only those.
      for (const name of wire) expect(handled.headers[name]).toBeTypeOf("string");
      if (!wire.includes("traceparent")) expect(handled.headers.traceparent).toBeUndefined();
      // A child of the producer span itself (not of the relay's batch or anything in between).
      expect(handled.span.traceId).toBe(producer.traceId);
      expect(handled.parentSpanId).toBe(producer.spanId);
      expect(handled.baggage).toEqual({ tenant: "acme", "order.body": handled.body });
    }

    // The batch span links to each producer, read back from the stored headers.
    const spans = exporter.getFinishedSpans();
    const batch = spans.find((s) => s.name === "send outbox");
    expect(batch?.links.map((l) => l.context.spanId).sort()).toEqual(
      [...producers.values()].map((p) => p.spanId).sort(),
    );
    const handlers = spans.filter((s) => s.name === "handle order");
    expect(handlers.map((s) => s.parentSpanContext?.spanId).sort()).toEqual(
      [...producers.values()].map((p) => p.spanId).sort(),
    );
  });
});

describe("no SDK and no propagator registered", () => {
  const active: SpanContext = {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "00f067aa0ba902b7",
    traceFlags: TraceFlags.SAMPLED,
  };
  const producerContext = (): Context =>
    propagation.setBaggage(
      trace.setSpanContext(ROOT_CONTEXT, active),
      propagation.createBaggage({ tenant: { value: "acme" } }),
    );

  it("adds no header, sends as usual, and the consumer's context has no producer", async () => {
    register(undefined, false);
    const receiver = await consumer();
    const { store, outbox } = await outboxTo(receiver.url);
    await context.with(producerContext(), () =>
      store.withTransaction(async (tx) => {
        await outbox.addMessage(tx, { key: "k", value: "bare" });
        await outbox.addMessage(tx, { key: "k", value: "typed", headers: { "content-type": "text/plain" } });
      }),
    );

    expect(await outbox.tick()).toMatchObject({ sent: 2, failed: 0, dead: 0 });
    expect(receiver.handled.map((h) => h.body).sort()).toEqual(["bare", "typed"]);
    for (const handled of receiver.handled) {
      const names = Object.keys(handled.headers);
      expect(names.filter((n) => /traceparent|tracestate|baggage|b3/.test(n))).toEqual([]);
      expect(handled.parentSpanId).toBeUndefined();
      expect(handled.baggage).toEqual({});
    }
  });

  it("nothing registered at all (not even a context manager): still nothing added, nothing fails", async () => {
    const receiver = await consumer();
    const { store, outbox } = await outboxTo(receiver.url);
    await store.withTransaction((tx) => outbox.addMessage(tx, { key: "k", value: "plain" }));
    expect(await outbox.tick()).toMatchObject({ sent: 1 });
    expect(Object.keys(receiver.handled[0]?.headers ?? {}).filter((n) => /trace|baggage|b3/.test(n))).toEqual(
      [],
    );
  });
});

describe("a broken propagator", () => {
  const broken: Record<string, TextMapPropagator> = {
    "throws everywhere": {
      inject() {
        throw new Error("inject exploded");
      },
      extract() {
        throw new Error("extract exploded");
      },
      fields: () => [],
    },
    "writes garbage": {
      inject(_ctx, carrier, setter) {
        setter.set(carrier, "traceparent", "00-\r\nx-smuggled: 1");
        setter.set(carrier, "bad name", "v");
        setter.set(carrier, "x-nul", "a\0b");
        setter.set(carrier, "x-number", 42 as unknown as string);
        setter.set(carrier, "x-good", "kept");
      },
      extract: (ctx) => ctx,
      fields: () => [],
    },
    "returns no context from extract": {
      inject(_ctx, carrier, setter) {
        setter.set(carrier, "x-good", "kept");
      },
      extract: () => undefined as unknown as Context,
      fields: () => [],
    },
  };

  it.each(Object.keys(broken))("that %s never fails addMessage, the send or the receiver", async (name) => {
    register(broken[name]);
    const receiver = await consumer();
    const { store, outbox } = await outboxTo(receiver.url);
    await trace
      .getTracer("producer")
      .startActiveSpan("POST /orders", (span) =>
        store
          .withTransaction((tx) => outbox.addMessage(tx, { key: "k", value: "survives" }))
          .finally(() => span.end()),
      );
    expect(await outbox.tick()).toMatchObject({ sent: 1, failed: 0, dead: 0 });
    const [handled] = receiver.handled;
    expect(handled?.body).toBe("survives");
    expect(handled?.headers["x-smuggled"]).toBeUndefined();
    expect(handled?.headers.traceparent).toBeUndefined();
    expect(handled?.headers["x-good"]).toBe(name === "throws everywhere" ? undefined : "kept");
    expect(handled?.parentSpanId).toBeUndefined();
  });
});
