/** The deadline of one send: see {@link SendDeadlines.start}. */
export interface Deadline {
  /** Aborts after the timeout or when the parent signal aborts, whichever is first. */
  readonly signal: AbortSignal;
  /** Resolves (never rejects) when `signal` aborts: for racing work that ignores the signal. */
  readonly aborted: Promise<void>;
  /** Whether the timeout (not the parent) aborted `signal`. */
  timedOut(): boolean;
  /** Ends the deadline: the timeout no longer applies and the parent listener is removed. */
  dispose(): void;
}

interface Running {
  readonly due: number;
  abort(reason: unknown): void;
  timedOut: boolean;
}

/**
 * Deadlines for the sends of one drain, one after another, on one timer. Each send gets its own
 * signal, aborted `timeoutMs` after its start or when the parent signal aborts; but a drain of
 * many quick sends arms a timer once per `timeoutMs`, not once per send (measured: a timer per
 * pass was a fifth of the relay's own cost on a local database). When the timer fires early for
 * the send now running, it is armed again for the rest of that send's time.
 *
 * Hand-rolled rather than `AbortSignal.any`/`AbortSignal.timeout` so that it behaves the same
 * on every runtime, including older workerd and Node 20.0-20.2.
 */
export class SendDeadlines {
  readonly #timeoutMs: number;
  #running: Running | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** The deadline of a send starting now; dispose of it before starting the next. */
  start(parent?: AbortSignal): Deadline {
    const controller = new AbortController();
    let settle = () => {};
    const aborted = new Promise<void>((resolve) => {
      settle = resolve;
    });
    const running: Running = {
      due: performance.now() + this.#timeoutMs,
      abort(reason) {
        controller.abort(reason);
        settle();
      },
      timedOut: false,
    };
    const onParentAbort = () => running.abort(parent?.reason);
    this.#running = running;
    this.#timer ??= setTimeout(() => this.#check(), this.#timeoutMs);
    if (parent?.aborted) onParentAbort();
    else parent?.addEventListener("abort", onParentAbort, { once: true });
    return {
      signal: controller.signal,
      aborted,
      timedOut: () => running.timedOut,
      dispose: () => {
        if (this.#running === running) this.#running = undefined;
        parent?.removeEventListener("abort", onParentAbort);
      },
    };
  }

  /** Clears the timer: nothing of the drain is left to keep a process alive. */
  dispose(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running = undefined;
  }

  #check(): void {
    this.#timer = undefined;
    const running = this.#running;
    if (running === undefined) return;
    const left = running.due - performance.now();
    if (left > 0) {
      this.#timer = setTimeout(() => this.#check(), Math.ceil(left));
      return;
    }
    this.#running = undefined;
    running.timedOut = true;
    running.abort(new DOMException(`timed out after ${this.#timeoutMs} ms`, "TimeoutError"));
  }
}
