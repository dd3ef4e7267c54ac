/**
 * Retention of delivered rows, shared by the SQL stores (libSQL, PostgreSQL): the option's
 * shape and validation, and how often a store purges kept rows. Internal: no subpath export.
 *
 * @module
 */
import { ValidationError } from "../../mod.ts";

/** What happens to delivered rows. */
export type RetentionOptions =
  /** Delete at once (the default): the table holds only unfinished and dead messages. */
  | { sent: "delete" }
  /**
   * Keep for `keepFor` ms (an audit trail), then delete. Purged during `markAsSent` (a store's
   * first one, then at most once per minute), or whenever you call `purgeSent()`.
   */
  | { sent: "keep"; keepFor: number };

/** How often, at most, a store purges kept sent rows after a mark (ms). */
export const PURGE_INTERVAL = 60_000;

/** `value` if it is an integer number of milliseconds >= 0; a `ValidationError` naming `name` otherwise. */
export function checkMs(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ValidationError(`${name} must be an integer number of milliseconds >= 0, got ${String(value)}`);
  }
  return value;
}

/** `keepFor` in ms when sent rows are kept, undefined when they are deleted at once. */
export function checkRetention(retention: RetentionOptions | undefined): number | undefined {
  if (retention === undefined) return undefined;
  if (retention?.sent === "delete") return undefined;
  if (retention?.sent === "keep") return checkMs("retention.keepFor", retention.keepFor);
  throw new ValidationError(
    `retention must be { sent: "delete" } or { sent: "keep", keepFor: ms }, got ${JSON.stringify(retention)}`,
  );
}

/**
 * Runs a store's purge of kept sent rows after marks that recorded sent messages: after the
 * store's first such mark, then at most once per {@link PURGE_INTERVAL}. Housekeeping never fails a mark that already committed: a failed
 * purge waits for the next interval.
 */
export class PurgeSchedule {
  readonly #keepFor: number | undefined;
  readonly #purge: () => Promise<unknown>;
  // The first mark of a store may purge at once: a store made per request (a Worker, a
  // serverless function) rarely lives a minute, and would otherwise never purge.
  #last = Number.NEGATIVE_INFINITY;

  constructor(keepFor: number | undefined, purge: () => Promise<unknown>) {
    this.#keepFor = keepFor;
    this.#purge = purge;
  }

  /** Purges if rows are kept and the interval has passed since the last purge. */
  async afterSent(): Promise<void> {
    const now = Date.now();
    if (this.#keepFor === undefined || now - this.#last < PURGE_INTERVAL) return;
    this.#last = now;
    await this.#purge().catch(() => {});
  }
}
