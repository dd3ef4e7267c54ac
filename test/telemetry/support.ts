/**
 * OpenTelemetry test rig: a real SDK (metrics and traces, in memory), the AsyncLocalStorage
 * context manager, real propagators, and a loopback HTTP receiver (node:http on 127.0.0.1).
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  context,
  propagation,
  type SpanContext,
  type TextMapPropagator,
  TraceFlags,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
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
 * Installs the real `AsyncLocalStorageContextManager` globally (without a context manager
 * `context.with` makes nothing active); returns the undo.
 */
export function installContextManager(): () => void {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  return () => context.disable();
}

/** W3C trace context and baggage: the propagator the OpenTelemetry SDKs register by default. */
export function w3cPropagator(): TextMapPropagator {
  return new CompositePropagator({
    propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
  });
}

/** Registers `propagator` globally; returns the undo. */
export function installPropagator(propagator: TextMapPropagator = w3cPropagator()): () => void {
  propagation.setGlobalPropagator(propagator);
  return () => propagation.disable();
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

/** A remote parent's trace id, span id and `traceparent`, shared by the trace-context suites. */
export const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
export const SPAN = "00f067aa0ba902b7";
export const TRACEPARENT = `00-${TRACE}-${SPAN}-01`;

/** The sampled remote span context of {@link TRACE}/{@link SPAN}, with `extra` fields over it. */
export const remote = (extra: Partial<SpanContext> = {}): SpanContext => ({
  traceId: TRACE,
  spanId: SPAN,
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
  ...extra,
});
