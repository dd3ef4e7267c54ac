/**
 * From the marks a send left on messages to the store's writes: sorting a claim's messages into
 * sent, retry, dead and not-attempted groups, and recording them under the claim's token. Shared
 * by the batch pass (`relay.ts`) and the streaming window (`window.ts`).
 *
 * @module
 */
import { retryDelay } from "./backoff.ts";
import { LeaseLostError } from "./errors.ts";
import { type Message, SendStatus } from "./message.ts";
import type { ResolvedOptions } from "./options.ts";
import type { DeadUpdate, MessageStore, PassOutcome, RetryUpdate } from "./store.ts";
import type { BatchOutcome } from "./telemetry.ts";

/** A message the sender did not attempt: given back to the store, claimable after `delay` ms. */
export interface ReleaseUpdate {
  id: string;
  /** Integer ms >= {@link NOT_ATTEMPTED_MIN_DELAY}, on the store's clock. */
  delay: number;
  /** The sender's reason, used only when the store has no `release` and records a retry. */
  error?: string | undefined;
}

/** One claim's outcome as the relay records it: the three marks and the messages given back. */
export interface RelayOutcome extends PassOutcome {
  /** Failed with `attempted: false`: released with their delay, `retries` untouched. */
  readonly release: readonly ReleaseUpdate[];
}

/** A message as sent: its outcome is recorded under the id and attempt count the store gave. */
export interface SentMessage {
  readonly message: Message;
  readonly id: string;
  readonly retries: number;
}

/** Wait of a message not attempted when the sender gives no `retryAfter`. */
export const NOT_ATTEMPTED_DELAY = 1000;
/**
 * Shortest wait of a message not attempted: an open breaker fails in microseconds, and a
 * message ready again at once would be claimed and failed in a loop until the drain's budget.
 */
export const NOT_ATTEMPTED_MIN_DELAY = 100;

/** Splits claimed messages into those to send and those whose attempts are spent. */
export function sortClaimed(
  messages: readonly Message[],
  maxRetries: number,
): { toSend: SentMessage[]; exhausted: DeadUpdate[] } {
  const toSend: SentMessage[] = [];
  const exhausted: DeadUpdate[] = [];
  for (const message of messages) {
    // A message reclaimed after lost leases may have spent its attempts without an outcome
    // (a relay crashed or hung on it every time): it dies here instead of being sent again.
    if (message.retries > maxRetries) exhausted.push(exhaustedUpdate(message));
    else toSend.push({ message, id: message.id, retries: message.retries });
  }
  return { toSend, exhausted };
}

function exhaustedUpdate(message: Message): DeadUpdate {
  return {
    id: message.id,
    error: `attempts exhausted: ${message.retries} attempt(s) ended without an outcome (lease expired)`,
  };
}

/** Sorts sent messages into the marks, by the status the (sealed) send left on each. */
export function outcomeOf(
  token: string,
  exhausted: readonly DeadUpdate[],
  sent: readonly SentMessage[],
  options: ResolvedOptions,
): RelayOutcome {
  const delivered: string[] = [];
  const retry: RetryUpdate[] = [];
  const dead: DeadUpdate[] = [...exhausted];
  const release: ReleaseUpdate[] = [];
  const now = Date.now();
  for (const { message, id, retries } of sent) {
    const status = message.status;
    if (status === SendStatus.Sent) delivered.push(id);
    else if (status === SendStatus.Dead) dead.push({ id, error: message.error });
    // sendBatch turned every unmarked message into a failure, so this is a failed one.
    else if (!message.attempted) {
      release.push({ id, delay: notAttemptedDelay(message.retryAfter, options), error: message.error });
    } else if (retries >= options.maxRetries) dead.push({ id, error: message.error });
    else {
      // The one clamp for every sender's retryAfter: an integer number of ms, at most maxRetryAfter.
      const delay = retryDelay(retries, message.retryAfter, options.backoff);
      retry.push({ id, availableAt: new Date(now + delay), delay, error: message.error });
    }
  }
  return { token, sent: delivered, retry, dead, release };
}

/** The wait of a message not attempted: its `retryAfter` clamped as any, with a floor. */
function notAttemptedDelay(retryAfter: number | undefined, options: ResolvedOptions): number {
  const asked = retryDelay(0, retryAfter ?? NOT_ATTEMPTED_DELAY, options.backoff);
  return Math.max(asked, NOT_ATTEMPTED_MIN_DELAY);
}

/** What {@link recordMarks} and {@link recordReleases} need. */
export interface RecordContext {
  store: MessageStore;
  /** The guarded `onError`. */
  onError: (error: unknown) => void;
}

/**
 * Records an outcome's three marks with the separate store calls (empty groups skipped). Short
 * counts go to `onError` as `LeaseLostError`s, never thrown; store errors propagate.
 */
export async function recordMarks(context: RecordContext, outcome: PassOutcome): Promise<BatchOutcome> {
  const { store } = context;
  const { token, sent, retry, dead } = outcome;
  return {
    sent: await record(context, sent, () => store.markAsSent(token, sent)),
    failed: await record(context, retry.map(idOf), () => store.updateRetryCount(token, retry)),
    dead: await record(context, dead.map(idOf), () => store.markAsDead(token, dead)),
  };
}

/**
 * Gives back the messages the sender did not attempt, one `release` per distinct delay.
 * Without `release`, or when it throws (reported), they are recorded as failed attempts
 * instead: the claim is still ours, and waiting out its lease would count the attempt anyway,
 * later. Returns the rows recorded as failed attempts: a release is no failure of delivery, so
 * it counts in no `failed` total. `written` hears each write that went through (its ids, and
 * the rows it recorded as failed attempts), so a caller trying again after a store error can
 * leave those out rather than release them twice.
 */
export async function recordReleases(
  context: RecordContext,
  token: string,
  updates: readonly ReleaseUpdate[],
  written?: (ids: readonly string[], retried: number) => void,
): Promise<number> {
  if (updates.length === 0) return 0;
  const { store } = context;
  if (store.release === undefined) {
    const retried = await recordAsRetries(context, token, updates);
    written?.(updates.map(idOf), retried);
    return retried;
  }
  const byDelay = new Map<number, string[]>();
  for (const { id, delay } of updates) {
    const ids = byDelay.get(delay);
    if (ids === undefined) byDelay.set(delay, [id]);
    else ids.push(id);
  }
  let changed = 0;
  for (const [delay, ids] of byDelay) {
    let retried = 0;
    try {
      checkLease(context, ids, await store.release(token, ids, delay));
    } catch (error) {
      context.onError(error);
      const ofDelay = new Set(ids);
      retried = await recordAsRetries(
        context,
        token,
        updates.filter((u) => ofDelay.has(u.id)),
      );
    }
    written?.(ids, retried);
    changed += retried;
  }
  return changed;
}

function recordAsRetries(context: RecordContext, token: string, updates: readonly ReleaseUpdate[]) {
  const now = Date.now();
  const retry = updates.map(({ id, delay, error }) => ({
    id,
    delay,
    availableAt: new Date(now + delay),
    error,
  }));
  return record(context, retry.map(idOf), () => context.store.updateRetryCount(token, retry));
}

/** Gives a claim back unsent (delay 0). True when it went back; a failure is reported. */
export async function releaseUnsent(
  context: RecordContext,
  token: string,
  ids: readonly string[],
): Promise<boolean> {
  try {
    await context.store.release?.(token, ids);
    return true;
  } catch (error) {
    context.onError(error);
    return false;
  }
}

export const idOf = (update: { id: string }): string => update.id;

/** Applies one mark (none for no ids). */
async function record(
  context: RecordContext,
  ids: readonly string[],
  apply: () => Promise<number>,
): Promise<number> {
  if (ids.length === 0) return 0;
  return checkLease(context, ids, await apply());
}

/** A short count means another relay took some of these over: reported, never thrown. */
export function checkLease(context: RecordContext, ids: readonly string[], changed: number): number {
  if (changed < ids.length) context.onError(new LeaseLostError(ids, ids.length - changed));
  return changed;
}
