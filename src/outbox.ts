import { SendDeadlines } from "./abort.ts";
import { ValidationError } from "./errors.ts";
import { type NewMessage, prepareMessage } from "./message.ts";
import { checkBudget, type OutboxOptions, type ResolvedOptions, resolveOptions } from "./options.ts";
import { type RelayContext, relayPass } from "./relay.ts";
import type { Sender } from "./sender.ts";
import type { Claim, OutboxStats, TransactionalStore } from "./store.ts";
import { RelayTelemetry } from "./telemetry.ts";
import { observeStats } from "./telemetry-stats.ts";
import { injectTraceContext } from "./trace-context.ts";
import { LoopTurns } from "./turns.ts";

/** Counts of one `tick()`. */
export interface TickResult {
  /** Relay passes that claimed at least one message. */
  batches: number;
  /** Messages delivered. */
  sent: number;
  /** Messages that failed and wait for a retry. */
  failed: number;
  /** Messages given up on (retries spent, or a permanent failure). */
  dead: number;
  /** Wall time of the tick in milliseconds. */
  durationMs: number;
}

/** Options of {@link Outbox.tick}. */
export interface TickOptions {
  /**
   * Stops starting passes once aborted; a send in flight is aborted too (its messages fail). A
   * batch that a pipelined store had already claimed for the next pass when the signal aborted
   * is still sent (under `sendTimeout` only), never failed unsent.
   */
  signal?: AbortSignal;
  /**
   * Starts no new pass after this many milliseconds. A pass already running finishes, so a
   * tick may overrun by one pass (at most `sendTimeout` plus the database work).
   */
  budgetMs?: number;
}

/**
 * The transactional outbox: writes messages in the caller's transaction and relays them.
 *
 * @example
 * ```ts
 * const outbox = new Outbox(new LibsqlStore(client), httpSender({ url, secret }));
 * const tx = await client.transaction("write");
 * await tx.execute({ sql: "INSERT INTO orders (id) VALUES (?)", args: [id] });
 * await outbox.addMessage(tx, { key: `order:${id}`, value: JSON.stringify({ id }) });
 * await tx.commit();
 * outbox.wake(); // or: await outbox.tick() from a cron trigger
 * ```
 */
export class Outbox<T> {
  /** The options in force, defaults filled in. */
  readonly options: Readonly<ResolvedOptions>;
  readonly #store: TransactionalStore<T>;
  readonly #context: RelayContext;
  #running = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: Promise<void> | undefined;
  #wakeRequested = false;
  readonly #unobserveStats: () => void;

  /** Throws a `ValidationError` (code `INVALID_OPTIONS`) on any option out of range. */
  constructor(store: TransactionalStore<T>, sender: Sender, options?: OutboxOptions) {
    if (!isStore(store))
      throw new ValidationError("store must implement TransactionalStore (fetchAndLock, addMessage, ...)");
    if (typeof sender?.send !== "function")
      throw new ValidationError("sender must have a send(messages, signal) method");
    this.options = resolveOptions(options);
    this.#store = store;
    const telemetry = new RelayTelemetry(this.options.meter, this.options.tracer);
    this.#context = { store, sender, options: this.options, telemetry };
    this.#unobserveStats = observeStats(telemetry.meter, () => store.stats(), {
      ttl: this.options.statsCacheTtl,
      onError: this.options.onError,
    });
  }

  /**
   * Writes a message inside the caller's transaction `tx`: it is sent only if `tx` commits.
   * Validates first (a `ValidationError` with code `INVALID_MESSAGE`), so bad input writes
   * nothing. Stamps the current UTC time. The active OpenTelemetry context (span and baggage)
   * goes into the headers through the globally registered propagator (`propagation.inject`);
   * headers given here win, and with no propagator registered nothing is added.
   */
  async addMessage(tx: T, message: NewMessage): Promise<void> {
    const prepared = prepareMessage(message, { maxMessageBytes: this.options.maxMessageBytes });
    injectTraceContext(prepared.headers);
    await this.#store.addMessage(tx, prepared);
  }

  /**
   * Relays until nothing is ready, `budgetMs` is spent or `signal` aborts; for cron triggers.
   * Store errors reject (nothing is lost: claimed messages return when their lease ends);
   * sender errors go to `onError` and the tick goes on.
   */
  tick(options: TickOptions = {}): Promise<TickResult> {
    return this.#drain(options, () => false, true);
  }

  /** Outbox statistics from the store. */
  stats(): Promise<OutboxStats> {
    return this.#store.stats();
  }

  /**
   * Starts an in-process loop: a drain every `period` ms, chained so passes never overlap.
   * Idempotent. Errors go to `onError`; the loop never dies from one bad pass.
   */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /**
   * Asks a running loop for a pass now, so a message just committed need not wait up to
   * `period`. Calls during a pass are coalesced into one more pass after it.
   */
  wake(): void {
    if (!this.#running) return;
    if (this.#inFlight) {
      this.#wakeRequested = true;
      return;
    }
    this.#schedule(0);
  }

  /** Stops the loop; resolves once the pass in flight has recorded its outcome. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }

  /**
   * `await using outbox = new Outbox(...)` stops the loop on scope exit and unregisters the
   * observable gauges from the meter (they report nothing for this outbox afterwards). Dispose
   * of short-lived outboxes, or each one keeps its gauge callback on the meter.
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.#unobserveStats();
    return this.stop();
  }

  #schedule(delay: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#inFlight = this.#loopPass().finally(() => {
        this.#inFlight = undefined;
        if (!this.#running) return;
        const again = this.#wakeRequested;
        this.#wakeRequested = false;
        this.#schedule(again ? 0 : this.options.period);
      });
    }, delay);
  }

  async #loopPass(): Promise<void> {
    try {
      await this.#drain({}, () => !this.#running, false);
    } catch (error) {
      this.options.onError(error);
    }
  }

  /** `spanWhenIdle`: a `tick()` always has a span; a loop pass only when it claims or fails. */
  async #drain(options: TickOptions, stopping: () => boolean, spanWhenIdle: boolean): Promise<TickResult> {
    const { signal, budgetMs } = options;
    checkBudget(budgetMs);
    const started = performance.now();
    const result: TickResult = { batches: 0, sent: 0, failed: 0, dead: 0, durationMs: 0 };
    const tick = this.#context.telemetry.tick(spanWhenIdle);
    const turns = new LoopTurns(YIELD_EVERY_MS);
    const deadlines = new SendDeadlines(this.options.sendTimeout);
    // Whether to start (or, pipelined, claim) another pass: budget, abort and stop are all
    // checked before any claim, so a stopping drain never claims a batch it will not send.
    const continues = () =>
      !signal?.aborted && !stopping() && (budgetMs === undefined || performance.now() - started < budgetMs);
    let next: Claim | undefined;
    try {
      // Bounded: every pass either claims nothing (and ends the loop) or moves messages forward.
      while (next !== undefined || continues()) {
        // A batch claimed by the previous pass is relayed even if the drain has to end now (its
        // lease is held): under `stop()` or the budget it is the one pass a drain may overrun by,
        // and a signal that aborted meanwhile does not fail it unsent (`sendTimeout` still bounds it).
        const passSignal = next !== undefined && signal?.aborted ? undefined : signal;
        const pass = await relayPass(this.#context, passSignal, tick, { claim: next, continues, deadlines });
        if (pass.claimed === 0) break;
        result.batches += 1;
        result.sent += pass.sent;
        result.failed += pass.failed;
        result.dead += pass.dead;
        next = pass.next;
        if (next?.messages.length === 0) break;
        // Timers, I/O and native finalizers get a turn at least every YIELD_EVERY_MS.
        await turns.maybeYield();
      }
    } catch (error) {
      tick.end(result, error);
      throw error;
    } finally {
      turns.dispose();
      deadlines.dispose();
    }
    result.durationMs = performance.now() - started;
    tick.end(result);
    return result;
  }
}

// Longest stretch (ms) a drain runs without letting the event loop's other tasks in (see LoopTurns).
const YIELD_EVERY_MS = 50;

function isStore(store: unknown): boolean {
  if (typeof store !== "object" || store === null) return false;
  const s = store as Record<string, unknown>;
  return [
    "fetchAndLock",
    "updateRetryCount",
    "markAsDead",
    "markAsSent",
    "addMessage",
    "withTransaction",
  ].every((name) => typeof s[name] === "function");
}
