/**
 * A meter or tracer of the application's (or of the SDK it registered) is code the relay does
 * not control: one that throws must cost its telemetry, never a pass or an outcome. These
 * wrappers catch every throw, report it once per method as a {@link CallbackError}, and carry on
 * with the OpenTelemetry API's own no-op stand-ins.
 *
 * @module
 */
import {
  type Attributes,
  type BatchObservableCallback,
  type Context,
  type Counter,
  createNoopMeter,
  type Exception,
  type Histogram,
  INVALID_SPAN_CONTEXT,
  type Link,
  type Meter,
  type MetricOptions,
  type Observable,
  type ObservableGauge,
  type Span,
  type SpanAttributes,
  type SpanAttributeValue,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TimeInput,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { CallbackError } from "./errors.ts";

/** The part of a `Meter` the relay uses. */
export type RelayMeter = Pick<
  Meter,
  | "createCounter"
  | "createHistogram"
  | "createObservableGauge"
  | "addBatchObservableCallback"
  | "removeBatchObservableCallback"
>;

/** Reports each failing method once (a broken meter throws on every call; once says it all). */
export class CallbackReporter {
  readonly #reported = new Set<string>();
  readonly #report: (error: CallbackError) => void;

  constructor(report: (error: CallbackError) => void) {
    this.#report = report;
  }

  /** Reports that `callback` threw `thrown`, unless it was reported before. */
  threw(callback: string, thrown: unknown): void {
    if (this.#reported.has(callback)) return;
    this.#reported.add(callback);
    this.#report(new CallbackError(callback, thrown));
  }
}

const noopMeter = createNoopMeter();

/**
 * When `result` is a thenable (an async meter or tracer method), attaches a rejection handler
 * that reports it, so a rejected promise can never become an unhandled rejection (which ends a
 * Node process). Reading and calling `then` are contained too.
 */
function settle(name: string, result: unknown, reporter: CallbackReporter): void {
  if ((typeof result !== "object" && typeof result !== "function") || result === null) return;
  try {
    const then: unknown = (result as { then?: unknown }).then;
    if (typeof then === "function") {
      then.call(result, undefined, (thrown: unknown) => reporter.threw(name, thrown));
    }
  } catch (thrown) {
    reporter.threw(name, thrown);
  }
}

/** `meter` with every call contained; instruments it creates are contained too. */
export function guardMeter(meter: Meter, reporter: CallbackReporter): RelayMeter {
  const guard = <T>(name: string, fallback: () => T, call: () => T): T => {
    try {
      const result = call();
      settle(name, result, reporter);
      return result;
    } catch (thrown) {
      reporter.threw(name, thrown);
      return fallback();
    }
  };
  return {
    createCounter(name: string, options?: MetricOptions): Counter {
      const counter = guard(
        "meter.createCounter",
        () => noopMeter.createCounter(name),
        () => meter.createCounter(name, options),
      );
      return {
        // On every pass: a plain try, no closures.
        add(value: number, attributes?: Attributes, ctx?: Context) {
          try {
            settle("counter.add", counter.add(value, attributes, ctx), reporter);
          } catch (thrown) {
            reporter.threw("counter.add", thrown);
          }
        },
      };
    },
    createHistogram(name: string, options?: MetricOptions): Histogram {
      const histogram = guard(
        "meter.createHistogram",
        () => noopMeter.createHistogram(name),
        () => meter.createHistogram(name, options),
      );
      return {
        record(value: number, attributes?: Attributes, ctx?: Context) {
          try {
            settle("histogram.record", histogram.record(value, attributes, ctx), reporter);
          } catch (thrown) {
            reporter.threw("histogram.record", thrown);
          }
        },
      };
    },
    // Observables go back to the meter's own batch callback registration as they are: an SDK
    // recognises its instruments by identity, so they cannot be wrapped.
    createObservableGauge(name: string, options?: MetricOptions): ObservableGauge {
      return guard(
        "meter.createObservableGauge",
        () => noopMeter.createObservableGauge(name),
        () => meter.createObservableGauge(name, options),
      );
    },
    addBatchObservableCallback(callback: BatchObservableCallback, observables: Observable[]) {
      guard(
        "meter.addBatchObservableCallback",
        () => undefined,
        () => meter.addBatchObservableCallback(callback, observables),
      );
    },
    removeBatchObservableCallback(callback: BatchObservableCallback, observables: Observable[]) {
      guard(
        "meter.removeBatchObservableCallback",
        () => undefined,
        () => meter.removeBatchObservableCallback(callback, observables),
      );
    },
  };
}

/** The part of a `Tracer` the relay uses: its spans are started only with `startSpan`. */
export type SpanStarter = Pick<Tracer, "startSpan">;

/**
 * `tracer`'s `startSpan` with every call contained; spans it starts are contained too. Only
 * `startSpan`: the guarded tracer stays inside the relay, which starts no active spans.
 */
export function guardTracer(tracer: Tracer, reporter: CallbackReporter): SpanStarter {
  return {
    startSpan(name: string, options?: SpanOptions, ctx?: Context): Span {
      try {
        const span = tracer.startSpan(name, options, ctx);
        settle("tracer.startSpan", span, reporter);
        return new GuardedSpan(span, reporter);
      } catch (thrown) {
        reporter.threw("tracer.startSpan", thrown);
        return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
      }
    },
  };
}

/** A span whose every method is contained. */
class GuardedSpan implements Span {
  readonly #span: Span;
  readonly #reporter: CallbackReporter;

  constructor(span: Span, reporter: CallbackReporter) {
    this.#span = span;
    this.#reporter = reporter;
  }

  #call<T>(name: string, fallback: T, call: (span: Span) => T): T {
    try {
      const result = call(this.#span);
      settle(`span.${name}`, result, this.#reporter);
      return result;
    } catch (thrown) {
      this.#reporter.threw(`span.${name}`, thrown);
      return fallback;
    }
  }

  spanContext(): SpanContext {
    return this.#call("spanContext", INVALID_SPAN_CONTEXT, (s) => s.spanContext());
  }
  setAttribute(key: string, value: SpanAttributeValue): this {
    this.#call("setAttribute", undefined, (s) => s.setAttribute(key, value));
    return this;
  }
  setAttributes(attributes: SpanAttributes): this {
    this.#call("setAttributes", undefined, (s) => s.setAttributes(attributes));
    return this;
  }
  addEvent(name: string, attributesOrStartTime?: SpanAttributes | TimeInput, startTime?: TimeInput): this {
    this.#call("addEvent", undefined, (s) => s.addEvent(name, attributesOrStartTime, startTime));
    return this;
  }
  addLink(link: Link): this {
    this.#call("addLink", undefined, (s) => s.addLink(link));
    return this;
  }
  addLinks(links: Link[]): this {
    this.#call("addLinks", undefined, (s) => s.addLinks(links));
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.#call("setStatus", undefined, (s) => s.setStatus(status));
    return this;
  }
  updateName(name: string): this {
    this.#call("updateName", undefined, (s) => s.updateName(name));
    return this;
  }
  end(endTime?: TimeInput): void {
    this.#call("end", undefined, (s) => s.end(endTime));
  }
  isRecording(): boolean {
    return this.#call("isRecording", false, (s) => s.isRecording() === true);
  }
  recordException(exception: Exception, time?: TimeInput): void {
    this.#call("recordException", undefined, (s) => s.recordException(exception, time));
  }
}
