import {
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  metrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { Message } from "./message.ts";

/** Instrumentation scope name of every meter and tracer edge-outbox creates. */
export const INSTRUMENTATION_SCOPE = "edge-outbox";

/** What one relay pass did, as telemetry records it. */
export interface BatchOutcome {
  sent: number;
  failed: number;
  dead: number;
}

/**
 * The relay's instruments and spans. Created once per `Outbox`; with no SDK registered every
 * call lands on the API's no-op implementations.
 */
export class RelayTelemetry {
  readonly #tracer: Tracer;
  readonly #messages: Counter;
  readonly #batchDuration: Histogram;
  readonly #batchSize: Histogram;

  constructor(meter?: Meter, tracer?: Tracer) {
    const m = meter ?? metrics.getMeter(INSTRUMENTATION_SCOPE);
    this.#tracer = tracer ?? trace.getTracer(INSTRUMENTATION_SCOPE);
    this.#messages = m.createCounter("outbox.messages", {
      description: "Messages whose send outcome was recorded, by outcome (sent, failed, dead).",
      unit: "{message}",
    });
    this.#batchDuration = m.createHistogram("outbox.batch.duration", {
      description: "Duration of one relay pass: claim, send and record.",
      unit: "s",
    });
    this.#batchSize = m.createHistogram("outbox.batch.size", {
      description: "Messages claimed by one relay pass.",
      unit: "{message}",
    });
  }

  /** Runs one relay pass inside its span. */
  batch<T>(fn: (span: Span) => Promise<T>): Promise<T> {
    return this.#tracer.startActiveSpan(
      "outbox relay",
      { kind: SpanKind.PRODUCER, attributes: { "messaging.system": "edge-outbox" } },
      async (span) => {
        try {
          return await fn(span);
        } catch (error) {
          span.recordException(error as Error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
          throw error;
        } finally {
          span.end();
        }
      },
    );
  }

  /** Records a claimed batch on its span. */
  claimed(span: Span, messages: readonly Message[]): void {
    span.setAttribute("messaging.batch.message_count", messages.length);
  }

  /** Records a pass whose outcome is stored (metrics only after the commit, never before). */
  recorded(span: Span, claimed: number, outcome: BatchOutcome, durationMs: number, error?: unknown): void {
    const base: Attributes = {};
    if (outcome.sent) this.#messages.add(outcome.sent, { ...base, "outbox.outcome": "sent" });
    if (outcome.failed) this.#messages.add(outcome.failed, { ...base, "outbox.outcome": "failed" });
    if (outcome.dead) this.#messages.add(outcome.dead, { ...base, "outbox.outcome": "dead" });
    this.#batchDuration.record(durationMs / 1000);
    this.#batchSize.record(claimed);
    span.setAttributes({
      "outbox.sent": outcome.sent,
      "outbox.failed": outcome.failed,
      "outbox.dead": outcome.dead,
    });
    if (error !== undefined) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
