/**
 * OpenTelemetry test rig: a real SDK (metrics and traces, in memory), an AsyncLocalStorage
 * context manager, and a loopback HTTP receiver (node:http on 127.0.0.1).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type Context, type ContextManager, context, ROOT_CONTEXT } from "@opentelemetry/api";
import {
  type DataPoint,
  type Histogram,
  MeterProvider,
  type MetricData,
  MetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { afterEach } from "vitest";
import type { MemoryStore } from "../../adapters/memory.ts";
import { Outbox, type OutboxOptions, type Sender } from "../../mod.ts";

/**
 * What `@opentelemetry/context-async-hooks` does, in a few lines: the active context follows
 * async calls. Without a context manager `context.with` does not make anything active.
 */
export class TestContextManager implements ContextManager {
  readonly #storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#storage.disable();
    return this;
  }
}

/** Installs {@link TestContextManager} globally; returns the undo. */
export function installContextManager(): () => void {
  context.setGlobalContextManager(new TestContextManager());
  return () => context.disable();
}

/** A metric reader that collects when the test asks. */
class TestReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

/** A real SDK with in-memory readers; pass `meter` and `tracer` as Outbox options. */
export function otel() {
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const meter = meterProvider.getMeter("edge-outbox");
  const tracer = tracerProvider.getTracer("edge-outbox");
  /** Every metric of one collection, by name. */
  async function collect(): Promise<Map<string, MetricData>> {
    const { resourceMetrics, errors } = await reader.collect();
    if (errors.length > 0) throw errors[0];
    const byName = new Map<string, MetricData>();
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
    }
    return byName;
  }
  return {
    meter,
    tracer,
    collect,
    spans: (): ReadableSpan[] => exporter.getFinishedSpans(),
    async shutdown() {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

/** Cleanups for the running test, run newest first after each test of a file that calls {@link useCleanups}. */
const cleanups: Array<() => Promise<void>> = [];

/** Registers the `afterEach` that runs the cleanups queued with {@link onCleanup}. */
export function useCleanups(): void {
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
}

/** Queues `cleanup` for the end of the current test. */
export function onCleanup(cleanup: () => Promise<void>): void {
  cleanups.push(cleanup);
}

/**
 * An Outbox over `store` with its own SDK rig passed as `meter` and `tracer`; errors go to
 * `errors`. Disposed (and the rig shut down) after the test.
 */
export function instrumented<S extends MemoryStore>(store: S, sender: Sender, options: OutboxOptions = {}) {
  const rig = otel();
  const errors: unknown[] = [];
  const outbox = new Outbox(store, sender, {
    meter: rig.meter,
    tracer: rig.tracer,
    onError: (e) => errors.push(e),
    ...options,
  }) as Outbox<unknown>;
  onCleanup(async () => {
    await outbox[Symbol.asyncDispose]();
    await rig.shutdown();
  });
  return { rig, store, outbox, errors };
}

/** The value of the point whose attributes include `match` (0 when there is none). */
export function pointValue(metric: MetricData | undefined, match: Record<string, unknown> = {}): number {
  const point = findPoint(metric, match);
  if (point === undefined) return 0;
  const value = point.value as number | Histogram;
  return typeof value === "number" ? value : value.count;
}

/** The point whose attributes include `match`. */
export function findPoint(
  metric: MetricData | undefined,
  match: Record<string, unknown>,
): DataPoint<unknown> | undefined {
  const points = (metric?.dataPoints ?? []) as DataPoint<unknown>[];
  return points.find((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v));
}

/** What the loopback receiver got: one entry per request. */
export interface Received {
  id: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A node:http receiver on 127.0.0.1. `status` decides each response (default 200);
 * `received` lists every request, including failed ones.
 */
export async function receiver(status: (request: Received) => number = () => 200) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request = {
        id: String(req.headers["webhook-id"]),
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      received.push(request);
      res.statusCode = status(request);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
