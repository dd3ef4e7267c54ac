/**
 * What a dashboard reads from the relay's telemetry, with the real OpenTelemetry SDK: the batch
 * duration, the spans' counts and error marks, and a broken meter or tracer costing only its
 * own telemetry. Written against mutants that the older suites let survive.
 */
import type { Histogram } from "@opentelemetry/sdk-metrics";
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../adapters/memory.ts";
import { recordingSender } from "./support/senders.ts";
import { instrumented, useCleanups } from "./telemetry/support.ts";

useCleanups();

describe("the batch duration histogram", () => {
  it("records each batch's own duration, never more than the tick that ran it", async () => {
    const store = new MemoryStore();
    const { outbox, rig } = instrumented(store, recordingSender(), { batchSize: 2 });
    await store.transaction(async (tx) => {
      for (let i = 0; i < 5; i++) await outbox.addMessage(tx, { key: `k${i}`, value: "{}" });
    });
    const tick = await outbox.tick();
    expect(tick).toMatchObject({ batches: 3, sent: 5 });
    const metrics = await rig.collect();
    const point = metrics.get("messaging.client.operation.duration")?.dataPoints[0];
    const histogram = point?.value as Histogram;
    expect(histogram.count).toBe(3);
    expect(histogram.min).toBeGreaterThanOrEqual(0);
    // Seconds, as the semantic conventions ask; the three batches ran inside the tick.
    expect(histogram.sum).toBeLessThanOrEqual(tick.durationMs / 1000);
  });
});
