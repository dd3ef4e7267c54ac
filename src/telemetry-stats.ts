import type { Attributes, BatchObservableCallback } from "@opentelemetry/api";
import type { OutboxStats } from "./store.ts";
import type { RelayMeter } from "./telemetry-guard.ts";

/** Name of the gauge of messages by `outbox.message.state` (pending, in_flight, dead). */
export const MESSAGE_COUNT = "outbox.message.count";
/** Name of the gauge of the oldest unsent message's age in seconds. */
export const OLDEST_AGE = "outbox.message.oldest_age";

/** Options of {@link observeStats}. */
export interface ObserveStatsOptions {
  /** Milliseconds a `stats()` result serves collections before it is read again; 0: every time. */
  ttl: number;
  /**
   * Receives a failed `stats()` (that collection then reports no points for these gauges) and
   * a throw from the SDK's `observe`. Must not throw.
   */
  onError: (error: unknown) => void;
  /** Attributes every point carries (the outbox's `outbox.name`), so two outboxes sharing a meter stay apart. */
  attributes?: Attributes;
}

/**
 * Registers the observable gauges read from `stats()`: {@link MESSAGE_COUNT} and
 * {@link OLDEST_AGE}. Gauges rather than up-down counters because every relay of one
 * database reports the same numbers: summing them across instances would be wrong.
 * One `stats()` call feeds both gauges, and a result is reused for `ttl` ms (concurrent
 * collections share one call), so a metrics scrape does not hammer the database.
 *
 * @returns a function that unregisters the callback (idempotent).
 */
export function observeStats(
  meter: RelayMeter,
  read: () => Promise<OutboxStats>,
  options: ObserveStatsOptions,
): () => void {
  const count = meter.createObservableGauge(MESSAGE_COUNT, {
    description:
      "Messages in the outbox by outbox.message.state: pending (incl. waiting for a retry), in_flight, dead.",
    unit: "{message}",
  });
  const age = meter.createObservableGauge(OLDEST_AGE, {
    description:
      "Age of the oldest message not yet sent or dead (pending or in flight); 0 when there is none. A growing value means the outbox is stuck.",
    unit: "s",
  });
  const base = options.attributes ?? {};
  const pending: Attributes = Object.freeze({ ...base, "outbox.message.state": "pending" });
  const inFlight: Attributes = Object.freeze({ ...base, "outbox.message.state": "in_flight" });
  const dead: Attributes = Object.freeze({ ...base, "outbox.message.state": "dead" });
  const ageAttributes: Attributes = Object.freeze({ ...base });
  let cached: { at: number; stats: OutboxStats } | undefined;
  let loading: Promise<OutboxStats> | undefined;

  const load = (): Promise<OutboxStats> => {
    const now = Date.now();
    if (cached !== undefined && now - cached.at < options.ttl) return Promise.resolve(cached.stats);
    loading ??= read()
      .then((stats) => {
        cached = { at: now, stats };
        return stats;
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  };

  const callback: BatchObservableCallback = async (result) => {
    let stats: OutboxStats;
    try {
      stats = await load();
    } catch (error) {
      options.onError(error);
      return;
    }
    try {
      result.observe(count, stats.pending, pending);
      result.observe(count, stats.inFlight, inFlight);
      result.observe(count, stats.dead, dead);
      result.observe(age, oldestAgeSeconds(stats.oldestPendingAt, Date.now()), ageAttributes);
    } catch (error) {
      options.onError(error);
    }
  };

  meter.addBatchObservableCallback(callback, [count, age]);
  let registered = true;
  return () => {
    if (!registered) return;
    registered = false;
    meter.removeBatchObservableCallback(callback, [count, age]);
  };
}

/** Seconds since `oldest` at `now` (ms), never negative; 0 when there is no such message. */
export function oldestAgeSeconds(oldest: Date | null, now: number): number {
  if (oldest === null) return 0;
  return Math.max(0, now - oldest.getTime()) / 1000;
}
