import {
  type Attributes,
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { describeValue, isInstanceOf, OutboxError } from "./errors.ts";
import type { SpanStarter } from "./telemetry-guard.ts";

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

/** `error.type` of messages a sender failed or killed without a batch-wide error. */
export const SEND_FAILED = "SEND_FAILED";

// Attribute objects are made once and shared, so a relay pass allocates none.
const SYSTEM: Attributes = Object.freeze({ "messaging.system": MESSAGING_SYSTEM });
/** Attributes of every send: `messaging.system` and `messaging.operation.name`. */
export const SEND: Attributes = Object.freeze({ ...SYSTEM, "messaging.operation.name": "send" });
/** {@link SEND} plus `messaging.operation.type`, for the batch span and the duration histogram. */
export const SEND_OPERATION: Attributes = Object.freeze({ ...SEND, "messaging.operation.type": "send" });
const BATCH_SPAN_OPTIONS = Object.freeze({ kind: SpanKind.CLIENT, attributes: SEND_OPERATION });

/** A low-cardinality `error.type`: the `OutboxError` code, else the conventions' `_OTHER`. */
export function errorType(error: unknown): string {
  try {
    return isInstanceOf(error, OutboxError) ? error.code : "_OTHER";
  } catch {
    // A Proxy of an OutboxError whose `code` getter throws.
    return "_OTHER";
  }
}

/**
 * The span of one `tick()` or loop pass. Started at once for `tick()`; for the `start()` loop
 * only when a pass claims something or fails (backdated to the drain's start), so an idle loop
 * records no spans.
 */
export class TickSpan {
  readonly #tracer: SpanStarter;
  readonly #parent: Context;
  readonly #startTime: number;
  #span: Span | undefined;
  #context: Context | undefined;

  /** @internal Made by {@link RelayTelemetry.tick}. */
  constructor(tracer: SpanStarter, eager: boolean) {
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
        { kind: SpanKind.INTERNAL, startTime: this.#startTime, attributes: SYSTEM },
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
  readonly #tracer: SpanStarter;
  readonly #parent: Context | TickSpan;
  /** `performance.now()` when the pass began: the span is backdated to it. */
  readonly startTime = performance.now();
  #span: Span | undefined;
  #context: Context | undefined;

  /** @internal Made by {@link RelayTelemetry.batch}. */
  constructor(tracer: SpanStarter, parent: Context | TickSpan) {
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
 * Marks a span as failed when `error` is set (exception event, status, `error.type`) or when
 * messages failed or died without one (status and `error.type` `SEND_FAILED`).
 */
export function markError(span: Span, error: unknown, outcome?: BatchOutcome): void {
  if (error !== undefined) {
    // `error` may be anything a sender or store threw: described without running its traps twice.
    const isError = isInstanceOf(error, Error);
    const text = describeValue(error);
    span.recordException(isError ? error : text);
    span.setAttribute("error.type", errorType(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: text });
    return;
  }
  if (outcome === undefined || outcome.failed + outcome.dead === 0) return;
  span.setAttribute("error.type", SEND_FAILED);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: `${outcome.failed} message(s) failed and ${outcome.dead} died`,
  });
}
