/**
 * How the relay reports what it survives: the user's `onError`, contained so that a throwing or
 * rejecting handler can neither crash the process nor break a pass, and the default handler,
 * which logs one line per error and per failed batch, rate-limited.
 *
 * @module
 */
import { describeValue, isInstanceOf, OutboxError } from "./errors.ts";
import { type Message, SendStatus } from "./message.ts";

/** The default `onError` (and the fallback for a throwing one) writes at most one line per this many ms. */
export const LOG_INTERVAL_MS = 10_000;

const PREFIX = "[edge-outbox]";
// Ids and reasons a failed-batch line names; the rest are counted.
const LINE_MESSAGES = 3;
const LINE_REASON_LENGTH = 200;

/**
 * Writes at most one line per `intervalMs`; the lines held back in between are counted, and the
 * next line written says how many, or, when none comes, a summary line written when the
 * interval ends (an unref'd timer, so it never keeps a process alive) or at {@link flush}.
 * `console.error` itself may be replaced by the application: a throw from it is swallowed,
 * since there is nowhere left to report it.
 */
export class RateLimitedLog {
  readonly #intervalMs: number;
  readonly #now: () => number;
  #last = Number.NEGATIVE_INFINITY;
  #held = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(intervalMs: number = LOG_INTERVAL_MS, now: () => number = () => performance.now()) {
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Writes `parts` with `console.error` unless a line went out less than `intervalMs` ago. */
  write(...parts: unknown[]): boolean {
    const now = this.#now();
    if (now - this.#last < this.#intervalMs) {
      this.#held += 1;
      this.#scheduleFlush(this.#last + this.#intervalMs - now);
      return false;
    }
    this.#last = now;
    this.#print(parts, this.#takeHeld());
    return true;
  }

  /** Writes the count of lines held back now, if any (`stop()` calls it for the default log). */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const note = this.#takeHeld();
    if (note.length > 0) this.#print([], note);
  }

  #scheduleFlush(delay: number): void {
    if (this.#timer !== undefined) return;
    try {
      this.#timer = setTimeout(
        () => {
          this.#timer = undefined;
          this.flush();
        },
        Math.max(0, delay),
      );
      // Node and Bun: the summary must not keep the process alive. Elsewhere there is no unref.
      (this.#timer as { unref?: () => void }).unref?.();
    } catch {
      // No timers here (or a broken one): the next line written carries the count.
    }
  }

  #takeHeld(): string[] {
    const held = this.#held;
    this.#held = 0;
    return held > 0 ? [`(${held} more line(s) held back in the last ${this.#intervalMs / 1000} s)`] : [];
  }

  #print(parts: unknown[], note: string[]): void {
    try {
      console.error(PREFIX, ...parts, ...note);
    } catch {
      // Nothing left to report to.
    }
  }
}

/**
 * The default `onError`: one line per error, one per failed batch, each kind under its own
 * limit, so a flood of failed deliveries cannot hide a store error.
 */
class DefaultLog {
  readonly #errors = new RateLimitedLog();
  readonly #batches = new RateLimitedLog();

  readonly error = (error: unknown): void => {
    // Our own errors say all in their message; anything else keeps its stack.
    if (isInstanceOf(error, OutboxError)) this.#errors.write(`${error.code}: ${describeValue(error)}`);
    else this.#errors.write(error);
  };

  readonly failedBatch = (messages: readonly Message[]): void => {
    const line = failedBatchLine(messages);
    if (line !== "") this.#batches.write(line);
  };

  readonly flush = (): void => {
    this.#errors.flush();
    this.#batches.flush();
  };
}

/**
 * One line about the messages of a batch that the sender failed or killed: how many, and the
 * ids and reasons of the first few. Empty when none did. Messages failed without an attempt
 * (`attempted: false`, an open breaker) are left out: nothing was delivered wrong, and a
 * breaker reports its own state.
 */
export function failedBatchLine(messages: readonly Message[]): string {
  const failed = messages.filter((m) => m.status === SendStatus.Fail && m.attempted);
  const dead = messages.filter((m) => m.status === SendStatus.Dead);
  if (failed.length + dead.length === 0) return "";
  const named = [...failed, ...dead].slice(0, LINE_MESSAGES).map((m) => {
    const reason = m.error === undefined ? "no reason given" : m.error.slice(0, LINE_REASON_LENGTH);
    return `${m.id}${m.status === SendStatus.Dead ? " (dead)" : ""}: ${reason}`;
  });
  const more = failed.length + dead.length - named.length;
  return `delivery failed for ${failed.length + dead.length} of ${messages.length} message(s) (${failed.length} will be retried, ${dead.length} dead): ${named.join("; ")}${more > 0 ? `; and ${more} more` : ""}`;
}

const failureLogs = new WeakMap<(error: unknown) => void, (messages: readonly Message[]) => void>();
const flushes = new WeakMap<(error: unknown) => void, () => void>();

/**
 * `onError` (the default when undefined) wrapped so that calling it never throws and never
 * leaves a rejected promise behind: a throw or a rejection of the handler goes to
 * `console.error` (rate-limited), with the error it was reporting.
 */
export function guardOnError(onError?: (error: unknown) => void): (error: unknown) => void {
  const log = onError === undefined ? new DefaultLog() : undefined;
  const handler = onError ?? (log as DefaultLog).error;
  const fallback = new RateLimitedLog();
  const broke = (thrown: unknown, error: unknown) =>
    fallback.write(`onError threw (${describeValue(thrown)}) while reporting:`, error);
  const guarded = (error: unknown): void => {
    try {
      const result: unknown = handler(error);
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === "function") {
        (result as PromiseLike<unknown>).then(undefined, (thrown: unknown) => broke(thrown, error));
      }
    } catch (thrown) {
      broke(thrown, error);
    }
  };
  if (log !== undefined) failureLogs.set(guarded, log.failedBatch);
  flushes.set(guarded, () => {
    log?.flush();
    fallback.flush();
  });
  return guarded;
}

/** Writes what the logs of a guarded `onError` held back (for `stop()`); a no-op for others. */
export function flushLogs(onError: (error: unknown) => void): void {
  flushes.get(onError)?.();
}

/**
 * The failed-batch logger of a guarded default `onError`; undefined for the user's own handler
 * (which gets errors only: a sender's per-message failures are in the metrics and `listDead`).
 */
export function failedBatchLog(
  onError: (error: unknown) => void,
): ((messages: readonly Message[]) => void) | undefined {
  return failureLogs.get(onError);
}
