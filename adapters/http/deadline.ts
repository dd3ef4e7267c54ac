/** The deadlines of requests (`requestTimeout`) under the deadline of their send (`sendTimeout`). */
import type { AbortHook } from "./transport.ts";

/** A request's signal and whether its own timeout (not the send's) aborted it. */
export interface RequestDeadline extends AbortHook {
  /**
   * Aborts `timeoutMs` after the request started, or when the send's signal aborts. Made on
   * first read: a transport that takes the {@link AbortHook} (the Node one) never needs it.
   */
  readonly signal: AbortSignal;
  /** Whether the request's own timeout fired (the send's signal had not aborted before). */
  timedOut(): boolean;
  /**
   * Whether the send's own deadline (its `sendTimeout`) cut the request after the request had
   * most of the time it could have had: an endpoint that did not answer in time, as telling as
   * a request timeout. False for a caller's abort (any other reason), and for a request that
   * started just before the send's deadline (a batch's last request says little).
   */
  cutBySendTimeout(): boolean;
  /** Ends the deadline: clears the timer. Call it once the request has settled. */
  dispose(): void;
}

/**
 * The request deadlines of one send. The send's signal gets one listener, which aborts every
 * request still running, rather than one listener per request (Node warns past ten listeners on
 * a signal, and `concurrency` may be larger). Hand-rolled rather than `AbortSignal.any` and
 * `AbortSignal.timeout` (as `src/abort.ts`), so it behaves the same on every runtime, and so a
 * request's timer is cleared the moment it ends instead of lingering until it fires. Objects
 * rather than closures: the send window makes one send, so one of these, per message.
 */
export class RequestDeadlines {
  readonly #parent: AbortSignal;
  readonly #timeoutMs: number;
  /** The running requests: the first alone in `#one` (a send of one message needs no Set). */
  #one: RunningRequest | undefined;
  #more: Set<RunningRequest> | undefined;
  readonly #started = performance.now();

  constructor(parent: AbortSignal, timeoutMs: number) {
    this.#parent = parent;
    this.#timeoutMs = timeoutMs;
    // This object is the listener (`handleEvent`): no closure per send.
    parent.addEventListener("abort", this);
  }

  /** The deadline of a request starting now; `reason` is the abort reason when it times out. */
  start(reason: () => Error): RequestDeadline {
    const request = new RunningRequest(this, reason);
    if (this.#parent.aborted) request.abort(this.#parent.reason);
    else if (this.#one === undefined) this.#one = request;
    else {
      this.#more ??= new Set();
      this.#more.add(request);
    }
    return request;
  }

  /** Removes the listener on the send's signal: call it when the send is over. */
  dispose(): void {
    this.#parent.removeEventListener("abort", this);
  }

  /** The send's signal aborted: so does every request still running. */
  handleEvent(): void {
    this.#one?.abort(this.#parent.reason);
    if (this.#more !== undefined) for (const request of this.#more) request.abort(this.#parent.reason);
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** See {@link RequestDeadline.cutBySendTimeout}. */
  cutBySendTimeout(requestStarted: number): boolean {
    if (!this.#parent.aborted || !isTimeout(this.#parent.reason)) return false;
    const now = performance.now();
    // The time this request could have had: its own timeout, or what the send had left.
    const allowed = Math.min(this.#timeoutMs, now - this.#started);
    return now - requestStarted >= allowed / 2;
  }

  forget(request: RunningRequest): void {
    if (this.#one === request) this.#one = undefined;
    else this.#more?.delete(request);
  }
}

/**
 * One request's deadline. Its `AbortSignal` is made only when read: the Node transport listens
 * through {@link AbortHook} instead (an `AbortController` and a listener added and removed are
 * several µs per request in Node, and the send window makes a request per send).
 */
class RunningRequest implements RequestDeadline {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #listener: (() => void) | undefined;
  readonly #deadlines: RequestDeadlines;
  readonly #timeoutReason: () => Error;
  readonly #started = performance.now();
  readonly #timer: ReturnType<typeof setTimeout>;
  #timedOut = false;

  constructor(deadlines: RequestDeadlines, reason: () => Error) {
    this.#deadlines = deadlines;
    this.#timeoutReason = reason;
    this.#timer = setTimeout(RunningRequest.#timeOut, deadlines.timeoutMs, this);
  }

  /** The timer's callback, one for every request (the request is its argument). */
  static #timeOut(request: RunningRequest): void {
    if (request.#aborted) return;
    request.#timedOut = true;
    request.abort(request.#timeoutReason());
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  onAbort(listener: (() => void) | undefined): void {
    this.#listener = listener;
  }

  timedOut(): boolean {
    return this.#timedOut;
  }

  cutBySendTimeout(): boolean {
    return !this.#timedOut && this.#deadlines.cutBySendTimeout(this.#started);
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.();
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.#deadlines.forget(this);
  }
}

/**
 * Whether an abort reason says time ran out: the relay aborts a send at `sendTimeout` with a
 * `TimeoutError` (`src/abort.ts`), as `AbortSignal.timeout` does; `stop()` and a caller's
 * `AbortController.abort()` give other reasons.
 */
function isTimeout(reason: unknown): boolean {
  return (reason as { name?: unknown } | null)?.name === "TimeoutError";
}
