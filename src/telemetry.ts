import {
  type Attributes,
  type Context,
  type Counter,
  context,
  type Histogram,
  type Link,
  type Meter,
  metrics,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { OutboxError } from "./errors.ts";
import type { Message } from "./message.ts";
import { parseTraceparent, TRACEPARENT, TRACESTATE } from "./trace-context.ts";

/** Instrumentation scope name of every meter and tracer edge-outbox creates. */
export const INSTRUMENTATION_SCOPE = "edge-outbox";

/** `messaging.system` of every span and messaging metric edge-outbox records. */
export const MESSAGING_SYSTEM = "edge-outbox";

/** Name of the span of one relay batch (kind CLIENT: the creation contexts are the producers'). */
export const BATCH_SPAN = "send outbox";

/** Name of the span of one `tick()` or one pass of the `start()` loop (kind INTERNAL). */
export const TICK_SPAN = "relay outbox";

/** What one relay pass did, as telemetry records it. */
export interface BatchOutcome {
  sent: number;
  failed: number;
  dead: number;
}

/** What one drain (a `tick()` or a loop pass) did, as its span records it. */
export interface DrainOutcome extends BatchOutcome {
  batches: number;
}

// Bucket boundaries the messaging conventions give for messaging.client.operation.duration.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const SEND_FAILED = "SEND_FAILED";

// Attribute objects are made once and shared, so a relay pass allocates none for its metrics.
const SEND: Attributes = Object.freeze({
  "messaging.system": MESSAGING_SYSTEM,
  "messaging.operation.name": "send",
});
const SEND_OPERATION: Attributes = Object.freeze({ ...SEND, "messaging.operation.type": "send" });
const BATCH_SPAN_OPTIONS = Object.freeze({ kind: SpanKind.CLIENT, attributes: SEND_OPERATION });
const SENT: Attributes = Object.freeze({ ...SEND, "outbox.outcome": "sent" });

/** A low-cardinality `error.type`: the `OutboxError` code, else the conventions' `_OTHER`. */
export function errorType(error: unknown): string {
  return error instanceof OutboxError ? error.code : "_OTHER";
}

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

/**
 * The span of one `tick()` or loop pass. Started at once for `tick()`; for the `start()` loop
 * only when a pass claims something or fails (backdated to the drain's start), so an idle loop
 * records no spans.
 */
export class TickSpan {
  readonly #tracer: Tracer;
  readonly #parent: Context;
  readonly #startTime: number;
  #span: Span | undefined;
  #context: Context | undefined;

  /** @internal Made by {@link RelayTelemetry.tick}. */
  constructor(tracer: Tracer, eager: boolean) {
    this.#tracer = tracer;
    this.#parent = context.active();
    this.#startTime = performance.now();
    if (eager) this.context();
  }

  /** The context batch spans start in; starts the tick span if it has not started yet. */
  context(): Context {
    if (this.#context === undefined) {
      this.#span = this.#tracer.startSpan(
        TICK_SPAN,
        { kind: SpanKind.INTERNAL, startTime: this.#startTime, attributes: SEND },
        this.#parent,
      );
      this.#context = trace.setSpan(this.#parent, this.#span);
    }
    return this.#context;
  }

  /** Records the drain's counts (or the error it ended with) and ends the span, if any. */
  end(outcome: DrainOutcome, error?: unknown): void {
    if (error !== undefined) this.context();
    const span = this.#span;
    if (span === undefined) return;
    if (span.isRecording()) {
      span.setAttributes({
        "outbox.batches": outcome.batches,
        "outbox.sent": outcome.sent,
        "outbox.failed": outcome.failed,
        "outbox.dead": outcome.dead,
      });
      markError(span, error, outcome);
    }
    span.end();
  }
}

/** The span of one relay pass, started once the pass has claimed messages (or failed). */
export class BatchSpan {
  readonly #tracer: Tracer;
  readonly #parent: Context | TickSpan;
  /** `performance.now()` when the pass began: the span is backdated to it. */
  readonly startTime = performance.now();
  #span: Span | undefined;
  #context: Context | undefined;

  /** @internal Made by {@link RelayTelemetry.batch}. */
  constructor(tracer: Tracer, parent: Context | TickSpan) {
    this.#tracer = tracer;
    this.#parent = parent;
  }

  /** The span, started on first use. */
  span(): Span {
    if (this.#span === undefined) {
      const parent = this.#parent instanceof TickSpan ? this.#parent.context() : this.#parent;
      this.#span = this.#tracer.startSpan(
        BATCH_SPAN,
        { ...BATCH_SPAN_OPTIONS, startTime: this.startTime },
        parent,
      );
      this.#context = trace.setSpan(parent, this.#span);
    }
    return this.#span;
  }

  /** Whether a span was started (a pass that claimed nothing has none). */
  get started(): boolean {
    return this.#span !== undefined;
  }

  /** The context with this batch's span active (for the sender's own instrumentation). */
  context(): Context {
    this.span();
    return this.#context as Context;
  }
}

/**
 * The relay's instruments and spans. Created once per `Outbox`; with no SDK registered every
 * call lands on the API's no-op implementations and a pass allocates next to nothing.
 * Metrics are recorded only after the outcome is stored, never before.
 */
export class RelayTelemetry {
  /** The meter in use (the option, or the global provider's `edge-outbox` meter). */
  readonly meter: Meter;
  readonly #tracer: Tracer;
  readonly #messages: Counter;
  readonly #duration: Histogram;
  readonly #batchSize: Histogram;
  readonly #outcomes = new AttributeCache(SEND);
  readonly #failures = new AttributeCache(SEND_OPERATION);

  constructor(meter?: Meter, tracer?: Tracer) {
    // The API has no proxy meter: a global meter is bound to the provider registered by now.
    this.meter = meter ?? metrics.getMeter(INSTRUMENTATION_SCOPE);
    this.#tracer = tracer ?? trace.getTracer(INSTRUMENTATION_SCOPE);
    this.#messages = this.meter.createCounter("messaging.client.sent.messages", {
      description:
        "Messages whose send outcome the relay recorded, by outbox.outcome (sent, failed, dead); every attempt counts.",
      unit: "{message}",
    });
    this.#duration = this.meter.createHistogram("messaging.client.operation.duration", {
      description: "Duration of one relay batch: claim, send and record.",
      unit: "s",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.#batchSize = this.meter.createHistogram("outbox.batch.size", {
      description: "Messages claimed by one relay batch.",
      unit: "{message}",
      advice: { explicitBucketBoundaries: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000] },
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
    const links: Link[] = [];
    for (const message of messages) {
      const producer = parseTraceparent(message.headers[TRACEPARENT], message.headers[TRACESTATE]);
      if (producer) links.push({ context: producer, attributes: { "messaging.message.id": message.id } });
    }
    if (links.length > 0) span.addLinks(links);
  }

  /** Runs `fn` (the send) with the batch span active, so instrumented clients nest under it. */
  within<T>(batch: BatchSpan, fn: () => Promise<T>): Promise<T> {
    return context.with(batch.context(), fn);
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
    if (outcome.sent > 0) this.#messages.add(outcome.sent, SENT);
    if (outcome.failed > 0) this.#messages.add(outcome.failed, this.#outcome("failed", type));
    if (outcome.dead > 0) this.#messages.add(outcome.dead, this.#outcome("dead", type));
    this.#duration.record(
      durationMs / 1000,
      error === undefined ? SEND_OPERATION : this.#failures.get(type, { "error.type": type }),
    );
    this.#batchSize.record(claimed);
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

/**
 * Marks a span as failed when `error` is set (exception event, status, `error.type`) or when
 * messages failed or died without one (status and `error.type` `SEND_FAILED`).
 */
function markError(span: Span, error: unknown, outcome?: BatchOutcome): void {
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setAttribute("error.type", errorType(error));
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
    return;
  }
  if (outcome === undefined || outcome.failed + outcome.dead === 0) return;
  span.setAttribute("error.type", SEND_FAILED);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: `${outcome.failed} message(s) failed and ${outcome.dead} died`,
  });
}
