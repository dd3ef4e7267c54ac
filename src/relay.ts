import type { SendDeadlines } from "./abort.ts";
import { type Message, SendStatus } from "./message.ts";
import type { ResolvedOptions } from "./options.ts";
import {
  checkLease,
  idOf,
  outcomeOf,
  type RelayOutcome,
  recordMarks,
  recordReleases,
  releaseUnsent,
  sortClaimed,
} from "./outcome.ts";
import { sendBatch } from "./send.ts";
import type { Sender } from "./sender.ts";
import type { Claim, ClaimOptions, MessageStore } from "./store.ts";
import type { BatchOutcome, RelayTelemetry, TickSpan } from "./telemetry.ts";

/** What one pass claimed and what it recorded. */
export interface PassResult extends BatchOutcome {
  claimed: number;
  /**
   * True when the pass gave its claim back unsent (`store.release`) because the drain had to
   * end between the claim and the send: nothing was attempted, nothing counts.
   */
  released?: boolean;
  /**
   * The next batch, when the pass recorded its outcome and claimed the next batch in one
   * `recordAndFetch` call. The caller must pass it as `claim` to the next pass, even if that pass
   * will not send it: only a pass releases or relays a claim.
   */
  next?: Claim | undefined;
}

/** Everything a pass needs; built once by `Outbox`. */
export interface RelayContext {
  store: MessageStore;
  sender: Sender;
  /** `onError` is the guarded one: it never throws. */
  options: ResolvedOptions;
  telemetry: RelayTelemetry;
  /**
   * The sender's `window`, checked (see `Sender.window`): the drain then streams through
   * `relayWindow` instead of batch passes. Undefined for a batch sender.
   */
  window?: number | undefined;
  /** With the default `onError`: logs a batch whose messages the sender failed. */
  logFailedBatch?: ((messages: readonly Message[]) => void) | undefined;
}

/** How a pass fits into a drain. */
export interface PassPlan {
  /** A batch the previous pass already claimed (pipelined); without it the pass claims its own. */
  claim?: Claim | undefined;
  /**
   * Whether the drain goes on: asked after the claim (false: the claim is given back unsent)
   * and after the send (true: a store with `recordAndFetch` may record this outcome and claim
   * the next batch in one write).
   */
  continues?: () => boolean;
  /** The drain's send deadlines (one timer for all its passes); without it the pass makes its own. */
  deadlines?: SendDeadlines | undefined;
}

/**
 * One relay pass: claim a batch (unless `plan.claim` brings one), send it under `sendTimeout`,
 * record each outcome, and, when the store has `recordAndFetch` and the drain continues, claim
 * the next batch in the same write. When the drain has to end between the claim and the send
 * (the signal aborted, the budget ran out, `stop()` was called), the batch is never handed to
 * the sender: it goes back with `store.release` (attempts untouched, claimable at once), or,
 * for a store without `release` or when `release` throws, is sent without the caller's signal
 * (under `sendTimeout`), since waiting out the lease would count an attempt that never happened.
 *
 * Store errors propagate (nothing is lost: the claimed rows come back when the lease ends);
 * sender errors fail the unmarked messages and go to `onError`. Its batch span is a child of
 * `tick`'s span and covers this batch's claim (when the pass made it), send and record.
 */
export function relayPass(
  context: RelayContext,
  signal?: AbortSignal,
  tick?: TickSpan,
  plan: PassPlan = {},
): Promise<PassResult> {
  return context.telemetry.batch(tick, async (span) => {
    const started = performance.now();
    const { store, options } = context;
    const claim = plan.claim ?? (await store.fetchAndLock(claimOptions(options)));
    const claimed = claim.messages.length;
    if (claimed === 0) return { claimed, sent: 0, failed: 0, dead: 0 };
    let sendSignal = signal;
    if (plan.continues?.() === false) {
      const ids = claim.messages.map((m) => m.id);
      const recording = { store, onError: options.onError };
      if (store.release !== undefined && (await releaseUnsent(recording, claim.token, ids))) {
        return { claimed, released: true, sent: 0, failed: 0, dead: 0 };
      }
      // No release, or it failed: the claim is still ours, and waiting out its lease would count
      // an attempt that never happened, so it is sent as a store without release would send it.
      sendSignal = undefined;
    }
    context.telemetry.claimed(span, claim.messages);

    const { toSend, exhausted } = sortClaimed(claim.messages, options.maxRetries);
    const sending = { sender: context.sender, sendTimeout: options.sendTimeout, onError: options.onError };
    const messages = toSend.map((s) => s.message);
    const sendError =
      toSend.length > 0
        ? await context.telemetry.within(
            span,
            sendBatch,
            sending,
            messages.slice(),
            sendSignal,
            plan.deadlines,
          )
        : undefined;

    const outcome = outcomeOf(claim.token, exhausted, toSend, options);
    const result = await recordOutcome(context, outcome, plan);
    context.telemetry.recorded(span, claimed, result, performance.now() - started, sendError);
    // A batch-wide error went to onError already; this is the sender's own per-message verdict.
    if (sendError === undefined && messages.some((m) => m.status !== SendStatus.Sent)) {
      context.logFailedBatch?.(messages);
    }
    return { claimed, ...result };
  });
}

function claimOptions(options: ResolvedOptions): ClaimOptions {
  return { batchSize: options.batchSize, leaseDuration: options.leaseDuration, ordering: options.ordering };
}

/**
 * Stores the outcome: with the next claim in one `recordAndFetch` when the store has it and the
 * drain continues (asked only now, after the send, so a stop or abort during the send is seen),
 * else with the separate marks. If the combined write fails, the outcome is recorded again with
 * the separate marks before its error propagates: the sends happened, only the claim is lost.
 * Messages the sender did not attempt are released first (their delay keeps them out of that
 * next claim); they count as failed only when recorded as a failed attempt (no `release`).
 * Short counts go to `onError` as `LeaseLostError`s either way.
 */
async function recordOutcome(
  context: RelayContext,
  outcome: RelayOutcome,
  plan: PassPlan,
): Promise<BatchOutcome & { next?: Claim }> {
  const { store } = context;
  const recording = { store, onError: context.options.onError };
  const retried = await recordReleases(recording, outcome.token, outcome.release);
  const { token, sent, retry, dead } = outcome;
  const marks = { token, sent, retry, dead };
  if (store.recordAndFetch !== undefined && plan.continues?.() === true) {
    let combined: Awaited<ReturnType<typeof store.recordAndFetch>>;
    try {
      combined = await store.recordAndFetch(marks, claimOptions(context.options));
    } catch (error) {
      await recordMarks(recording, marks);
      throw error;
    }
    const { recorded, claim } = combined;
    return {
      sent: checkLease(recording, sent, recorded.sent),
      failed: checkLease(recording, retry.map(idOf), recorded.failed) + retried,
      dead: checkLease(recording, dead.map(idOf), recorded.dead),
      next: claim,
    };
  }
  const recorded = await recordMarks(recording, marks);
  return { ...recorded, failed: recorded.failed + retried };
}
