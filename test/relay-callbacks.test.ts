/**
 * Every function of the user's that the relay calls (onError, the sender, a meter, a tracer) is
 * contained: a throw is reported, never crashes the process, never kills the loop and never
 * loses an outcome already decided.
 */
import type { Meter, Tracer } from "@opentelemetry/api";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { CallbackError, type Message, Outbox, type OutboxOptions, SendError, type Sender } from "../mod.ts";
import { recordingSender, waitFor } from "./support/senders.ts";
import { failingClaims } from "./support/stores.ts";

const parked: OutboxOptions = { backoff: { initialDelay: 60_000, maxDelay: 60_000 } };
const outboxes: Outbox<unknown>[] = [];
let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
let consoleError: ReturnType<typeof vi.spyOn>;

beforeEach(() => {
  unhandled = [];
  process.on("unhandledRejection", onUnhandled);
  consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
});
afterEach(async () => {
  await Promise.all(outboxes.splice(0).map((o) => o[Symbol.asyncDispose]()));
  // Rejections are reported after a macrotask: give them one before looking.
  await new Promise((resolve) => setTimeout(resolve, 10));
  process.off("unhandledRejection", onUnhandled);
  consoleError.mockRestore();
  expect(unhandled).toEqual([]);
});

async function setup(sender: Sender, options: OutboxOptions, count = 3, store = new MemoryStore()) {
  const outbox = new Outbox(store, sender, options) as Outbox<unknown>;
  outboxes.push(outbox);
  await store.transaction(async (tx) => {
    for (let i = 0; i < count; i++) await outbox.addMessage(tx, { key: `k${i}`, value: `v${i}` });
  });
  return { store, outbox };
}

/** A value on which `instanceof`, property reads and `String()` all throw. */
function hostileProxy(): object {
  const trap = () => {
    throw new Error("trap");
  };
  return new Proxy({}, { getPrototypeOf: trap, get: trap, has: trap, ownKeys: trap });
}

const throwingOnError = () => {
  throw new Error("onError broke");
};

describe("an onError that throws", () => {
  it("neither crashes the loop nor loses the sent outcome; the throw goes to console.error", async () => {
    let calls = 0;
    const delivered: string[] = [];
    // Marks the first message sent, then throws: the onError that hears of it throws too.
    const sender: Sender = {
      async send(messages) {
        calls += 1;
        messages[0]!.markAsSent();
        delivered.push(messages[0]!.id);
        throw new Error("connection reset");
      },
    };
    const { store, outbox } = await setup(sender, {
      ...parked,
      period: 5,
      batchSize: 1,
      onError: throwingOnError,
    });
    outbox.start();
    await waitFor(() => calls >= 3);
    await outbox.stop();
    // Each message was sent once and recorded as sent: none is still leased, none comes back.
    expect(new Set(delivered).size).toBe(delivered.length);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
    const lines = consoleError.mock.calls.map((args: unknown[]) => args.map(String).join(" "));
    expect(lines[0]).toMatch(/onError threw \(onError broke\) while reporting/);
  });

  it("keeps the loop alive through store errors when onError throws", async () => {
    const store = new MemoryStore();
    const flaky = failingClaims(store, 3);
    const sender = recordingSender();
    const { outbox } = await setup(sender, { period: 5, onError: throwingOnError }, 2, flaky as MemoryStore);
    outbox.start();
    await waitFor(() => sender.delivered.length === 2);
  });

  it("an async onError that rejects leaves no unhandled rejection; tick() resolves", async () => {
    const sender: Sender = {
      send: () => {
        throw new Error("sync throw");
      },
    };
    const { outbox } = await setup(sender, {
      ...parked,
      onError: async () => {
        throw new Error("async onError broke");
      },
    });
    expect(await outbox.tick()).toMatchObject({ batches: 1, failed: 3 });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(consoleError).toHaveBeenCalled();
  });

  it("a lost lease reported to a throwing onError still records the rest of the pass", async () => {
    const store = new MemoryStore();
    const sender = recordingSender((m) =>
      m.key === "k0" ? m.markAsSent() : m.markAsDead({ error: "HTTP 404" }),
    );
    const stale = new Proxy(store, {
      get(target, name, receiver) {
        // markAsSent reports a short count (another relay took the message over).
        if (name === "markAsSent") return async () => 0;
        if (name === "recordAndFetch") return undefined;
        const value = Reflect.get(target, name, receiver);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const { outbox } = await setup(sender, { onError: throwingOnError }, 3, stale as MemoryStore);
    expect(await outbox.tick()).toMatchObject({ sent: 0, dead: 2 });
    expect((await store.listDead()).map((m) => m.key)).toEqual(["k1", "k2"]);
  });
});

describe("a sender that misbehaves", () => {
  const cases: Array<[string, (messages: Message[]) => unknown]> = [
    [
      "throws synchronously",
      () => {
        throw new Error("sync");
      },
    ],
    ["rejects", async () => Promise.reject(new Error("async"))],
    [
      "throws a value whose toString throws",
      () => {
        throw {
          toString() {
            throw new Error("nope");
          },
        };
      },
    ],
    [
      "throws a Proxy whose getPrototypeOf trap throws",
      () => {
        throw hostileProxy();
      },
    ],
    ["returns null", async () => null],
    ["returns a number", async () => 42],
    ["returns a string", async () => "ok"],
    ["returns an array of strangers", async () => [{ id: "x" }, null, 3]],
  ];
  for (const [name, send] of cases) {
    it(`that ${name} fails its unmarked messages, is reported, and the outbox relays on`, async () => {
      const errors: unknown[] = [];
      let broken = true;
      const healthy = recordingSender();
      const sender: Sender = {
        send: (messages, signal) => {
          if (!broken) return healthy.send(messages, signal);
          broken = false;
          return send(messages) as Promise<Message[]>;
        },
      };
      const { store, outbox } = await setup(sender, {
        backoff: { initialDelay: 0, maxDelay: 0 },
        onError: (e) => errors.push(e),
      });
      // The first attempt fails; the same tick retries at once and delivers.
      expect(await outbox.tick()).toMatchObject({ batches: 2, sent: 3, failed: 3, dead: 0 });
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(SendError);
      expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0, dead: 0 });
    });
  }

  it("throwing a Proxy whose traps throw, after marking one sent: the tick resolves, the mark is kept, with the default log and a tracer", async () => {
    const exporter = new InMemorySpanExporter();
    const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer(
      "t",
    );
    const sender: Sender = {
      async send(messages) {
        messages[0]?.markAsSent();
        throw hostileProxy();
      },
    };
    // No onError: the default log classifies the value too.
    const { store, outbox } = await setup(sender, { ...parked, tracer });
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 1, failed: 2, dead: 0 });
    expect(await store.stats()).toMatchObject({ pending: 2, inFlight: 0, dead: 0 });
    expect(consoleError).toHaveBeenCalled();
    const batch = exporter.getFinishedSpans().find((span) => span.attributes["error.type"] !== undefined);
    expect(batch?.attributes["error.type"]).toBe("SEND_FAILED");
  });

  it("cannot change the dead-or-retry verdict by writing to message.retries", async () => {
    let attempts = 0;
    const sender: Sender = {
      async send(messages) {
        for (const m of messages) {
          attempts += 1;
          m.markAsFailed({ retryAfter: 0, error: "503" });
          (m as { retries: number }).retries = -1000;
        }
        return messages;
      },
    };
    const { store, outbox } = await setup(sender, { maxRetries: 1, onError: () => {} }, 1);
    for (let i = 0; i < 5; i++) await outbox.tick();
    expect(attempts).toBe(2);
    const dead = await store.listDead();
    expect(dead.map((m) => [m.retries, m.lastError])).toEqual([[1, "503"]]);
  });

  it("records as sent what it marked sent, even when it returns strangers or rearranges its array", async () => {
    const errors: unknown[] = [];
    const sender: Sender = {
      async send(messages) {
        for (const m of messages) m.markAsSent();
        const strangers = [{ id: "msg_forged_1", status: 1 }] as unknown as Message[];
        messages.splice(0, messages.length, ...strangers);
        return messages;
      },
    };
    const { store, outbox } = await setup(sender, { onError: (e) => errors.push(e) });
    expect(await outbox.tick()).toMatchObject({ sent: 3, failed: 0 });
    expect(errors.map((e) => (e as SendError).code)).toEqual(["MALFORMED_SEND_RESULT"]);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
  });

  it("cannot change an outcome after its deadline, by mark or by assignment", async () => {
    let late: Message[] = [];
    const sender: Sender = {
      send(messages) {
        late = messages;
        return new Promise(() => {});
      },
    };
    const { store, outbox } = await setup(sender, { ...parked, sendTimeout: 20, onError: () => {} }, 1);
    expect(await outbox.tick()).toMatchObject({ failed: 1 });
    late[0]!.markAsSent();
    expect(() => {
      (late[0] as { status: number }).status = 1;
    }).toThrow(TypeError);
    expect(late[0]!.status).toBe(2);
    expect(await store.stats()).toMatchObject({ pending: 1 });
  });

  it("an error that is not a string is kept as text", async () => {
    const sender = recordingSender((m) => m.markAsDead({ error: { code: 404 } as unknown as string }));
    const { store, outbox } = await setup(sender, {}, 1);
    await outbox.tick();
    expect((await store.listDead())[0]!.lastError).toBe("[object Object]");
  });
});

/** Wraps `target` so that the named methods throw. */
function throwing<T extends object>(
  target: T,
  names: string[],
  wrap: (value: unknown) => unknown = (v) => v,
): T {
  return new Proxy(target, {
    get(object, name, receiver) {
      const value = Reflect.get(object, name, receiver);
      if (typeof value !== "function") return value;
      if (names.includes(String(name))) {
        return () => {
          throw new Error(`${String(name)} is broken`);
        };
      }
      return (...args: unknown[]) => wrap(value.apply(object, args));
    },
  });
}

describe("a meter or tracer that throws", () => {
  it("costs only its telemetry: every message is delivered and recorded, each broken method reported once", async () => {
    const meter = new MeterProvider().getMeter("test");
    // Instruments whose add/record throw, and a meter whose batch callback registration throws.
    const brokenMeter = throwing(meter, ["addBatchObservableCallback"], (instrument) =>
      typeof instrument === "object" && instrument !== null
        ? throwing(instrument, ["add", "record"])
        : instrument,
    );
    const exporter = new InMemorySpanExporter();
    const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer(
      "t",
    );
    const brokenTracer = throwing(tracer, [], (span) =>
      typeof span === "object" && span !== null ? throwing(span, ["end", "setAttributes", "addLinks"]) : span,
    );
    const errors: unknown[] = [];
    const sender = recordingSender();
    const { store, outbox } = await setup(
      sender,
      { batchSize: 2, meter: brokenMeter, tracer: brokenTracer, onError: (e) => errors.push(e) },
      5,
    );
    expect(await outbox.tick()).toMatchObject({ batches: 3, sent: 5 });
    expect(await outbox.tick()).toMatchObject({ batches: 0 });
    expect(sender.delivered).toHaveLength(5);
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
    expect(errors.every((e) => e instanceof CallbackError)).toBe(true);
    const reported = errors.map((e) => (e as CallbackError).callback).sort();
    expect(reported).toEqual([
      "counter.add",
      "histogram.record",
      "meter.addBatchObservableCallback",
      "span.end",
      "span.setAttributes",
    ]);
    expect((errors[0] as CallbackError).code).toBe("CALLBACK_FAILED");
  });

  it("whose methods return rejected promises: no unhandled rejection (from new Outbox on), each reported once, all delivered", async () => {
    const reject = async () => {
      throw new Error("meter down");
    };
    const instrument = { add: reject, record: reject };
    const meter = {
      createCounter: () => instrument,
      createHistogram: () => instrument,
      createObservableGauge: () => ({}),
      addBatchObservableCallback: reject,
      removeBatchObservableCallback: reject,
    } as unknown as Meter;
    const span = {
      spanContext: () => ({ traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 0 }),
      isRecording: () => true,
      ...Object.fromEntries(
        [
          "setAttribute",
          "setAttributes",
          "addEvent",
          "addLink",
          "addLinks",
          "setStatus",
          "updateName",
          "end",
          "recordException",
        ].map((name) => [name, reject]),
      ),
    };
    const tracer = { startSpan: () => span, startActiveSpan: reject } as unknown as Tracer;
    const errors: unknown[] = [];
    const sender = recordingSender();
    const { store, outbox } = await setup(sender, { meter, tracer, onError: (e) => errors.push(e) });
    expect(await outbox.tick()).toMatchObject({ batches: 1, sent: 3 });
    await outbox[Symbol.asyncDispose]();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await store.stats()).toMatchObject({ pending: 0, inFlight: 0 });
    const reported = errors.map((e) => (e as CallbackError).callback);
    expect(errors.every((e) => e instanceof CallbackError)).toBe(true);
    expect(reported).toContain("meter.addBatchObservableCallback");
    expect(reported).toContain("counter.add");
    expect(reported).toContain("span.end");
    expect(new Set(reported).size).toBe(reported.length);
    // afterEach asserts no unhandled rejection.
  });

  it("a tracer whose startSpan throws and a meter whose factories throw still let the loop deliver", async () => {
    const meter = throwing(new MeterProvider().getMeter("test"), [
      "createCounter",
      "createHistogram",
      "createObservableGauge",
    ]);
    const tracer = throwing(new BasicTracerProvider().getTracer("t"), ["startSpan"]);
    const errors: unknown[] = [];
    const sender = recordingSender();
    const { outbox } = await setup(sender, { period: 5, meter, tracer, onError: (e) => errors.push(e) });
    outbox.start();
    await waitFor(() => sender.delivered.length === 3);
    expect(errors.map((e) => (e as CallbackError).callback)).toContain("tracer.startSpan");
    expect(errors.map((e) => (e as CallbackError).callback)).toContain("meter.createCounter");
  });
});
