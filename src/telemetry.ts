import {
  type Attributes,
  type Counter,
  context,
  diag,
  type Histogram,
  type Link,
  type Meter,
  metrics,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { CallbackError } from "./errors.ts";
import type { Message } from "./message.ts";
import {
  CallbackReporter,
  guardMeter,
  guardTracer,
  type RelayMeter,
  type SpanStarter,
} from "./telemetry-guard.ts";
import {
  type BatchOutcome,
  BatchSpan,
  errorType,
  markError,
  SEND,
  SEND_FAILED,
  SEND_OPERATION,
  TickSpan,
} from "./telemetry-spans.ts";
import { producerSpanContext } from "./trace-context.ts";

export {
  BATCH_SPAN,
  type BatchOutcome,
  BatchSpan,
  type DrainOutcome,
  MESSAGING_SYSTEM,
  TICK_SPAN,
  TickSpan,
} from "./telemetry-spans.ts";

/** Instrumentation scope name of every meter and tracer edge-outbox creates. */
export const INSTRUMENTATION_SCOPE = "edge-outbox";

/** Attribute on every metric point of an outbox, telling outboxes on one meter apart. */
export const OUTBOX_NAME = "outbox.name";

// Bucket boundaries the messaging conventions give for messaging.client.operation.duration.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const BATCH_SIZE_BUCKETS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000];

/** Attributes made on first use and kept: keys come from small closed sets (outcomes, codes). */
class AttributeCache {
  readonly #cache = new Map<string, Attributes>();
  constructor(readonly base: Attributes) {}

  get(key: string, extra: Attributes): Attributes {
    let attributes = this.#cache.get(key);
    if (attributes === undefined) {
      attributes = Object.freeze({ ...this.base, ...extra });
      this.#cache.set(key, attributes);
    }
    return attributes;
  }
}

/** What {@link RelayTelemetry} is built from. */
export interface RelayTelemetryOptions {
  /** The option, or undefined for the global provider's `edge-outbox` meter. */
  meter?: Meter | undefined;
  /** The option, or undefined for the global provider's `edge-outbox` tracer. */
  tracer?: Tracer | undefined;
  /** The outbox's name: {@link OUTBOX_NAME} on every metric point. */
  name: string;
  /** Where a throwing meter or tracer method is reported (once per method). */
  report: (error: CallbackError) => void;
}

/**
 * The relay's instruments and spans. Created once per `Outbox`; with no SDK registered every
 * call lands on the API's no-op implementations and a pass allocates next to nothing.
 * Metrics are recorded only after the outcome is stored, never before. Every call into the
 * meter and tracer is contained: a throw is reported and skipped (see `telemetry-guard.ts`).
 */
export class RelayTelemetry {
  /** The meter in use (the option, or the global provider's `edge-outbox` meter), contained. */
  readonly meter: RelayMeter;
  /** Attributes every metric point of this outbox carries: {@link OUTBOX_NAME}. */
  readonly attributes: Attributes;
  readonly #tracer: SpanStarter;
  readonly #messages: Counter;
  readonly #duration: Histogram;
  readonly #batchSize: Histogram;
  // Made once and shared: recording a pass allocates no attribute object.
  readonly #sent: Attributes;
  readonly #operation: Attributes;
  readonly #outcomes: AttributeCache;
  readonly #failures: AttributeCache;

  constructor(options: RelayTelemetryOptions) {
    const reporter = new CallbackReporter(options.report);
    this.attributes = Object.freeze({ [OUTBOX_NAME]: options.name });
    this.#sent = Object.freeze({ ...SEND, ...this.attributes, "outbox.outcome": "sent" });
    this.#operation = Object.freeze({ ...SEND_OPERATION, ...this.attributes });
    this.#outcomes = new AttributeCache({ ...SEND, ...this.attributes });
    this.#failures = new AttributeCache(this.#operation);
    // The API has no proxy meter: a global meter is bound to the provider registered by now.
    this.meter = guardMeter(options.meter ?? metrics.getMeter(INSTRUMENTATION_SCOPE), reporter);
    this.#tracer = guardTracer(options.tracer ?? trace.getTracer(INSTRUMENTATION_SCOPE), reporter);
    this.#messages = this.meter.createCounter("messaging.client.sent.messages", {
      description:
        "Messages whose send outcome the relay recorded, by outbox.outcome (sent, failed, dead); every attempt counts.",
      unit: "{message}",
    });
    this.#duration = this.meter.createHistogram("messaging.client.operation.duration", {
      description:
        "Duration of one relay batch: claim, send and record (pipelined: send, then record with the next batch's claim).",
      unit: "s",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.#batchSize = this.meter.createHistogram("outbox.batch.size", {
      description: "Messages claimed by one relay batch.",
      unit: "{message}",
      advice: { explicitBucketBoundaries: BATCH_SIZE_BUCKETS },
    });
  }

  /** Opens the span of one drain; `eager` starts it now, else on the first claim or error. */
  tick(eager: boolean): TickSpan {
    return new TickSpan(this.#tracer, eager);
  }

  /**
   * Runs one relay pass with its batch span (a child of `tick`'s span, or of the active
   * context). A pass that throws (the store failed) records the error on its span and in
   * `messaging.client.operation.duration` with `error.type`, then rethrows.
   */
  async batch<T>(tick: TickSpan | undefined, fn: (span: BatchSpan) => Promise<T>): Promise<T> {
    const batch = new BatchSpan(this.#tracer, tick ?? context.active());
    try {
      return await fn(batch);
    } catch (error) {
      const span = batch.span();
      if (span.isRecording()) markError(span, error);
      const type = errorType(error);
      this.#duration.record(
        (performance.now() - batch.startTime) / 1000,
        this.#failures.get(type, { "error.type": type }),
      );
      throw error;
    } finally {
      if (batch.started) batch.span().end();
    }
  }

  /** Starts the batch span for claimed messages, linked to their producers' trace contexts. */
  claimed(batch: BatchSpan, messages: readonly Message[]): void {
    const span = batch.span();
    // Parsing headers for links is work only a recording span needs.
    if (!span.isRecording()) return;
    span.setAttribute("messaging.batch.message_count", messages.length);
    // Links are for the trace view only: whatever the propagator or tracer does here, the
    // batch goes on to be sent.
    try {
      const links: Link[] = [];
      for (const message of messages) {
        const producer = producerSpanContext(message.headers);
        if (producer) links.push({ context: producer, attributes: { "messaging.message.id": message.id } });
      }
      if (links.length > 0) span.addLinks(links);
    } catch (error) {
      diag.warn("edge-outbox: the batch span's links to its producers could not be added", error);
    }
  }

  /**
   * Runs `fn(...args)` (the send) with the batch span active, so instrumented clients nest under
   * it. Arguments rather than a closure: the send window calls this once per message.
   */
  within<A extends unknown[], T>(batch: BatchSpan, fn: (...args: A) => Promise<T>, ...args: A): Promise<T> {
    return context.with(batch.context(), fn, undefined, ...args);
  }

  /** Records a pass whose outcome is stored: counters, histograms and the batch span. */
  recorded(
    batch: BatchSpan,
    claimed: number,
    outcome: BatchOutcome,
    durationMs: number,
    error?: unknown,
  ): void {
    // Messages that failed without a batch-wide error were marked failed or dead by the sender.
    const type = error === undefined ? SEND_FAILED : errorType(error);
    if (outcome.sent > 0) this.#messages.add(outcome.sent, this.#sent);
    if (outcome.failed > 0) this.#messages.add(outcome.failed, this.#outcome("failed", type));
    if (outcome.dead > 0) this.#messages.add(outcome.dead, this.#outcome("dead", type));
    this.#duration.record(
      durationMs / 1000,
      error === undefined ? this.#operation : this.#failures.get(type, { "error.type": type }),
    );
    this.#batchSize.record(claimed, this.attributes);
    const span = batch.span();
    if (!span.isRecording()) return;
    span.setAttributes({
      "outbox.sent": outcome.sent,
      "outbox.failed": outcome.failed,
      "outbox.dead": outcome.dead,
    });
    markError(span, error, outcome);
  }

  #outcome(outcome: "failed" | "dead", type: string): Attributes {
    return this.#outcomes.get(`${outcome} ${type}`, { "outbox.outcome": outcome, "error.type": type });
  }
}
