import {
  type Context,
  context,
  createTraceState,
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
// nothing, and every function here costs a global lookup and two small objects. No
// hand-written W3C code is kept as a fast path: measured, the no-op inject costs what the old
// hand-written capture did (61 vs 65 ns a call, no SDK).

/**
 * Request headers as a receiver has them: a fetch `Headers`, or a Node-style record (names in
 * any case, array values for repeated headers).
 */
export type HeaderCarrier = Headers | Record<string, string | string[] | undefined>;

type Injected = Array<[name: unknown, value: unknown]>;

// Collects what the propagator writes instead of letting it write into the headers: every
// pair is checked like a caller's header before it is stored. The pairs live here, out of the
// propagator's reach; the carrier it is handed is a throwaway `Carrier`.
class Collector implements TextMapSetter<unknown> {
  readonly pairs: Injected = [];
  set(_carrier: unknown, key: string, value: string): void {
    this.pairs.push([key, value]);
  }
}

// An object that inherits nothing (no Object.prototype members for a propagator to read or
// write through), built at the cost of `{}`: Object.create(null) measured ~140 ns a call more.
class Carrier {}
Object.setPrototypeOf(Carrier.prototype, null);
Reflect.deleteProperty(Carrier.prototype, "constructor");
Object.freeze(Carrier.prototype);

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
 * What the caller set wins: a header of the same name is never overwritten, and the
 * propagator's headers come in two groups, the span's (e.g. `traceparent`, `tracestate`,
 * `b3`, `x-b3-*`) and the baggage's: when the caller set any header of a group (any case),
 * none of the active context's headers of that group is added (a caller's `tracestate` next to
 * our `traceparent`, or their `x-b3-traceid` next to our `x-b3-spanid`, would describe a context
 * that never existed). Each injected header passes the checks a caller's header does; one that
 * fails is dropped, and a propagator that throws adds nothing: neither ever fails `addMessage`
 * (both are reported through the OpenTelemetry `diag` logger). Mutates and returns `headers`.
 */
export function injectTraceContext(
  headers: Record<string, string>,
  ctx: Context = context.active(),
): Record<string, string> {
  try {
    let injected = inject(ctx);
    // Nothing written (no propagator, or nothing active) is the common case: it stops here,
    // before the caller's headers are read.
    if (injected.length === 0) return headers;
    if (hasAny(headers)) {
      // A caller's header can only belong to a group if the propagator writes or declares its
      // name: most callers' (content-type, ...) do not, and cost no further inject.
      const fields = declaredFields();
      if (setsAny(headers, namesOf(injected, new Set(fields)))) {
        injected = withoutCallersGroups(ctx, injected, headers, fields);
      }
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
  } catch (error) {
    diag.warn("edge-outbox: the registered propagator threw; the message keeps no trace context", error);
  }
  return headers;
}

/**
 * What the registered propagator writes for `ctx`: the pairs it set through the setter, then
 * whatever it wrote into the carrier itself (its own enumerable keys: it inherits none), all
 * unchecked. for...in, not Object.getOwnPropertyNames: measured ~300 ns a call less.
 */
function inject(ctx: Context): Injected {
  const collector = new Collector();
  const carrier = new Carrier() as Record<string, unknown>;
  propagation.inject(ctx, carrier, collector);
  for (const name in carrier) collector.pairs.push([name, carrier[name]]);
  return collector.pairs;
}

// Baggage for learning which headers carry baggage when the context has none of its own.
const PROBE_BAGGAGE = propagation.createBaggage({ "edge-outbox.probe": { value: "1" } });

/**
 * `injected` (all of `ctx`) without the groups the caller's `headers` already set. Each group's
 * names are learned by injecting that part of `ctx` alone; the propagator's declared `fields()`
 * that are not baggage's count as the span's, so a caller's header the active context would
 * not have written (its `tracestate`, its `b3: 0`) still claims the group.
 */
function withoutCallersGroups(
  ctx: Context,
  injected: Injected,
  headers: Record<string, string>,
  fields: readonly string[],
): Injected {
  const spanOnly = inject(propagation.deleteBaggage(ctx));
  const withoutSpan = trace.deleteSpan(ctx);
  const baggageOnly = inject(withoutSpan);
  const baggageNames = namesOf(baggageOnly, new Set());
  // With no baggage active, a caller's own `baggage` header must not be taken for the span's.
  if (propagation.getBaggage(ctx) === undefined) {
    namesOf(inject(propagation.setBaggage(withoutSpan, PROBE_BAGGAGE)), baggageNames);
  }
  const spanNames = namesOf(spanOnly, new Set());
  for (const field of fields) if (!baggageNames.has(field)) spanNames.add(field);
  const callersSpan = setsAny(headers, spanNames);
  const callersBaggage = setsAny(headers, baggageNames);
  if (callersSpan) return callersBaggage ? [] : baggageOnly;
  return callersBaggage ? spanOnly : injected;
}

/** The registered propagator's `fields()`, lowercase (whatever it returns that is not a name, ignored). */
function declaredFields(): string[] {
  const fields: unknown = propagation.fields();
  const names: string[] = [];
  if (Array.isArray(fields))
    for (const field of fields) if (typeof field === "string") names.push(field.toLowerCase());
  return names;
}

function namesOf(pairs: Injected, into: Set<string>): Set<string> {
  for (const [name] of pairs) if (typeof name === "string") into.add(name.toLowerCase());
  return into;
}

function setsAny(headers: Record<string, string>, names: Set<string>): boolean {
  for (const name in headers) if (names.has(name.toLowerCase())) return true;
  return false;
}

function hasAny(headers: Record<string, string>): boolean {
  for (const _ in headers) return true;
  return false;
}

/**
 * The context a delivery's headers carry, read by the globally registered propagator
 * (`propagation.extract`) on top of `base` (default: the active context): the producer's
 * span context (as a remote parent) and its baggage. Header names may be in any case. With no
 * propagator registered, or nothing to read, it is `base`; a propagator that throws, or gives
 * back something that is not a context, is reported through `diag` and also gives `base`.
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
    const extracted = propagation.extract(base, headers, headerGetter) as Partial<Context> | undefined;
    if (isContext(extracted)) return extracted;
    diag.warn(
      "edge-outbox: the registered propagator's extract() returned no context; trace headers ignored",
    );
  } catch (error) {
    diag.warn("edge-outbox: the registered propagator threw while reading trace headers", error);
  }
  return base;
}

// Only what a span or `context.with` will call on it later, where a throw would be the
// caller's: a propagator that returns anything else is ignored here instead.
function isContext(value: Partial<Context> | undefined): value is Context {
  return (
    typeof value?.getValue === "function" &&
    typeof value.setValue === "function" &&
    typeof value.deleteValue === "function"
  );
}

/**
 * The producer's span context stored in a message's headers, or `undefined` when they carry
 * none the registered propagator can read (or it is not valid, or reading it throws). For links
 * from the relay's spans: a copy, read once, so what the link holds cannot change or throw later.
 */
export function producerSpanContext(headers: Record<string, string>): SpanContext | undefined {
  try {
    const found = trace.getSpanContext(extractTraceContext(headers, ROOT_CONTEXT));
    if (found === undefined) return undefined;
    const { traceId, spanId, traceFlags, isRemote, traceState } = found;
    if (typeof traceId !== "string" || typeof spanId !== "string" || typeof traceFlags !== "number") {
      return undefined;
    }
    const copy: SpanContext = { traceId, spanId, traceFlags, isRemote: isRemote === true };
    const state: unknown = traceState?.serialize();
    if (typeof state === "string" && state !== "") copy.traceState = createTraceState(state);
    return isSpanContextValid(copy) ? copy : undefined;
  } catch (error) {
    diag.warn(
      "edge-outbox: the registered propagator gave a span context that cannot be read; no link",
      error,
    );
    return undefined;
  }
}
