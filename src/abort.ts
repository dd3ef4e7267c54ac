/** The deadline of one send: see {@link SendDeadlines.start}. */
export interface Deadline {
  /** Aborts after the timeout or when the parent signal aborts, whichever is first. */
  readonly signal: AbortSignal;
  /** Resolves (never rejects) when `signal` aborts: for racing work that ignores the signal. */
  readonly aborted: Promise<void>;
  /**
   * Settles as `work` does, or with `timedOut` as soon as `signal` aborts, whichever is first:
   * {@link aborted} raced against `work`, for one promise instead of four.
   */
  race<T, U>(work: T | PromiseLike<T>, timedOut: U): Promise<Awaited<T> | U>;
  /** Whether the timeout (not the parent) aborted `signal`. */
  timedOut(): boolean;
  /** Ends the deadline: neither the timeout nor the parent's abort applies any more. */
  dispose(): void;
}

/**
 * One running send. A class rather than closures per send: the window starts one send per
 * message, and its deadline is part of the relay's cost per message.
 */
class Running implements Deadline {
  readonly due: number;
  readonly #controller = new AbortController();
  readonly #parent: AbortSignal | undefined;
  readonly #clock: SendDeadlines;
  #timedOut = false;
  /** Disposed or aborted: the clock no longer watches it. */
  done = false;
  /** Called once when the signal aborts (the race's loser, or `aborted`'s resolver). */
  #onAbort: (() => void) | undefined;

  constructor(clock: SendDeadlines, due: number, parent: AbortSignal | undefined) {
    this.#clock = clock;
    this.due = due;
    this.#parent = parent;
    if (parent?.aborted) this.abort(parent.reason, false);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get aborted(): Promise<void> {
    return new Promise((resolve) => this.#whenAborted(resolve));
  }

  race<T, U>(work: T | PromiseLike<T>, timedOut: U): Promise<Awaited<T> | U> {
    return new Promise<Awaited<T> | U>((resolve, reject) => {
      this.#whenAborted(() => resolve(timedOut));
      // Whatever the work is (a value, a thenable whose `then` throws): settled as await would.
      Promise.resolve(work).then(resolve, reject);
    });
  }

  timedOut(): boolean {
    return this.#timedOut;
  }

  dispose(): void {
    this.done = true;
    // The waiters hold the send's scope (its messages): a send hanging at the head of the
    // clock's queue keeps every later one here until it ends.
    this.#onAbort = undefined;
    this.#clock.trim();
  }

  /** Aborts with the parent's reason if `parent` is this send's parent (see SendDeadlines). */
  abortFrom(parent: AbortSignal): void {
    if (!this.done && this.#parent === parent) this.abort(parent.reason, false);
  }

  abort(reason: unknown, timedOut: boolean): void {
    if (this.#controller.signal.aborted) return;
    this.#timedOut = timedOut;
    this.done = true;
    this.#controller.abort(reason);
    const wake = this.#onAbort;
    this.#onAbort = undefined;
    wake?.();
  }

  #whenAborted(wake: () => void): void {
    if (this.#controller.signal.aborted) {
      wake();
      return;
    }
    const before = this.#onAbort;
    this.#onAbort =
      before === undefined
        ? wake
        : () => {
            before();
            wake();
          };
  }
}

/**
 * Deadlines for the sends of one drain, on one timer, whether they run one after another (batch
 * passes) or many at once (the send window). Each send gets its own signal, aborted `timeoutMs`
 * after its start or when the parent signal aborts; but a drain of many quick sends arms a timer
 * once per `timeoutMs`, not once per send (measured: a timer per pass was a fifth of the relay's
 * own cost on a local database). Sends share one timeout, so they are due in the order they
 * started: the timer aborts the due ones at the head of that queue, then is armed again for the
 * next one still running.
 *
 * Hand-rolled rather than `AbortSignal.any`/`AbortSignal.timeout` so that it behaves the same
 * on every runtime, including older workerd and Node 20.0-20.2.
 */
export class SendDeadlines {
  readonly #timeoutMs: number;
  /** Sends by start, oldest at `#head`; disposed ones leave as the head passes them. */
  #queue: (Running | undefined)[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #disposed = false;
  /**
   * The parent signals listened to: one listener per parent for the whole drain, not one per
   * send (a window of 20 would pass Node's limit of 10 listeners per signal).
   */
  readonly #parents = new Set<AbortSignal>();
  readonly #onParentAbort = (event: Event): void => {
    const parent = event.target as AbortSignal;
    // This array, even if a send's dispose (run by its own abort) trims the queue into a new one.
    // Bounded: one pass over the sends in flight.
    const queue = this.#queue;
    for (let i = this.#head; i < queue.length; i++) queue[i]?.abortFrom(parent);
  };

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** The deadline of a send starting now; dispose of it once the send is over. */
  start(parent?: AbortSignal): Deadline {
    const running = new Running(this, performance.now() + this.#timeoutMs, parent);
    if (running.done) return running;
    this.#disposed = false;
    if (parent !== undefined && !this.#parents.has(parent)) {
      this.#parents.add(parent);
      parent.addEventListener("abort", this.#onParentAbort);
    }
    this.#queue.push(running);
    this.#timer ??= setTimeout(() => this.#check(), this.#timeoutMs);
    return running;
  }

  /**
   * Clears the timer and the parent listeners: nothing of the drain is left to keep a process
   * alive or to hold on to. A send still running keeps its deadline: the timer and listeners
   * then go once the last of them is over.
   */
  dispose(): void {
    this.#disposed = true;
    this.trim();
  }

  /** Drops the finished sends at the head; once disposed and empty, the timer and listeners too. */
  trim(): void {
    const queue = this.#queue;
    while (this.#head < queue.length && queue[this.#head]!.done) queue[this.#head++] = undefined;
    if (this.#head === queue.length) {
      queue.length = 0;
      this.#head = 0;
      if (this.#disposed) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
        for (const parent of this.#parents) parent.removeEventListener("abort", this.#onParentAbort);
        this.#parents.clear();
      }
    } else if (this.#head > 1024 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
  }

  #check(): void {
    this.#timer = undefined;
    const now = performance.now();
    // Bounded: each turn removes the head.
    while (this.#head < this.#queue.length) {
      const running = this.#queue[this.#head]!;
      if (!running.done) {
        const left = running.due - now;
        if (left > 0) {
          this.#timer = setTimeout(() => this.#check(), Math.ceil(left));
          break;
        }
        running.abort(new DOMException(`timed out after ${this.#timeoutMs} ms`, "TimeoutError"), true);
      }
      this.#queue[this.#head++] = undefined;
    }
    this.trim();
  }
}
