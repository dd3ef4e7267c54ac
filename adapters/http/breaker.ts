/**
 * Circuit breakers per origin for `httpSender`: pure state machines over an injectable clock and
 * random source, so the tests drive them directly.
 *
 * closed --(failureThreshold unhealthy outcomes in a row)--> open
 * open --(cool-down over; on the next message)--> half_open
 * half_open --(a probe answers healthily)--> closed; --(a probe fails)--> open, for twice as long
 */

/** Options of the per-origin circuit breaker (`httpSender`'s `breaker`). */
export interface BreakerOptions {
  /**
   * Unhealthy outcomes in a row (timeouts, connection errors, 408, 429, 5xx) that open an
   * origin's breaker. Default {@link DEFAULT_BREAKER.failureThreshold} (10): random failures at
   * the rates a healthy but busy endpoint shows (10% 5xx, a few resets) practically never line
   * up ten in a row, while a down or hanging endpoint does so in a second or two.
   */
  failureThreshold?: number;
  /**
   * How long (ms) the breaker stays open the first time, before one probe is let through.
   * Doubles after each failed probe, up to `maxCooldownMs`; each period is shortened by a random
   * 0-25% (jitter), so relays that opened together do not probe together. An integer from 0 to
   * 86400000 (1 day). Default 5000.
   */
  cooldownMs?: number;
  /** Upper bound (ms) on the doubled cool-down: at least `cooldownMs`, at most 1 day. Default 60000. */
  maxCooldownMs?: number;
  /** Requests let through at once while half-open (probes). Default 1. */
  halfOpenProbes?: number;
}

/** The defaults of {@link BreakerOptions}: safe for a single endpoint. */
export const DEFAULT_BREAKER: Readonly<Required<BreakerOptions>> = Object.freeze({
  failureThreshold: 10,
  cooldownMs: 5_000,
  maxCooldownMs: 60_000,
  halfOpenProbes: 1,
});

/**
 * `closed`: requests go through. `open`: messages fail at once, without a request. `half_open`:
 * the cool-down is over, `halfOpenProbes` requests test the endpoint.
 */
export type BreakerState = "closed" | "open" | "half_open";

/** One origin's breaker as `sender.breakers()` reports it. */
export interface BreakerSnapshot {
  /** `scheme://host:port` (the port only when not the scheme's default), as `URL.origin` writes it. */
  origin: string;
  state: BreakerState;
  /** Unhealthy outcomes in a row (0 after a healthy answer). */
  failures: number;
  /** When an open breaker lets a probe through; `null` unless `state` is `open`. */
  openUntil: Date | null;
}

/** Why a message may not be sent now, and when to try again. */
export interface Refusal {
  /**
   * Milliseconds until the message should come back: the time left until the breaker lets a
   * probe through, or while the probes are out, until the last one ends at the latest; rounded
   * up to a multiple of 100 ms (at least 100), so refusals share a delay.
   */
  retryAfter: number;
  /** `circuit breaker open for <origin> after N failures in a row (last: ...)`. */
  reason: string;
}

/** A request let through: hand it back to {@link Breakers.settle} or {@link Breakers.release}. */
export interface Ticket {
  readonly origin: string;
  readonly probe: boolean;
  /** The entry's generation when admitted: outcomes from an earlier state are ignored. */
  readonly generation: number;
}

interface Entry {
  state: BreakerState;
  failures: number;
  openUntil: number;
  /** Times opened since the breaker was last closed: the cool-down's exponent. */
  opened: number;
  /** When the last probe let through ends at the latest (its `requestTimeout`). */
  probeUntil: number;
  probes: number;
  generation: number;
  lastFailure: string;
}

// More origins than any sane routing table; past it, see Breakers.#evict for who is forgotten.
const MAX_ORIGINS = 1_000;
// The share of a cool-down the jitter may take off.
const JITTER = 0.25;
/** The grid a refusal's `retryAfter` is rounded up to (see `Breakers.#refusal`). */
const RETRY_GRID_MS = 100;

/**
 * The breakers of one sender, one per origin, created on first use. `probeWaitMs` is the
 * longest a probe takes (the sender's `requestTimeout`): messages refused while the probes are
 * out come back after the probe's remaining time (plus jitter).
 */
export class Breakers {
  readonly #options: Required<BreakerOptions>;
  readonly #probeWaitMs: number;
  readonly #random: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(options: Required<BreakerOptions>, probeWaitMs: number, random: () => number = Math.random) {
    this.#options = options;
    this.#probeWaitMs = probeWaitMs;
    this.#random = random;
  }

  /** A ticket when a request to `origin` may go now, else a {@link Refusal}. */
  admit(origin: string, now: number = Date.now()): Ticket | Refusal {
    const entry = this.#entry(origin);
    if (entry.state === "open") {
      if (now < entry.openUntil) return this.#refusal(origin, entry, entry.openUntil - now);
      entry.state = "half_open";
      entry.probes = 0;
      entry.generation++;
    }
    if (entry.state === "half_open") {
      if (entry.probes >= this.#options.halfOpenProbes) {
        return this.#refusal(origin, entry, Math.max(0, entry.probeUntil - now));
      }
      entry.probes++;
      entry.probeUntil = now + this.#probeWaitMs;
      return { origin, probe: true, generation: entry.generation };
    }
    return { origin, probe: false, generation: entry.generation };
  }

  /**
   * Records the outcome of an admitted request: `failure` is a short description of an
   * unhealthy one (`HTTP 503`, `no response within requestTimeout`), `undefined` a healthy one.
   */
  settle(ticket: Ticket, failure: string | undefined, now: number = Date.now()): void {
    const entry = this.#current(ticket);
    if (entry === undefined) return;
    // Tickets of a closed breaker go stale when it opens (see #current): a ticket still current
    // is either one of a closed breaker's or a probe of a half-open one.
    if (failure === undefined) {
      entry.failures = 0;
      if (ticket.probe) {
        entry.state = "closed";
        entry.opened = 0;
        entry.generation++;
      }
      return;
    }
    entry.failures++;
    entry.lastFailure = failure;
    if (ticket.probe || entry.failures >= this.#options.failureThreshold) this.#open(entry, now);
  }

  /** Gives back a ticket whose request says nothing about the endpoint (the send was aborted). */
  release(ticket: Ticket): void {
    if (!ticket.probe) return;
    const entry = this.#current(ticket);
    if (entry !== undefined) entry.probes--;
  }

  /** Every tracked origin's breaker, an open one whose cool-down is over shown as `half_open`. */
  snapshot(now: number = Date.now()): BreakerSnapshot[] {
    const out: BreakerSnapshot[] = [];
    for (const [origin, entry] of this.#entries) {
      const open = entry.state === "open" && now < entry.openUntil;
      out.push({
        origin,
        state: entry.state === "open" && !open ? "half_open" : entry.state,
        failures: entry.failures,
        openUntil: open ? new Date(entry.openUntil) : null,
      });
    }
    return out;
  }

  #open(entry: Entry, now: number): void {
    const { cooldownMs, maxCooldownMs } = this.#options;
    // 2 ** opened stays finite for any count a process reaches; min() holds it to the cap.
    const cooldown = Math.min(maxCooldownMs, cooldownMs * 2 ** entry.opened);
    entry.opened++;
    entry.state = "open";
    entry.openUntil = now + cooldown * (1 - JITTER * this.#random());
    entry.probes = 0;
    entry.generation++;
  }

  /**
   * A refusal retried after `waitMs` (until a probe may go, or until the probe out ends), rounded
   * up to {@link RETRY_GRID_MS}. The relay releases refused messages with one write per distinct
   * delay: rounded, the refusals of one claim share one delay (one write) instead of one each.
   * No random spread on top: measured (`/tmp/review-14/healthy-slowdown.ts 5000`), jitter over
   * the cool-down made refusals share fewer delays, and the extra writes slowed the healthy
   * endpoint's deliveries (14.4 s for 500 healthy messages without, 19.2 s with 2 waves, 26.6 s
   * with 4, 28.3 s with a continuous spread).
   */
  #refusal(origin: string, entry: Entry, waitMs: number): Refusal {
    return {
      retryAfter: Math.ceil(Math.max(1, waitMs) / RETRY_GRID_MS) * RETRY_GRID_MS,
      reason: `circuit breaker open for ${origin} after ${entry.failures} failures in a row (last: ${entry.lastFailure})`,
    };
  }

  /** The entry a ticket was issued by, if it is still tracked and in the same state. */
  #current(ticket: Ticket): Entry | undefined {
    const entry = this.#entries.get(ticket.origin);
    return entry?.generation === ticket.generation ? entry : undefined;
  }

  #entry(origin: string): Entry {
    let entry = this.#entries.get(origin);
    if (entry !== undefined) {
      // Map order is recency order: the least recently used entry comes first.
      this.#entries.delete(origin);
      this.#entries.set(origin, entry);
      return entry;
    }
    if (this.#entries.size >= MAX_ORIGINS) this.#evict();
    entry = {
      state: "closed",
      failures: 0,
      openUntil: 0,
      opened: 0,
      probeUntil: 0,
      probes: 0,
      generation: 0,
      lastFailure: "",
    };
    this.#entries.set(origin, entry);
    return entry;
  }

  /**
   * Makes room for one origin, forgetting what says least about an endpoint: the least recently
   * used closed entry without failures; else the closed entry with the fewest failures, the most
   * recently used of those (with more failing origins than slots in rotation, dropping the least
   * recently used would drop the very origin that comes next, so none would ever reach the
   * threshold); else, every entry being open or half-open, the one whose cool-down ends first
   * (it would let a probe through soonest anyway).
   */
  #evict(): void {
    let fewest: [string, Entry] | undefined;
    let soonest: [string, Entry] | undefined;
    for (const pair of this.#entries) {
      const [origin, entry] = pair;
      if (entry.state === "closed") {
        if (entry.failures === 0) {
          this.#entries.delete(origin);
          return;
        }
        if (fewest === undefined || entry.failures <= fewest[1].failures) fewest = pair;
      } else if (soonest === undefined || entry.openUntil < soonest[1].openUntil) {
        soonest = pair;
      }
    }
    const victim = fewest ?? soonest;
    if (victim !== undefined) this.#entries.delete(victim[0]);
  }
}

/** Whether {@link Breakers.admit} let the request through. */
export function isTicket(admission: Ticket | Refusal): admission is Ticket {
  return "generation" in admission;
}
