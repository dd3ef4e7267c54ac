import { type Deadline, SendDeadlines } from "./abort.ts";
import { nextAttemptAt } from "./backoff.ts";
import { LeaseLostError, OutboxError, SendError, SendTimeoutError } from "./errors.ts";
import { type Message, SendStatus } from "./message.ts";
import type { ResolvedOptions } from "./options.ts";
import type { Sender } from "./sender.ts";
import type { Claim, ClaimOptions, DeadUpdate, MessageStore, PassOutcome, RetryUpdate } from "./store.ts";
import type { BatchOutcome, RelayTelemetry, TickSpan } from "./telemetry.ts";

/** What one pass claimed and what it recorded. */
export interface PassResult extends BatchOutcome {
  claimed: number;
  /**
   * The next batch, when the pass recorded its outcome and claimed the next batch in one
   * `recordAndFetch` call. The caller must relay it (pass it as `claim` to the next pass),
   * even if it would start no new pass now: its lease is held and only a send releases it early.
   */
  next?: Claim | undefined;
}

/** Everything a pass needs; built once by `Outbox`. */
export interface RelayContext {
  store: MessageStore;
  sender: Sender;
  options: ResolvedOptions;
  telemetry: RelayTelemetry;
}

/** How a pass fits into a drain. */
export interface PassPlan {
  /** A batch the previous pass already claimed (pipelined); without it the pass claims its own. */
  claim?: Claim | undefined;
  /**
   * Asked once the batch is sent: true when the drain will go on, so that a store with
   * `recordAndFetch` may record this outcome and claim the next batch in one write.
   */
  continues?: () => boolean;
  /** The drain's send deadlines (one timer for all its passes); without it the pass makes its own. */
  deadlines?: SendDeadlines | undefined;
}

const TIMED_OUT = Symbol("timed out");

/**
 * One relay pass: claim a batch (unless `plan.claim` brings one), send it under `sendTimeout`,
 * record each outcome, and, when the store has `recordAndFetch` and the drain continues, claim
 * the next batch in the same write. Store errors propagate (nothing is lost: the claimed rows
 * come back when the lease ends); sender errors fail the unmarked messages and go to `onError`.
 * Its batch span is a child of `tick`'s span and covers this batch's claim (when the pass made
 * it), send and record; a pipelined record also claims the next batch, so that claim falls in
 * this span, and the next batch's span starts after it.
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
    context.telemetry.claimed(span, claim.messages);

    // A message reclaimed after lost leases may have spent its attempts without an outcome
    // (a relay crashed or hung on it every time): it dies here instead of being sent again.
    const exhausted: Message[] = [];
    const toSend: Message[] = [];
    for (const message of claim.messages) {
      (message.retries > options.maxRetries ? exhausted : toSend).push(message);
    }
    const sendError =
      toSend.length > 0
        ? await context.telemetry.within(span, () => send(context, toSend, signal, plan.deadlines))
        : undefined;

    const result = await recordOutcome(context, outcomeOf(claim.token, exhausted, toSend, options), plan);
    context.telemetry.recorded(span, claimed, result, performance.now() - started, sendError);
    return { claimed, ...result };
  });
}

function claimOptions(options: ResolvedOptions): ClaimOptions {
  return { batchSize: options.batchSize, leaseDuration: options.leaseDuration, ordering: options.ordering };
}

/** Sorts the pass's messages into the three marks, by the status the send left on them. */
function outcomeOf(
  token: string,
  exhausted: Message[],
  toSend: Message[],
  options: ResolvedOptions,
): PassOutcome {
  const sent: string[] = [];
  const retry: RetryUpdate[] = [];
  const dead: DeadUpdate[] = exhausted.map((m) => ({
    id: m.id,
    error: `attempts exhausted: ${m.retries} attempt(s) ended without an outcome (lease expired)`,
  }));
  const now = Date.now();
  for (const message of toSend) {
    const status = message.status;
    if (status === SendStatus.Sent) sent.push(message.id);
    else if (status === SendStatus.Dead) dead.push({ id: message.id, error: message.error });
    // send() turned every unmarked message into a failure, so this is a failed one.
    else if (message.retries >= options.maxRetries) dead.push({ id: message.id, error: message.error });
    else {
      const availableAt = nextAttemptAt(now, message.retries, message.retryAfter, options.backoff);
      retry.push({
        id: message.id,
        availableAt,
        delay: Math.max(0, availableAt.getTime() - now),
        error: message.error,
      });
    }
  }
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

/** Calls the sender under the deadline; returns the error to report, if any. Never throws. */
async function send(
  context: RelayContext,
  messages: Message[],
  signal: AbortSignal | undefined,
  deadlines: SendDeadlines | undefined,
): Promise<unknown> {
  const { sender, options } = context;
  const clock = deadlines ?? new SendDeadlines(options.sendTimeout);
  const deadline = clock.start(signal);
  let error: unknown;
  try {
    // Race the abort so a sender that ignores its signal cannot hold the pass past the deadline.
    const result = await Promise.race([
      sender.send(messages, deadline.signal),
      deadline.aborted.then(() => TIMED_OUT),
    ]);
    error =
      result === TIMED_OUT
        ? abortError(deadline, options.sendTimeout, signal)
        : checkResult(messages, result);
  } catch (thrown) {
    // A sender that gives up because its signal aborted (fetch does) failed for that reason.
    if (deadline.signal.aborted) error = abortError(deadline, options.sendTimeout, signal);
    else if (thrown instanceof OutboxError) error = thrown;
    else {
      error = new SendError(`sender threw: ${thrown instanceof Error ? thrown.message : String(thrown)}`, {
        cause: thrown,
      });
    }
  } finally {
    deadline.dispose();
    if (clock !== deadlines) clock.dispose();
  }
  // Freeze the outcome now: marks a runaway sender makes after this point change nothing.
  for (const message of messages) {
    if (message.status === SendStatus.None) {
      message.markAsFailed({ error: describeUnmarked(error) });
    }
  }
  if (error !== undefined) context.options.onError(error);
  return error;
}

/** Why an aborted send failed: its timeout, or the caller's signal. */
function abortError(deadline: Deadline, sendTimeout: number, signal: AbortSignal | undefined): SendError {
  return deadline.timedOut()
    ? new SendTimeoutError(sendTimeout)
    : new SendError("send aborted by the caller's signal", { cause: signal?.reason });
}

/**
 * The marks on the messages are the outcome; the returned array must be those same messages.
 * Anything else is reported (and unmarked messages fail), never trusted.
 */
function checkResult(given: readonly Message[], result: unknown): SendError | undefined {
  if (!Array.isArray(result)) {
    return new SendError(
      `sender returned ${result === null ? "null" : typeof result}, expected the array of messages it was given`,
      {
        code: "MALFORMED_SEND_RESULT",
      },
    );
  }
  // Returning the very array it was given (the usual case) cannot smuggle anything in.
  if (result !== given) {
    const ours = new Set<unknown>(given);
    const foreign = result.filter((m) => !ours.has(m));
    if (foreign.length > 0) {
      return new SendError(
        `sender returned ${foreign.length} message(s) it was not given; they were ignored`,
        {
          code: "MALFORMED_SEND_RESULT",
        },
      );
    }
  }
  if (given.every((m) => m.status !== SendStatus.None)) return undefined;
  const unmarked = given.filter((m) => m.status === SendStatus.None);
  return new SendError(
    `sender left ${unmarked.length} message(s) unmarked (ids ${unmarked
      .slice(0, 5)
      .map((m) => m.id)
      .join(", ")}); they count as failed`,
    { code: "MALFORMED_SEND_RESULT", messageId: unmarked[0]?.id },
  );
}

function describeUnmarked(error: unknown): string {
  if (error instanceof Error) return error.message;
  return "sender did not mark this message";
}

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
