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
import { LibsqlStore, type LibsqlTx } from "../adapters/libsql.ts";
import { MemoryStore } from "../adapters/memory.ts";
import { Outbox, type OutboxOptions } from "../mod.ts";
import { type Benchmark, num, ratio, type Section } from "./lib/report.ts";
import { nullSender } from "./lib/senders.ts";
import { interleave, median } from "./lib/stats.ts";
import { openStore, timedDrain } from "./lib/store.ts";
import { preparedOrders } from "./lib/workload.ts";

/** Fills a fresh MemoryStore with `n` messages and drains it; returns messages per second. */
async function drainMemory(n: number, batchSize: number, options: OutboxOptions): Promise<number> {
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
  async run({ quick, tmpDir }): Promise<Section> {
    const plan = quick ? { warmup: 1, rounds: 5 } : { warmup: 2, rounds: 21 };
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
    let worstLibsql = Number.POSITIVE_INFINITY;
    const fixture = await openStore(tmpDir, "otel");
    const sdkStore = new LibsqlStore(fixture.client, { table: "otel_sdk" });
    await sdkStore.migrate();
    try {
      for (const batchSize of [10, 100]) {
        const n = batchSize * 20;
        const [noSdk, sdk] = (await interleave(plan, [
          () => drainMemory(n * 5, batchSize, {}),
          async () => {
            spanExporter.reset();
            return drainMemory(n * 5, batchSize, withSdk);
          },
        ])) as [number[], number[]];
        rows.push([
          "MemoryStore",
          String(batchSize),
          num(median(noSdk)),
          num(median(sdk)),
          ratio(median(sdk) / median(noSdk)),
        ]);
        const plain = new Outbox<LibsqlTx>(fixture.store, nullSender, { batchSize });
        const traced = new Outbox<LibsqlTx>(sdkStore, nullSender, { batchSize, ...withSdk });
        const [libNo, libSdk] = (await interleave(plan, [
          () => timedDrain(fixture.store, n, async () => (await plain.tick()).sent),
          async () => {
            spanExporter.reset();
            return timedDrain(sdkStore, n, async () => (await traced.tick()).sent);
          },
        ])) as [number[], number[]];
        const r = median(libSdk) / median(libNo);
        worstLibsql = Math.min(worstLibsql, r);
        rows.push([
          "LibsqlStore (file)",
          String(batchSize),
          num(median(libNo)),
          num(median(libSdk)),
          ratio(r),
        ]);
      }
      await reader.forceFlush();
    } finally {
      fixture.close();
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
          header: [
            "store",
            "batch size",
            "no SDK (msg/s)",
            "SDK, in-memory exporters (msg/s)",
            "ratio SDK / no SDK",
          ],
          rows,
        },
      ],
      notes: [
        `Null sender; median of ${plan.rounds} short rounds, the two sides interleaved. MemoryStore (100 batches per round) shows the relay's own work and its telemetry with nothing else; LibsqlStore (20 batches per round, loading not timed) shows what it costs in a real deployment.`,
        "SDK: MeterProvider with a PeriodicExportingMetricReader (1 s) over InMemoryMetricExporter, BasicTracerProvider with SimpleSpanProcessor over InMemorySpanExporter (each span exported as it ends); passed as the meter and tracer options.",
        `Worst LibsqlStore ratio: ${ratio(worstLibsql)}.`,
      ],
    };
  },
};
