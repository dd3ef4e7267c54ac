import {
  type Context,
  context,
  diag,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type SpanContext,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from "@opentelemetry/api";
import { isValidHeader } from "./message.ts";

// Trace context crosses the outbox through the propagator the application registered
// (`propagation.setGlobalPropagator`, done by the SDK's setup): W3C trace context and baggage,
// B3, X-Ray, Jaeger, ... With none registered the API's no-op propagator writes and reads
// nothing, and every function here costs a global lookup and an empty array. No hand-written
// W3C code is kept as a fast path: measured, the no-op inject costs what the old hand-written
// capture did (61 vs 65 ns a call, no SDK).

/**
 * Request headers as a receiver has them: a fetch `Headers`, or a Node-style record (names in
 * any case, array values for repeated headers).
 */
export type HeaderCarrier = Headers | Record<string, string | string[] | undefined>;

type Injected = Array<[name: unknown, value: unknown]>;

// Collects what the propagator writes instead of letting it write into the headers: every
// pair is checked like a caller's header before it is stored.
const collect: TextMapSetter<Injected> = {
  set(carrier, key, value) {
    carrier.push([key, value]);
  },
};

const headerGetter: TextMapGetter<HeaderCarrier> = {
  keys(carrier) {
    if (isFetchHeaders(carrier)) {
      // forEach, not keys(): every Headers typing has it (Cloudflare's lacks keys()).
      const names: string[] = [];
      carrier.forEach((_, name) => {
        names.push(name);
      });
      return names;
    }
    return Object.keys(carrier).map((name) => name.toLowerCase());
  },
  get(carrier, key) {
    if (isFetchHeaders(carrier)) return carrier.get(key) ?? undefined;
    const value = Object.hasOwn(carrier, key) ? carrier[key] : findIgnoringCase(carrier, key);
    if (typeof value === "string") return value;
    if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value;
    return undefined;
  },
};

// Duck-typed: a Headers from another realm or polyfill is not `instanceof` this one.
function isFetchHeaders(carrier: HeaderCarrier): carrier is Headers {
  return typeof (carrier as Headers).get === "function" && typeof (carrier as Headers).forEach === "function";
}

function findIgnoringCase(carrier: Record<string, unknown>, key: string): unknown {
  const wanted = key.toLowerCase();
  for (const name of Object.keys(carrier)) {
    if (name.toLowerCase() === wanted) return carrier[name];
  }
  return undefined;
}

/**
 * Adds the trace context of `ctx` (default: the active one) to `headers`, written by the
 * globally registered propagator (`propagation.inject`). `headers` are a validated message's
 * (lowercase names).
 *
 * What the caller set wins: a header of the same name is never overwritten, and when the
 * caller's headers carry a trace context (or baggage) of their own, in the registered
 * propagator's format, the active one's is not added next to it (two contexts mixed would
 * describe neither). Each injected header passes the checks a caller's header does; one that
 * fails is dropped, and a propagator that throws adds nothing: neither ever fails `addMessage`
 * (both are reported through the OpenTelemetry `diag` logger). Mutates and returns `headers`.
 */
export function injectTraceContext(
  headers: Record<string, string>,
  ctx: Context = context.active(),
): Record<string, string> {
  let injected: Injected = [];
  try {
    propagation.inject(ctx, injected, collect);
    // Nothing written (no propagator, or nothing active) is the common case: it stops here,
    // before the caller's headers are read.
    if (injected.length === 0) return headers;
    if (hasAny(headers)) {
      const source = withoutCallersContext(ctx, headers);
      if (source !== ctx) {
        injected = [];
        propagation.inject(source, injected, collect);
      }
    }
  } catch (error) {
    diag.warn("edge-outbox: the registered propagator threw; the message keeps no trace context", error);
    return headers;
  }
  // Collected first, so a name the propagator writes twice is not mistaken for the caller's.
  const added: Record<string, string> = Object.create(null);
  for (const [name, value] of injected) {
    if (typeof name === "string" && isValidHeader(name, value)) added[name.toLowerCase()] = value;
    else diag.warn("edge-outbox: the propagator wrote a header that is not a valid HTTP header; dropped");
  }
  for (const name in added) {
    if (!Object.hasOwn(headers, name)) headers[name] = added[name] as string;
  }
  return headers;
}

/** `ctx` without the span context or baggage that the caller's `headers` already carry. */
function withoutCallersContext(ctx: Context, headers: Record<string, string>): Context {
  const callers = propagation.extract(ROOT_CONTEXT, headers, headerGetter);
  let source = ctx;
  if (trace.getSpanContext(callers) !== undefined) source = trace.deleteSpan(source);
  if (propagation.getBaggage(callers) !== undefined) source = propagation.deleteBaggage(source);
  return source;
}

function hasAny(headers: Record<string, string>): boolean {
  for (const _ in headers) return true;
  return false;
}

/**
 * The context a delivery's headers carry, read by the globally registered propagator
 * (`propagation.extract`) on top of `base` (default: the active context): the producer's
 * span context (as a remote parent) and its baggage. Header names may be in any case. With no
 * propagator registered, or nothing to read, it is `base`; a propagator that throws is
 * reported through `diag` and also gives `base`.
 *
 * @example
 * ```ts
 * // A handler's span as a child of the request that wrote the message:
 * const parent = extractTraceContext(request.headers);
 * await tracer.startActiveSpan("handle order", {}, parent, async (span) => { ... });
 * ```
 */
export function extractTraceContext(headers: HeaderCarrier, base: Context = context.active()): Context {
  try {
    return propagation.extract(base, headers, headerGetter);
  } catch (error) {
    diag.warn("edge-outbox: the registered propagator threw while reading trace headers", error);
    return base;
  }
}

/**
 * The producer's span context stored in a message's headers, or `undefined` when they carry
 * none the registered propagator can read (or it is not valid). For links from the relay's spans.
 */
export function producerSpanContext(headers: Record<string, string>): SpanContext | undefined {
  const spanContext = trace.getSpanContext(extractTraceContext(headers, ROOT_CONTEXT));
  return spanContext !== undefined && isSpanContextValid(spanContext) ? spanContext : undefined;
}
