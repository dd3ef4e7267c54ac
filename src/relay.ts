import type { SendDeadlines } from "./abort.ts";
import { retryDelay } from "./backoff.ts";
import { LeaseLostError } from "./errors.ts";
import { type Message, SendStatus } from "./message.ts";
import type { ResolvedOptions } from "./options.ts";
import { sendBatch } from "./send.ts";
import type { Sender } from "./sender.ts";
import type { Claim, ClaimOptions, DeadUpdate, MessageStore, PassOutcome, RetryUpdate } from "./store.ts";
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
      if (store.release !== undefined && (await release(context, claim))) {
        return { claimed, released: true, sent: 0, failed: 0, dead: 0 };
      }
      // No release, or it failed: the claim is still ours, and waiting out its lease would count
      // an attempt that never happened, so it is sent as a store without release would send it.
      sendSignal = undefined;
    }
    context.telemetry.claimed(span, claim.messages);

    // A message reclaimed after lost leases may have spent its attempts without an outcome
    // (a relay crashed or hung on it every time): it dies here instead of being sent again.
    const exhausted: Message[] = [];
    const toSend: Message[] = [];
    for (const message of claim.messages) {
      (message.retries > options.maxRetries ? exhausted : toSend).push(message);
    }
    // Outcomes are recorded under the ids and attempt counts the store gave, whatever the
    // sender does to its copy.
    const ids = toSend.map((m) => m.id);
    const retries = toSend.map((m) => m.retries);
    const sending = { sender: context.sender, sendTimeout: options.sendTimeout, onError: options.onError };
    const sendError =
      toSend.length > 0
        ? await context.telemetry.within(span, () =>
            sendBatch(sending, toSend.slice(), sendSignal, plan.deadlines),
          )
        : undefined;

    const outcome = outcomeOf(claim.token, exhausted, toSend, { ids, retries }, options);
    const result = await recordOutcome(context, outcome, plan);
    context.telemetry.recorded(span, claimed, result, performance.now() - started, sendError);
    // A batch-wide error went to onError already; this is the sender's own per-message verdict.
    if (sendError === undefined && toSend.some((m) => m.status !== SendStatus.Sent)) {
      context.logFailedBatch?.(toSend);
    }
    return { claimed, ...result };
  });
}

function claimOptions(options: ResolvedOptions): ClaimOptions {
  return { batchSize: options.batchSize, leaseDuration: options.leaseDuration, ordering: options.ordering };
}

/**
 * Gives a claim back unsent: true when it went back. A failure is reported and answers false:
 * the claim is then still held, and the caller sends it rather than leave it to expire.
 */
async function release(context: RelayContext, claim: Claim): Promise<boolean> {
  try {
    await context.store.release?.(
      claim.token,
      claim.messages.map((m) => m.id),
    );
    return true;
  } catch (error) {
    context.options.onError(error);
    return false;
  }
}

/** Sorts the pass's messages into the three marks, by the status the send left on them. */
function outcomeOf(
  token: string,
  exhausted: Message[],
  toSend: Message[],
  given: { ids: readonly string[]; retries: readonly number[] },
  options: ResolvedOptions,
): PassOutcome {
  const sent: string[] = [];
  const retry: RetryUpdate[] = [];
  const dead: DeadUpdate[] = exhausted.map((m) => ({
    id: m.id,
    error: `attempts exhausted: ${m.retries} attempt(s) ended without an outcome (lease expired)`,
  }));
  const now = Date.now();
  toSend.forEach((message, i) => {
    const id = given.ids[i] as string;
    const attempts = given.retries[i] as number;
    const status = message.status;
    if (status === SendStatus.Sent) sent.push(id);
    else if (status === SendStatus.Dead) dead.push({ id, error: message.error });
    // sendBatch turned every unmarked message into a failure, so this is a failed one.
    else if (attempts >= options.maxRetries) dead.push({ id, error: message.error });
    else {
      // The one clamp for every sender's retryAfter: an integer number of ms, at most maxRetryAfter.
      const delay = retryDelay(attempts, message.retryAfter, options.backoff);
      retry.push({ id, availableAt: new Date(now + delay), delay, error: message.error });
    }
  });
  return { token, sent, retry, dead };
}

/**
 * Stores the outcome: with the next claim in one `recordAndFetch` when the store has it and the
 * drain continues (asked only now, after the send, so a stop or abort during the send is seen),
 * else with the separate marks. Short counts go to `onError` as `LeaseLostError`s either way.
 */
async function recordOutcome(
  context: RelayContext,
  outcome: PassOutcome,
  plan: PassPlan,
): Promise<BatchOutcome & { next?: Claim }> {
  const { store } = context;
  const { token, sent, retry, dead } = outcome;
  if (store.recordAndFetch !== undefined && plan.continues?.() === true) {
    const { recorded, claim } = await store.recordAndFetch(outcome, claimOptions(context.options));
    return {
      sent: checkLease(context, sent, recorded.sent),
      failed: checkLease(context, retry.map(idOf), recorded.failed),
      dead: checkLease(context, dead.map(idOf), recorded.dead),
      next: claim,
    };
  }
  return {
    sent: await record(context, sent, () => store.markAsSent(token, sent)),
    failed: await record(context, retry.map(idOf), () => store.updateRetryCount(token, retry)),
    dead: await record(context, dead.map(idOf), () => store.markAsDead(token, dead)),
  };
}

const idOf = (update: { id: string }): string => update.id;

/** Applies one mark (none for no ids). */
async function record(
  context: RelayContext,
  ids: readonly string[],
  apply: () => Promise<number>,
): Promise<number> {
  if (ids.length === 0) return 0;
  return checkLease(context, ids, await apply());
}

/** A short count means another relay took some of these over: reported, never thrown. */
function checkLease(context: RelayContext, ids: readonly string[], changed: number): number {
  if (changed < ids.length) context.options.onError(new LeaseLostError(ids, ids.length - changed));
  return changed;
}
