/**
 * The in-process relay loop of one `Outbox` and the lane that keeps its passes (and those of
 * `tick()`) one at a time.
 *
 * @module
 */
import { MAX_TIMER_MS } from "./options.ts";

const noop = () => {};

/** `ms` as a delay `setTimeout` keeps: 0 to {@link MAX_TIMER_MS}. */
const clampDelay = (ms: number): number => Math.min(Math.max(0, ms), MAX_TIMER_MS);

/**
 * Runs work one piece at a time, in call order: the next piece starts when the one before has
 * settled. `idle()` resolves when everything queued so far has settled.
 */
export class Lane {
  #tail: Promise<void> = Promise.resolve();
  // Pieces queued or running: a wait is only raced when there is something to wait behind.
  #pending = 0;

  /** Queues `fn`; resolves or rejects as it does. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    this.#pending += 1;
    const result = this.#tail.then(fn);
    this.#tail = result.then(noop, noop).then(() => {
      this.#pending -= 1;
    });
    return result;
  }

  /**
   * Like {@link run}, but gives up waiting when `signal` aborts or `performance.now()` reaches
   * `deadline` before `fn`'s turn comes: it then resolves with `gaveUp()` and `fn` never runs
   * (its place in the queue passes as a no-op). Once `fn` has started it is never cut short.
   */
  runWithin<T>(
    fn: () => Promise<T>,
    until: { signal?: AbortSignal | undefined; deadline?: number | undefined },
    gaveUp: () => T,
  ): Promise<T> {
    if (this.#pending === 0) return this.run(fn);
    const { signal, deadline } = until;
    let state: "waiting" | "running" | "gave up" = "waiting";
    let timer: ReturnType<typeof setTimeout> | undefined;
    let resolveEarly: (value: T) => void = noop;
    const early = new Promise<T>((resolve) => {
      resolveEarly = resolve;
    });
    const giveUp = () => {
      if (state !== "waiting") return;
      state = "gave up";
      cleanup();
      resolveEarly(gaveUp());
    };
    const cleanup = () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", giveUp);
    };
    const queued = this.run(async () => {
      if (state === "gave up") return undefined;
      state = "running";
      cleanup();
      return { value: await fn() };
    });
    if (signal?.aborted) giveUp();
    else signal?.addEventListener("abort", giveUp, { once: true });
    if (deadline !== undefined && state === "waiting") {
      // setTimeout runs a delay beyond MAX_TIMER_MS after 1 ms: a longer wait takes more timers.
      const waitUntilDeadline = () => {
        const left = deadline - performance.now();
        timer = setTimeout(left > MAX_TIMER_MS ? waitUntilDeadline : giveUp, clampDelay(left));
      };
      waitUntilDeadline();
    }
    return Promise.race([early, queued.then((outcome) => (outcome === undefined ? early : outcome.value))]);
  }

  /** Resolves (never rejects) once all work queued before this call has settled. */
  idle(): Promise<void> {
    return this.#tail;
  }
}

/**
 * How a loop's drain hears `wake()` while it runs: the loop calls `onWake` (set by the drain
 * for as long as it can use it) on every `wake()` during its pass.
 */
export interface Wakes {
  onWake: (() => void) | undefined;
}

/** What a {@link RelayLoop} runs. */
export interface RelayLoopOptions {
  /** Milliseconds between passes. */
  period: number;
  /** The lane the passes queue in (shared with `tick()`). */
  lane: Lane;
  /**
   * One drain; `stopping()` turns true when this loop run was stopped; `wakes` hears the
   * `wake()` calls made during it. Must not reject.
   */
  drain: (stopping: () => boolean, wakes: Wakes) => Promise<void>;
}

/**
 * `start`/`stop`/`wake` of the loop. Every `start()` begins a new run (a generation); a `stop()`
 * ends it. A pass belongs to the run that scheduled it and stops draining once that run ends,
 * and passes of any run queue in one {@link Lane}, so no order of calls makes two passes
 * overlap: `stop()` then `start()` while a pass is in flight queues the new run's first pass
 * behind it.
 */
export class RelayLoop {
  readonly #options: RelayLoopOptions;
  #run = 0;
  #running = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wakeRequested = false;
  readonly #wakes: Wakes = { onWake: undefined };
  // The run whose pass is scheduled to end next (queued or draining), if any.
  #passOf: number | undefined;

  constructor(options: RelayLoopOptions) {
    this.#options = options;
  }

  /** Starts a run: a pass now, then one every `period`. Idempotent while running. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#run += 1;
    this.#wakeRequested = false;
    this.#schedule(0);
  }

  /**
   * A pass now; during a pass, one more pass right after it (calls coalesce), and a drain that
   * listens (the send window) claims again at once.
   */
  wake(): void {
    if (!this.#running) return;
    if (this.#passOf === this.#run) {
      this.#wakeRequested = true;
      this.#wakes.onWake?.();
      return;
    }
    this.#schedule(0);
  }

  /**
   * Ends the run; resolves once every pass queued or in flight (the loop's and `tick()`s') has
   * recorded its outcome.
   */
  stop(): Promise<void> {
    if (this.#running) {
      this.#running = false;
      this.#run += 1;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wakeRequested = false;
    return this.#options.lane.idle();
  }

  #schedule(delay: number): void {
    clearTimeout(this.#timer);
    const run = this.#run;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#pass(run);
    }, delay);
  }

  async #pass(run: number): Promise<void> {
    if (run !== this.#run) return;
    this.#passOf = run;
    try {
      await this.#options.lane.run(() => this.#options.drain(() => run !== this.#run, this.#wakes));
    } catch {
      // `drain` reports its own errors; nothing may escape a timer callback.
    }
    if (run !== this.#run) return;
    this.#passOf = undefined;
    const again = this.#wakeRequested;
    this.#wakeRequested = false;
    this.#schedule(again ? 0 : this.#options.period);
  }
}
