import { SendDeadlines } from "./abort.ts";
import { isInstanceOf, ValidationError } from "./errors.ts";
import type { Wakes } from "./loop.ts";
import { checkBudget } from "./options.ts";
import { type RelayContext, relayPass } from "./relay.ts";
import type { Claim } from "./store.ts";
import type { TickSpan } from "./telemetry.ts";
import { LoopTurns } from "./turns.ts";
import { relayWindow } from "./window.ts";

/** Counts of one `tick()`. */
export interface TickResult {
  /**
   * Relay passes that handed at least one message to the sender (or declared it dead); with a
   * windowed sender (`Sender.window`), claims that did.
   */
  batches: number;
  /** Messages delivered. */
  sent: number;
  /**
   * Messages that failed an attempt and wait for a retry. Those the sender did not attempt
   * (`markAsFailed({ attempted: false })`) are given back without spending an attempt and are
   * no failure of delivery: counted here only when the store has no `release` (then they are
   * recorded as a failed attempt).
   */
  failed: number;
  /** Messages given up on (retries spent, or a permanent failure). */
  dead: number;
  /** Wall time of the tick in milliseconds (including any wait for a pass already running). */
  durationMs: number;
}

/** How one drain runs. */
export interface DrainOptions {
  /** Stops starting passes once aborted; a send in flight is aborted too (its messages fail). */
  signal?: AbortSignal | undefined;
  /** Starts no new pass after this many milliseconds since `started`. */
  budgetMs?: number | undefined;
  /** `performance.now()` when the caller asked for the drain (the budget counts from it). */
  started: number;
  /** True once the drain must end (the loop was stopped). */
  stopping: () => boolean;
  /** A `tick()` always has a span; a loop pass only when it claims or fails. */
  spanWhenIdle: boolean;
  /** The loop's `wake()` calls during a loop pass (the send window claims again at once). */
  wakes?: Wakes | undefined;
}

// Longest stretch (ms) a drain runs without letting the event loop's other tasks in (see LoopTurns).
const YIELD_EVERY_MS = 50;

/**
 * Relays pass after pass until nothing is ready, the budget is spent, the signal aborts or
 * `stopping()` turns true. Budget, abort and stop are checked before every claim and again
 * between a claim and its send: a batch claimed when the drain had to end is given back unsent
 * (see {@link relayPass}), never failed with an attempt that did not happen. Store errors
 * reject; sender errors go to `onError`.
 */
export async function drain(context: RelayContext, options: DrainOptions): Promise<TickResult> {
  const { signal, budgetMs, started, stopping } = options;
  checkBudget(budgetMs);
  checkSignal(signal);
  const result: TickResult = { batches: 0, sent: 0, failed: 0, dead: 0, durationMs: 0 };
  const tick = context.telemetry.tick(options.spanWhenIdle);
  const turns = new LoopTurns(YIELD_EVERY_MS);
  const deadlines = new SendDeadlines(context.options.sendTimeout);
  const continues = () =>
    !signal?.aborted && !stopping() && (budgetMs === undefined || performance.now() - started < budgetMs);
  let next: Claim | undefined;
  try {
    if (context.window !== undefined) {
      const { wakes } = options;
      await relayWindow(context, context.window, { signal, continues, tick, turns, result, wakes });
      return finish(result, started, tick);
    }
    // Bounded: every pass claims nothing (and ends the loop), gives its claim back (and ends
    // the loop), or moves messages forward.
    while (next !== undefined || continues()) {
      // A claim the previous pass made is always handed to a pass: it sends it, or, when the
      // drain has to end now, gives it back.
      const pass = await relayPass(context, signal, tick, { claim: next, continues, deadlines });
      if (pass.claimed === 0 || pass.released) break;
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
  return finish(result, started, tick);
}

function finish(result: TickResult, started: number, tick: TickSpan): TickResult {
  result.durationMs = performance.now() - started;
  tick.end(result);
  return result;
}

/** A `signal` must be a real `AbortSignal`: the send's deadline listens to it. */
function checkSignal(signal: unknown): void {
  if (signal !== undefined && !isInstanceOf(signal, AbortSignal)) {
    throw new ValidationError(
      `signal must be an AbortSignal, got ${signal === null ? "null" : typeof signal}`,
    );
  }
}
