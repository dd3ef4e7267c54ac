/**
 * `verifyWebhook(...).context` builds on the context active when verifyWebhook was CALLED, also
 * under a context manager that does not follow awaits (the web `StackContextManager`, or a Worker
 * set up without AsyncLocalStorage), and is never undefined, whatever the propagator returns.
 * Deliveries are real: signed by httpSender, received by a node:http server on 127.0.0.1.
 */
import {
  type Context,
  type ContextManager,
  context,
  createContextKey,
  propagation,
  ROOT_CONTEXT,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import { afterEach, describe, expect, it } from "vitest";
import { httpSender, verifyWebhook } from "../../adapters/http.ts";
import { MemoryStore } from "../../adapters/memory.ts";
import { Outbox } from "../../mod.ts";
import { installPropagator, receiver } from "./support.ts";

const SECRET = `whsec_${Buffer.from("propagation test secret, 32 b!!").toString("base64")}`;
const SERVER = createContextKey("server request");
const serverContext = trace.setSpanContext(ROOT_CONTEXT.setValue(SERVER, "POST /hook"), {
  traceId: "a".repeat(32),
  spanId: "b".repeat(16),
  traceFlags: TraceFlags.SAMPLED,
});

/**
 * A synchronous context manager, as the web SDK's `StackContextManager` is (that package is not
 * installed here): `with` makes a context active only until `fn` returns, so after an await
 * inside it the root context is active again.
 */
class StackContextManager implements ContextManager {
  #current: Context = ROOT_CONTEXT;
  active(): Context {
    return this.#current;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const previous = this.#current;
    this.#current = ctx;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#current = previous;
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#current = ROOT_CONTEXT;
    return this;
  }
}

const undo: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const u of undo.splice(0).reverse()) await u();
});

/** One delivery of a message added under `producer`, as the receiver got it. */
async function delivery(producer: Context = ROOT_CONTEXT) {
  const http = await receiver(() => 204);
  undo.push(http.close);
  const store = new MemoryStore();
  const outbox = new Outbox(store, httpSender({ url: http.url, secret: SECRET }));
  undo.push(() => outbox[Symbol.asyncDispose]());
  await context.with(producer, () =>
    store.transaction((tx) => outbox.addMessage(tx, { key: "k", value: "{}" })),
  );
  expect(await outbox.tick()).toMatchObject({ sent: 1 });
  const [received] = http.received;
  return { headers: received?.headers ?? {}, body: received?.body ?? "" };
}

describe("under a context manager that does not follow awaits", () => {
  it("a delivery without trace headers gives the context active at the call", async () => {
    context.setGlobalContextManager(new StackContextManager());
    undo.push(() => context.disable());
    undo.push(installPropagator());
    const parts = await delivery();
    expect(parts.headers.traceparent).toBeUndefined();
    const hook = await context.with(serverContext, () => verifyWebhook(parts, SECRET));
    expect(hook.context.getValue(SERVER)).toBe("POST /hook");
    expect(trace.getSpanContext(hook.context)?.spanId).toBe("b".repeat(16));
  });

  it("a delivery with trace headers gives the producer's span on top of the context active at the call", async () => {
    context.setGlobalContextManager(new StackContextManager());
    undo.push(() => context.disable());
    undo.push(installPropagator());
    const producer = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: "1".repeat(32),
      spanId: "2".repeat(16),
      traceFlags: TraceFlags.SAMPLED,
    });
    const parts = await delivery(producer);
    const hook = await context.with(serverContext, () => verifyWebhook(parts, SECRET));
    expect(hook.context.getValue(SERVER)).toBe("POST /hook");
    expect(trace.getSpanContext(hook.context)).toMatchObject({
      traceId: "1".repeat(32),
      spanId: "2".repeat(16),
    });
  });
});

it("a propagator whose extract() returns nothing still gives a context", async () => {
  undo.push(
    installPropagator({
      inject() {},
      extract: () => undefined as unknown as Context,
      fields: () => [],
    }),
  );
  const parts = await delivery();
  const hook = await verifyWebhook(parts, SECRET);
  expect(hook.context).toBe(ROOT_CONTEXT);
  expect(propagation.getBaggage(hook.context)).toBeUndefined();
});
