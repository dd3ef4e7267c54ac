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
  /** Ends the deadline: the timeout no longer applies and the parent listener is removed. */
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
  /** Aborted through its clock's listener on the parent signal, not one of its own. */
  shared = false;
  /** Called once when the signal aborts (the race's loser, or `aborted`'s resolver). */
  #onAbort: (() => void) | undefined;

  /**
   * `listen`: whether this send listens to `parent` itself (false when its clock's one listener
   * on that signal covers it, see {@link SendDeadlines.start}).
   */
  constructor(clock: SendDeadlines, due: number, parent: AbortSignal | undefined, listen: boolean) {
    this.#clock = clock;
    this.due = due;
    this.#parent = listen ? parent : undefined;
    if (parent?.aborted) this.abort(parent.reason, false);
    else if (listen) parent?.addEventListener("abort", this);
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
    this.#clock.trim();
    this.#parent?.removeEventListener("abort", this);
  }

  /** The parent's abort (this object is its listener: no closure per send). */
  handleEvent(): void {
    this.abort(this.#parent?.reason, false);
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
  /** The signal this clock listens to for its sends (the first one given), until disposed. */
  #parent: AbortSignal | undefined;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** The deadline of a send starting now; dispose of it once the send is over. */
  start(parent?: AbortSignal): Deadline {
    // The sends of a drain share its signal: one listener on it for all of them (the window
    // starts a send per message, and a listener added and removed costs a few µs in Node).
    if (parent !== undefined && this.#parent === undefined && !parent.aborted) {
      this.#parent = parent;
      parent.addEventListener("abort", this);
    }
    const shared = parent !== undefined && parent === this.#parent;
    const running = new Running(this, performance.now() + this.#timeoutMs, parent, !shared);
    running.shared = shared;
    if (running.done) return running;
    this.#disposed = false;
    this.#queue.push(running);
    this.#timer ??= setTimeout(() => this.#check(), this.#timeoutMs);
    return running;
  }

  /**
   * Clears the timer: nothing of the drain is left to keep a process alive. A send still
   * running keeps its deadline: the timer then goes once the last of them is over.
   */
  dispose(): void {
    this.#disposed = true;
    this.trim();
  }

  /** Drops the finished sends at the head; once disposed and empty, the timer too. */
  trim(): void {
    const queue = this.#queue;
    while (this.#head < queue.length && queue[this.#head]!.done) queue[this.#head++] = undefined;
    if (this.#head === queue.length) {
      queue.length = 0;
      this.#head = 0;
      if (this.#disposed) {
        clearTimeout(this.#timer);
        this.#timer = undefined;
        this.#parent?.removeEventListener("abort", this);
        this.#parent = undefined;
      }
    } else if (this.#head > 1024 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The shared parent signal aborted: so does every send still running under it. */
  handleEvent(): void {
    const reason = this.#parent?.reason;
    // Bounded: one look at each send in the queue.
    for (let i = this.#head; i < this.#queue.length; i++) {
      const running = this.#queue[i];
      if (running?.shared && !running.done) running.abort(reason, false);
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
