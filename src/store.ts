import { ValidationError } from "./errors.ts";
import type { Message, PreparedMessage } from "./message.ts";

/**
 * The longest error text (UTF-16 code units, `…` included) a store keeps for a message: every
 * store cuts with `truncateText(error, MAX_ERROR_LENGTH)`.
 */
export const MAX_ERROR_LENGTH = 2000;

/** How many dead messages `listDead` returns when no `limit` is given. */
export const DEFAULT_DEAD_LIMIT = 100;

/**
 * The `limit` of `MessageStore.listDead`, checked as every store must: the default when
 * undefined, else an integer >= 1 (a `ValidationError` otherwise). For store implementations.
 */
export function deadListLimit(limit: unknown): number {
  if (limit === undefined) return DEFAULT_DEAD_LIMIT;
  if (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 1) {
    throw new ValidationError(`limit must be an integer >= 1, got ${String(limit)}`);
  }
  return limit;
}

/**
 * The `delay` of `MessageStore.release`, as every store takes it: whole milliseconds (rounded
 * up) from 0 to 2^31 - 1 (about 24.8 days: more than any delay the relay asks for, and within
 * what every database's interval arithmetic and `setTimeout` hold); anything that is not a
 * finite positive number is 0 (claimable at once). For store implementations.
 */
export function releaseDelay(delay: unknown): number {
  if (typeof delay !== "number" || !Number.isFinite(delay) || delay <= 0) return 0;
  return Math.min(Math.ceil(delay), MAX_RELEASE_DELAY);
}

const MAX_RELEASE_DELAY = 2 ** 31 - 1;

/**
 * `"none"`: any ready message may go in any batch (oldest first). `"key"`: a message is only
 * claimed once every older message with the same key has been sent or is dead, and a batch
 * holds at most one message per key.
 */
export type Ordering = "none" | "key";

/** What a relay asks of {@link MessageStore.fetchAndLock}. */
export interface ClaimOptions {
  /** At most this many messages. An integer >= 1. */
  batchSize: number;
  /** How long (ms) the claim holds before another relay may take the messages over. */
  leaseDuration: number;
  /** See {@link Ordering}. */
  ordering: Ordering;
}

/**
 * Messages claimed by one relay pass. `token` identifies this claim: marks carry it, and a
 * store applies a mark only to rows that still hold this token, so a relay whose lease was
 * taken over cannot overwrite the new owner's outcome.
 */
export interface Claim {
  readonly token: string;
  /** Oldest first, each with `status` `SendStatus.None`. */
  readonly messages: Message[];
}

/** A failed message to retry later. */
export interface RetryUpdate {
  id: string;
  /**
   * Not claimable before this time, on the relay's clock. Stores that keep one clock per
   * database use {@link RetryUpdate.delay} instead.
   */
  availableAt: Date;
  /**
   * Not claimable for this many ms (an integer >= 0, already clamped by the relay), counted from
   * the store's own now: what a SQL store adds to the database's clock, so that relays whose
   * clocks disagree still agree on when a message is ready.
   */
  delay: number;
  /** Why the attempt failed (kept for operators; may be truncated by the store). */
  error?: string | undefined;
}

/** A message to give up on. */
export interface DeadUpdate {
  id: string;
  /** Why it died (kept for operators; may be truncated by the store). */
  error?: string | undefined;
}

/** What one relay pass recorded: the outcome of its claim `token`, as the three marks take it. */
export interface PassOutcome {
  /** The claim's token: only rows still holding it are changed. */
  readonly token: string;
  /** Delivered, as for {@link MessageStore.markAsSent}. */
  readonly sent: readonly string[];
  /** Failed attempts, as for {@link MessageStore.updateRetryCount}. */
  readonly retry: readonly RetryUpdate[];
  /** Given up on, as for {@link MessageStore.markAsDead}. */
  readonly dead: readonly DeadUpdate[];
}

/** What {@link MessageStore.recordAndFetch} did: rows each mark changed, and the new claim. */
export interface RecordAndFetchResult {
  /** Rows changed per group; a count short of the group's size means that lease was lost. */
  readonly recorded: { readonly sent: number; readonly failed: number; readonly dead: number };
  /** The next claim, exactly as {@link MessageStore.fetchAndLock} would return it. */
  readonly claim: Claim;
}

/** A snapshot of the outbox for dashboards and alerts. */
export interface OutboxStats {
  /** Committed, not yet sent or dead, not held by a live lease (includes backoff waits). */
  pending: number;
  /** Held by a live lease: a relay is sending them now. */
  inFlight: number;
  /** Given up on; see `listDead` and `requeueDead`. */
  dead: number;
  /** Timestamp of the oldest message that is pending or in flight, or null when none. */
  oldestPendingAt: Date | null;
}

/**
 * The storage side of the outbox, as a relay uses it. Names follow the original package's
 * `MessageRepository`. Every implementation must pass `test/conformance/`.
 *
 * Contract:
 * - `fetchAndLock` claims at most `batchSize` ready messages (committed, not sent or dead,
 *   `availableAt` reached, no live lease), oldest first, under a fresh token and a lease of
 *   `leaseDuration` ms. A message whose lease expired is ready again, and claiming it counts
 *   the lost attempt (`retries + 1`), so a message that crashes relays still dies eventually.
 * - The three marks apply only to the given ids that still hold `token` and return how many
 *   rows they changed; a short count means the lease was lost for the rest.
 * - `recordAndFetch`, if present, is those marks followed by `fetchAndLock`, atomically.
 * - Errors are {@link StoreError}s (`retryable` for busy/locked conditions).
 */
export interface MessageStore {
  /** Claims ready messages for one relay pass. */
  fetchAndLock(options: ClaimOptions): Promise<Claim>;
  /** Failed attempt: `retries + 1`, lease released, claimable again at `availableAt`. */
  updateRetryCount(token: string, updates: readonly RetryUpdate[]): Promise<number>;
  /** Gives up on messages: they stay queryable with `listDead` and can be requeued. */
  markAsDead(token: string, updates: readonly DeadUpdate[]): Promise<number>;
  /** Delivered: never claimed again (the store may delete it or keep it for a while). */
  markAsSent(token: string, ids: readonly string[]): Promise<number>;
  /**
   * Optional: records one pass's outcome and claims the next batch in ONE atomic write (both
   * or neither), so a draining relay pays one transaction per pass instead of two. Same
   * semantics as `markAsSent`, `updateRetryCount` and `markAsDead` (empty groups skipped)
   * followed by `fetchAndLock(next)`: the claim sees the outcomes just recorded (with ordering
   * `"key"`, a message sent here frees the next one of its key), and a stale `token` records
   * nothing while the claim still happens. Stores without it keep working: the relay then
   * calls the marks and `fetchAndLock` separately. Errors as for the marks; on an error
   * nothing was recorded or claimed.
   */
  recordAndFetch?(outcome: PassOutcome, next: ClaimOptions): Promise<RecordAndFetchResult>;
  /**
   * Optional: gives back claimed messages that were never handed to a sender (the pass was
   * aborted, or its budget ran out, between the claim and the send), or that the sender did not
   * attempt (`markAsFailed({ attempted: false })`). Only rows still holding `token` change:
   * lease and token cleared, `retries` and `last_error` untouched, claimable again `delay` ms
   * (an integer >= 0, default 0: at once) after the store's own now, counted on the same clock
   * as {@link RetryUpdate.delay}. Returns the rows changed. Without it, messages given back at
   * the end of a drain are sent anyway, and messages not attempted are recorded as failed
   * attempts (`updateRetryCount`), as before `release` existed.
   */
  release?(token: string, ids: readonly string[], delay?: number): Promise<number>;
  /** Counts for dashboards and alerts. */
  stats(): Promise<OutboxStats>;
  /** Dead messages, oldest first (default limit 100). */
  listDead(options?: { limit?: number }): Promise<Message[]>;
  /** Moves dead messages (all of them, or those ids) back to pending with `retries` 0. */
  requeueDead(ids?: readonly string[]): Promise<number>;
}

/**
 * A {@link MessageStore} that can write a message inside the caller's own transaction, of
 * type `T` (a libSQL `Transaction`, a `MemoryTransaction`, ...).
 */
export interface TransactionalStore<T> extends MessageStore {
  /** Writes a validated message as part of `tx`; it becomes visible when `tx` commits. */
  addMessage(tx: T, message: PreparedMessage): Promise<void>;
  /** Runs `fn` in a new transaction: commit when it resolves, roll back when it throws. */
  withTransaction<R>(fn: (tx: T) => Promise<R>): Promise<R>;
}
