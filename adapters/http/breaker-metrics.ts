/**
 * The `outbox.http.breaker.state` gauge: each tracked origin's circuit breaker, read from
 * {@link Breakers.snapshot} when the SDK collects. A meter is code the sender does not control:
 * every call into it is contained, and a failure is reported once through OpenTelemetry's own
 * `diag` logger, never to the send path.
 */
import { type Attributes, diag, type Meter, metrics, type ObservableResult } from "@opentelemetry/api";
import { INSTRUMENTATION_SCOPE } from "../../mod.ts";
import type { BreakerState, Breakers } from "./breaker.ts";

/** Name of the gauge of each origin's breaker state. */
export const BREAKER_STATE = "outbox.http.breaker.state";

/** The gauge's value per state: alert on `> 0` (not closed) or `== 2` (open). */
export const BREAKER_STATE_VALUE: Readonly<Record<BreakerState, number>> = Object.freeze({
  closed: 0,
  half_open: 1,
  open: 2,
});

const DEFAULT_PORTS: Readonly<Record<string, number>> = { "http:": 80, "https:": 443 };

// Unregisters the gauge callback of a sender that was garbage-collected: an application that
// builds a sender per request (a serverless handler, say) must not pile up callbacks on its meter.
// workerd has neither FinalizationRegistry nor WeakRef (a Worker's isolate is short-lived anyway):
// there the callback holds the breakers for the isolate's life.
const unregister =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry<() => void>((remove) => remove())
    : undefined;

/**
 * Registers the gauge on `meter` (default: the global provider's `edge-outbox` meter) for as long
 * as `breakers` (that is, its sender) lives.
 */
export function observeBreakers(meter: Meter | undefined, breakers: Breakers): void {
  // Held weakly: the meter's callback list must not keep a dropped sender alive.
  const ref = weakly(breakers);
  let reported = false;
  const report = (what: string, error: unknown) => {
    if (reported) return;
    reported = true;
    diag.warn(`edge-outbox/http: ${BREAKER_STATE} ${what} failed; breaker telemetry is skipped`, error);
  };
  const observe = (result: ObservableResult) => {
    try {
      for (const breaker of ref.deref()?.snapshot() ?? []) {
        result.observe(BREAKER_STATE_VALUE[breaker.state], originAttributes(breaker.origin));
      }
    } catch (error) {
      report("observe", error);
    }
  };
  try {
    const gauge = (meter ?? metrics.getMeter(INSTRUMENTATION_SCOPE)).createObservableGauge(BREAKER_STATE, {
      description:
        "Circuit breaker of httpSender per origin (server.address, server.port, url.scheme): 0 closed, 1 half-open (probing), 2 open (messages wait without a request).",
      unit: "{state}",
    });
    gauge.addCallback(observe);
    unregister?.register(breakers, () => {
      try {
        gauge.removeCallback(observe);
      } catch {
        // A meter that cannot remove a callback keeps one that observes nothing.
      }
    });
  } catch (error) {
    report("registration", error);
  }
}

/**
 * A weak reference where the runtime has them. Its own function: a closure over `value` inside
 * `observeBreakers` would put `value` in the context V8 shares with the gauge callback, which
 * would then hold it strongly after all.
 */
function weakly<T extends object>(value: T): { deref(): T | undefined } {
  return typeof WeakRef === "function" ? new WeakRef(value) : { deref: () => value };
}

/** `server.address`, `server.port` and `url.scheme` of an origin (`http://[::1]:8080`). */
export function originAttributes(origin: string): Attributes {
  const url = new URL(origin);
  const host = url.hostname;
  return {
    "server.address": host.startsWith("[") ? host.slice(1, -1) : host,
    "server.port": url.port === "" ? (DEFAULT_PORTS[url.protocol] ?? 0) : Number(url.port),
    "url.scheme": url.protocol.slice(0, -1),
  };
}
