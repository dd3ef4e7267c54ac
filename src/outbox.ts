import { drain, type TickResult } from "./drain.ts";
import { isInstanceOf, ValidationError } from "./errors.ts";
import { Lane, RelayLoop, type Wakes } from "./loop.ts";
import { type NewMessage, prepareMessage } from "./message.ts";
import { claimMetricName } from "./metric-names.ts";
import { type OutboxOptions, type ResolvedOptions, resolveOptions } from "./options.ts";
import type { RelayContext } from "./relay.ts";
import { failedBatchLog, flushLogs } from "./report.ts";
import type { Sender } from "./sender.ts";
import type { OutboxStats, TransactionalStore } from "./store.ts";
import { RelayTelemetry } from "./telemetry.ts";
import { observeStats } from "./telemetry-stats.ts";
import { injectTraceContext } from "./trace-context.ts";
import { MAX_WINDOW, WINDOW_LEASE_MARGIN_MS } from "./window.ts";

export type { TickResult } from "./drain.ts";

/** Options of {@link Outbox.tick}. */
export interface TickOptions {
  /**
   * Stops starting passes once aborted; a send in flight is aborted too (its messages fail). A
   * batch claimed but not yet handed to the sender when the signal aborts is given back unsent
   * (`store.release`), keeping its attempts.
   */
  signal?: AbortSignal;
  /**
   * Starts no new pass after this many milliseconds (counted from the call, so including a wait
   * for a drain already running: when the budget ends during that wait, the tick returns with
   * `batches: 0` without running a pass). A pass already sending finishes, so a tick may overrun
   * by one pass (at most `sendTimeout` plus the database work). With a windowed sender
   * (`Sender.window`) the claims stop, and the messages in flight finish and are recorded.
   */
  budgetMs?: number;
}

/**
 * The transactional outbox: writes messages in the caller's transaction and relays them.
 * One instance relays one pass at a time: the `start()` loop and every `tick()` take turns.
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
  /** The options in force, defaults filled in (`onError` is the contained one). */
  readonly options: Readonly<ResolvedOptions>;
  readonly #store: TransactionalStore<T>;
  readonly #context: RelayContext;
  readonly #lane = new Lane();
  readonly #loop: RelayLoop;
  readonly #unobserveStats: () => void;
  readonly #releaseName: () => void;

  /** Throws a `ValidationError` (code `INVALID_OPTIONS`) on any option out of range. */
  constructor(store: TransactionalStore<T>, sender: Sender, options?: OutboxOptions) {
    if (!isStore(store))
      throw new ValidationError("store must implement TransactionalStore (fetchAndLock, addMessage, ...)");
    if (typeof sender?.send !== "function")
      throw new ValidationError("sender must have a send(messages, signal) method");
    const defaultName = storeName(store);
    const resolved = resolveOptions(options, defaultName);
    const window = senderWindow(sender, resolved);
    const metricName = claimMetricName(
      store,
      resolved.meter,
      resolved.name,
      resolved.name === defaultName,
      resolved.onError,
    );
    this.#releaseName = metricName.release;
    this.options = { ...resolved, name: metricName.name };
    this.#store = store;
    const { onError } = this.options;
    const telemetry = new RelayTelemetry({
      meter: this.options.meter,
      tracer: this.options.tracer,
      name: this.options.name,
      report: onError,
    });
    this.#context = {
      store,
      sender,
      window,
      options: this.options,
      telemetry,
      logFailedBatch: failedBatchLog(onError),
    };
    this.#unobserveStats = observeStats(telemetry.meter, () => store.stats(), {
      ttl: this.options.statsCacheTtl,
      onError,
      attributes: telemetry.attributes,
    });
    this.#loop = new RelayLoop({
      period: this.options.period,
      lane: this.#lane,
      drain: (stopping, wakes) => this.#loopDrain(stopping, wakes),
    });
  }

  /**
   * Writes a message inside the caller's transaction `tx`: it is sent only if `tx` commits.
   * Validates first (a `ValidationError` with code `INVALID_MESSAGE`), so bad input writes
   * nothing. The value is copied: changing your bytes afterwards changes nothing. Stamps the
   * current UTC time. The active OpenTelemetry context (span and baggage) goes into the headers
   * through the globally registered propagator (`propagation.inject`); headers given here win,
   * and with no propagator registered nothing is added.
   */
  async addMessage(tx: T, message: NewMessage): Promise<void> {
    const prepared = prepareMessage(message, { maxMessageBytes: this.options.maxMessageBytes });
    injectTraceContext(prepared.headers);
    await this.#store.addMessage(tx, prepared);
  }

  /**
   * Relays until nothing is ready, `budgetMs` is spent or `signal` aborts; for cron triggers.
   * Waits first for a drain of this instance already running (the loop's or another tick's), at
   * most until `budgetMs` is spent or `signal` aborts (it then returns `batches: 0`), so
   * do not await it inside your sender (see {@link Outbox.stop}). Store errors reject (nothing is lost: claimed messages return when their lease ends);
   * sender errors go to `onError` and the tick goes on.
   */
  tick(options: TickOptions = {}): Promise<TickResult> {
    const started = performance.now();
    const run = () => {
      // Read inside the lane: bad options reject like every other tick failure, never throw.
      const { signal, budgetMs } = (options ?? {}) as TickOptions;
      return drain(this.#context, { signal, budgetMs, started, stopping: () => false, spanWhenIdle: true });
    };
    // The budget and signal bound the wait behind a drain already running too: when they end
    // first, the tick ran no pass and says so.
    const until = waitBounds(options, started);
    if (until === undefined) return this.#lane.run(run);
    const empty = (): TickResult => ({
      batches: 0,
      sent: 0,
      failed: 0,
      dead: 0,
      durationMs: performance.now() - started,
    });
    return this.#lane.runWithin(run, until, empty);
  }

  /** Outbox statistics from the store. */
  stats(): Promise<OutboxStats> {
    return this.#store.stats();
  }

  /**
   * Starts an in-process loop: a drain every `period` ms, never overlapping another pass of
   * this instance. Idempotent. Errors go to `onError`; the loop never dies from one bad pass.
   */
  start(): void {
    this.#loop.start();
  }

  /**
   * Asks a running loop for a pass now, so a message just committed need not wait up to
   * `period`. Calls during a pass are coalesced into one more pass after it.
   */
  wake(): void {
    this.#loop.wake();
  }

  /**
   * Stops the loop; resolves once every pass in flight (the loop's, and any `tick()` running or
   * waiting) has recorded its outcome. A batch claimed for the next pass is given back unsent.
   * Do not await it inside your sender: it waits for the very pass that runs the sender, which
   * then ends only at `sendTimeout`, failing its batch.
   */
  async stop(): Promise<void> {
    try {
      await this.#loop.stop();
    } finally {
      // Lines the default log held back are written now rather than lost with the process.
      flushLogs(this.options.onError);
    }
  }

  /**
   * `await using outbox = new Outbox(...)` stops the loop on scope exit and unregisters the
   * observable gauges from the meter (they report nothing for this outbox afterwards). Dispose
   * of short-lived outboxes, or each one keeps its gauge callback on the meter.
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.#unobserveStats();
    this.#releaseName();
    return this.stop();
  }

  async #loopDrain(stopping: () => boolean, wakes: Wakes): Promise<void> {
    try {
      await drain(this.#context, { started: performance.now(), stopping, spanWhenIdle: false, wakes });
    } catch (error) {
      this.options.onError(error);
    }
  }
}

/** How errors name the window: users of httpSender set it as `concurrency`, never `window`. */
const windowName = "the sender's window (Sender.window; httpSender's concurrency)";

/**
 * The sender's `window` (see `Sender.window`), checked: undefined, or an integer from 1 to
 * {@link MAX_WINDOW}, and then the lease must cover the wait for a slot, a send and its grouped write.
 */
function senderWindow(sender: Sender, options: ResolvedOptions): number | undefined {
  let window: unknown;
  try {
    window = sender.window;
  } catch (error) {
    throw new ValidationError(`${windowName} threw when read`, { cause: error });
  }
  if (window === undefined) return undefined;
  if (typeof window !== "number" || !Number.isSafeInteger(window) || window < 1 || window > MAX_WINDOW) {
    throw new ValidationError(
      `${windowName} must be an integer from 1 to ${MAX_WINDOW}, got ${typeof window === "number" ? window : typeof window}`,
    );
  }
  const needed = options.sendTimeout + WINDOW_LEASE_MARGIN_MS;
  if (options.leaseDuration < needed) {
    throw new ValidationError(
      `leaseDuration must be at least sendTimeout + ${WINDOW_LEASE_MARGIN_MS} ms (${needed} ms) with ${windowName}: a claimed message may wait for a free slot, and its outcome is written after its send in a grouped write; got ${options.leaseDuration}`,
    );
  }
  return window;
}

/** The default `name`: the store's `name` or `table` property when it is a non-empty string. */
function storeName(store: object): string {
  for (const property of ["name", "table"]) {
    try {
      const value: unknown = (store as Record<string, unknown>)[property];
      if (typeof value === "string" && value.length > 0 && value.length <= 200) return value;
    } catch {
      // A throwing getter names nothing.
    }
  }
  return "outbox";
}

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

/**
 * The signal and deadline of valid tick options, or undefined when there are none or the options
 * are invalid (the drain then rejects them in its turn, as before).
 */
function waitBounds(
  options: TickOptions | undefined,
  started: number,
): { signal?: AbortSignal | undefined; deadline?: number | undefined } | undefined {
  try {
    const { signal, budgetMs } = (options ?? {}) as TickOptions;
    const validSignal = signal !== undefined && isInstanceOf(signal, AbortSignal) ? signal : undefined;
    const validBudget = typeof budgetMs === "number" && budgetMs >= 0;
    if ((signal !== undefined && validSignal === undefined) || (budgetMs !== undefined && !validBudget)) {
      return undefined;
    }
    // An infinite budget is valid and bounds nothing; the signal, if any, still bounds the wait.
    const deadline = Number.isFinite(budgetMs) ? started + (budgetMs as number) : undefined;
    return validSignal === undefined && deadline === undefined
      ? undefined
      : { signal: validSignal, deadline };
  } catch {
    return undefined;
  }
}
