/**
 * Keeps a long drain from starving the event loop. A store and a sender that settle without
 * I/O (a local libSQL file is synchronous underneath; a sender that answers at once) keep a
 * drain in the microtask queue: timers, I/O callbacks and native finalizers (the libSQL driver
 * frees each statement's handle in one) would wait for the whole drain, and the resident set
 * grew by ~10 KB per message. A drain that does real I/O gives the loop its turns anyway; then
 * this costs one zero-delay timer per pass and never waits.
 */
export class LoopTurns {
  readonly #everyMs: number;
  #lastTurn = performance.now();
  #turned = false;
  #marker: ReturnType<typeof setTimeout> | undefined;

  /** `everyMs`: the longest stretch without a turn of the event loop. */
  constructor(everyMs: number) {
    this.#everyMs = everyMs;
    this.#arm();
  }

  /** Resolves at once if the loop had a turn lately; else after one (a zero-delay timer). */
  async maybeYield(): Promise<void> {
    const now = performance.now();
    if (this.#turned) {
      this.#lastTurn = now;
      this.#arm();
      return;
    }
    if (now - this.#lastTurn < this.#everyMs) return;
    clearTimeout(this.#marker);
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    this.#lastTurn = performance.now();
    this.#arm();
  }

  /** Clears the marker timer. */
  dispose(): void {
    clearTimeout(this.#marker);
    this.#marker = undefined;
  }

  // A zero-delay timer that runs only once the loop gets a turn: its firing is the evidence.
  #arm(): void {
    this.#turned = false;
    this.#marker = setTimeout(() => {
      this.#turned = true;
    }, 0);
  }
}
