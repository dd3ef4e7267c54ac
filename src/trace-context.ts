import {
  type Context,
  context,
  createTraceState,
  isSpanContextValid,
  type SpanContext,
  trace,
} from "@opentelemetry/api";

/** Header that carries a W3C trace context (https://www.w3.org/TR/trace-context/). */
export const TRACEPARENT = "traceparent";
/** Header that carries vendor-specific trace state next to {@link TRACEPARENT}. */
export const TRACESTATE = "tracestate";

// version "00": exactly 55 characters. Ids and flags are lowercase hex; "ff" is no version.
const TRACEPARENT_00 = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
// A later version may append fields after a dash; its first four fields read as version 00.
const TRACEPARENT_FUTURE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ALL_ZERO = /^0+$/;

/**
 * Formats a span context as a W3C `traceparent` value: `00-<trace id>-<span id>-<flags>`.
 * The caller checks validity first (see {@link isSpanContextValid}).
 */
export function formatTraceparent(spanContext: SpanContext): string {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

/**
 * Parses a W3C `traceparent` header into a remote span context, or `undefined` for anything
 * the spec says to ignore: a wrong shape, uppercase hex, version `ff`, all-zero ids, extra
 * fields on version `00`. `tracestate` is attached when given and parseable.
 */
export function parseTraceparent(traceparent: unknown, tracestate?: unknown): SpanContext | undefined {
  if (typeof traceparent !== "string") return undefined;
  const value = traceparent.trim();
  let match = TRACEPARENT_00.exec(value);
  let traceId: string | undefined;
  let spanId: string | undefined;
  let flags: string | undefined;
  if (match) {
    [, traceId, spanId, flags] = match;
  } else {
    match = TRACEPARENT_FUTURE.exec(value);
    if (!match || match[1] === "00" || match[1] === "ff") return undefined;
    [, , traceId, spanId, flags] = match;
  }
  if (!traceId || !spanId || !flags || ALL_ZERO.test(traceId) || ALL_ZERO.test(spanId)) return undefined;
  const spanContext: SpanContext = {
    traceId,
    spanId,
    // Only the sampled bit is defined; unknown bits are dropped as the spec asks.
    traceFlags: Number.parseInt(flags, 16) & 0x01,
    isRemote: true,
  };
  if (typeof tracestate === "string" && tracestate.length > 0) {
    spanContext.traceState = createTraceState(tracestate);
  }
  return spanContext;
}

/**
 * Stores the trace context of `ctx` (default: the active one) in `headers` as `traceparent`,
 * plus `tracestate` when non-empty. Does nothing when there is no valid span context or when
 * the caller already set `traceparent` (their context wins, and a `tracestate` of ours would
 * belong to another trace). Mutates and returns `headers`.
 */
export function injectTraceContext(
  headers: Record<string, string>,
  ctx: Context = context.active(),
): Record<string, string> {
  if (headers[TRACEPARENT] !== undefined) return headers;
  const spanContext = trace.getSpanContext(ctx);
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return headers;
  headers[TRACEPARENT] = formatTraceparent(spanContext);
  const state = spanContext.traceState?.serialize();
  if (state) headers[TRACESTATE] = state;
  return headers;
}
