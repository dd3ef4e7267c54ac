/**
 * Benchmark 8: the relay's cost with no OpenTelemetry SDK (the API's no-ops) against an SDK with
 * in-memory exporters, passed as the `meter` and `tracer` options.
 */
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { MemoryStore } from "../adapters/memory.ts";
import { Outbox, type OutboxOptions } from "../mod.ts";
import { type Benchmark, num, ratio, type Section } from "./lib/report.ts";
import { nullSender } from "./lib/senders.ts";
import { interleaved, median } from "./lib/stats.ts";
import { preparedOrders } from "./lib/workload.ts";

/** Fills a fresh MemoryStore with `n` messages and drains it; returns messages per second. */
async function drain(n: number, batchSize: number, options: OutboxOptions): Promise<number> {
  const store = new MemoryStore();
  const messages = preparedOrders(n);
  await store.transaction(async (tx) => {
    for (const m of messages) await store.addMessage(tx, m);
  });
  const outbox = new Outbox(store, nullSender, { batchSize, ...options });
  const result = await outbox.tick();
  if (result.sent !== n) throw new Error(`expected ${n} sent, got ${result.sent}`);
  return n / (result.durationMs / 1000);
}

export const telemetryBenchmark: Benchmark = {
  id: 8,
  slug: "otel",
  title: "OpenTelemetry: no SDK vs SDK with in-memory exporters",
  async run({ quick }): Promise<Section> {
    const n = quick ? 5_000 : 50_000;
    const plan = quick ? { warmup: 1, rounds: 3 } : { warmup: 1, rounds: 7 };
    const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({
      exporter: metricExporter,
      exportIntervalMillis: 1000,
    });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const spanExporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(spanExporter)],
    });
    const withSdk: OutboxOptions = {
      meter: meterProvider.getMeter("edge-outbox"),
      tracer: tracerProvider.getTracer("edge-outbox"),
    };
    const rows: string[][] = [];
    let worst = Number.POSITIVE_INFINITY;
    try {
      for (const batchSize of [10, 100]) {
        const { a: noSdk, b: sdk } = await interleaved(
          plan,
          () => drain(n, batchSize, {}),
          async () => {
            spanExporter.reset();
            return drain(n, batchSize, withSdk);
          },
        );
        const r = median(sdk) / median(noSdk);
        worst = Math.min(worst, r);
        rows.push([String(batchSize), num(median(noSdk)), num(median(sdk)), ratio(r)]);
      }
      await reader.forceFlush();
    } finally {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    }
    return {
      id: 8,
      title: this.title,
      target: "informational (SDK overhead as a ratio of the no-SDK throughput)",
      verdict: "info",
      tables: [
        {
          header: ["batch size", "no SDK (msg/s)", "SDK, in-memory exporters (msg/s)", "ratio SDK / no SDK"],
          rows,
        },
      ],
      notes: [
        `MemoryStore and a null sender, so the relay's own work (and its telemetry) is all there is to measure; ${num(n)} messages per round, median of ${plan.rounds} rounds.`,
        "SDK: MeterProvider with a PeriodicExportingMetricReader over InMemoryMetricExporter, BasicTracerProvider with SimpleSpanProcessor over InMemorySpanExporter (a span is exported as it ends).",
        `Worst ratio: ${ratio(worst)}.`,
      ],
    };
  },
};
