/**
 * An in-memory {@link TransactionalStore} for tests, demos and examples, with the same
 * semantics as the libSQL store: leases with claim tokens, backoff times, per-key ordering,
 * dead messages that stay queryable. Everything lives in this process and is gone when it ends.
 *
 * @module
 */
import {
  type Claim,
  type ClaimOptions,
  createMessage,
  type DeadUpdate,
  deadListLimit,
  formatMessageId,
  MAX_ERROR_LENGTH,
  type Message,
  type MessageRecord,
  newIdNamespace,
  type OutboxStats,
  type PassOutcome,
  type PreparedMessage,
  parseMessageId,
  type RecordAndFetchResult,
  type RetryUpdate,
  releaseDelay,
  SendStatus,
  type TransactionalStore,
  truncateText,
  ValidationError,
} from "../mod.ts";

interface Row extends MessageRecord {
  /** The row id: what the public id `msg_<namespace>_<row>` names. */
  row: string;
  state: "pending" | "dead";
  availableAt: number;
  leaseUntil: number | null;
  token: string | null;
}

/**
 * A transaction of a {@link MemoryStore}: messages added through it become visible to relays
 * when `transaction(fn)` resolves, and never if `fn` throws.
 */
export class MemoryTransaction {
  /** @internal */
  readonly pending: PreparedMessage[] = [];
  /** @internal */
  open = true;
  /** @internal */
  constructor(readonly store: MemoryStore) {}
}

/**
 * In-memory outbox storage. Sent messages are dropped at once; dead ones stay until requeued.
 *
 * @example
 * ```ts
 * const store = new MemoryStore();
 * const outbox = new Outbox(store, sender);
 * await store.transaction(async (tx) => {
 *   await outbox.addMessage(tx, { key: "order:1", value: "{}" });
 * });
 * await outbox.tick();
 * ```
 */
export class MemoryStore implements TransactionalStore<MemoryTransaction> {
  /** Names this store's outbox in metrics (`outbox.name`) unless the Outbox gets a `name`. */
  readonly name: string;
  // Ids are `msg_<namespace>_<row>` with a namespace per instance, as SQL stores have one per
  // table: two MemoryStores never hand a receiver the same id.
  // Made on first use, not in the constructor: Cloudflare Workers forbid random values in the
  // global scope, where examples build their store.
  #namespaceValue: string | undefined;
  // Keyed by row id. Map iteration follows insertion, which is commit order: the claim scan
  // reads oldest first.
  readonly #rows = new Map<string, Row>();
  #nextId = 1n;
  #nextToken = 1;

  /** `name`: see {@link MemoryStore.name}; default `"memory"`. */
  constructor(options: { name?: string } = {}) {
    const name = options.name ?? "memory";
    if (typeof name !== "string" || name.length === 0) {
      throw new ValidationError(`name must be a non-empty string, got ${JSON.stringify(name)}`);
    }
    this.name = name;
  }

  /** Runs `fn` in a transaction: its messages commit when it resolves, vanish if it throws. */
  async transaction<R>(fn: (tx: MemoryTransaction) => Promise<R>): Promise<R> {
    const tx = new MemoryTransaction(this);
    try {
      const result = await fn(tx);
      for (const message of tx.pending) this.#insert(message);
      return result;
    } finally {
      tx.open = false;
    }
  }

  /** Same as {@link MemoryStore.transaction}; the `TransactionalStore` name. */
  withTransaction<R>(fn: (tx: MemoryTransaction) => Promise<R>): Promise<R> {
    return this.transaction(fn);
  }

  /** Adds a message to `tx` (usually through `Outbox.addMessage`). */
  async addMessage(tx: MemoryTransaction, message: PreparedMessage): Promise<void> {
    if (!(tx instanceof MemoryTransaction) || tx.store !== this) {
      throw new ValidationError("tx must be a MemoryTransaction of this MemoryStore", {
        code: "INVALID_MESSAGE",
      });
    }
    if (!tx.open) {
      throw new ValidationError("tx is finished: add messages inside the transaction(fn) callback", {
        code: "INVALID_MESSAGE",
      });
    }
    tx.pending.push({ ...message, value: copyBytes(message.value), headers: { ...message.headers } });
  }

  async fetchAndLock(options: ClaimOptions): Promise<Claim> {
    const now = Date.now();
    const token = `mem-${this.#nextToken++}`;
    const claimed: Row[] = [];
    // With per-key ordering only the oldest unfinished message of each key may go.
    const keysSeen = new Set<string>();
    for (const row of this.#rows.values()) {
      if (claimed.length >= options.batchSize) break;
      if (row.state !== "pending") continue;
      if (options.ordering === "key") {
        if (keysSeen.has(row.key)) continue;
        keysSeen.add(row.key);
      }
      if (row.availableAt > now || (row.leaseUntil !== null && row.leaseUntil > now)) continue;
      claimed.push(row);
    }
    // Oldest first; the scan went in insertion (id) order and the sort is stable, so ties keep it.
    claimed.sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime());
    const messages = claimed.map((row) => {
      if (row.leaseUntil !== null) {
        // The previous holder's lease ran out without an outcome: that attempt counts.
        row.retries += 1;
        row.lastError = "lease expired before the outcome was recorded";
      }
      row.token = token;
      row.leaseUntil = now + options.leaseDuration;
      return createMessage(snapshot(row));
    });
    return { token, messages };
  }

  async markAsSent(token: string, ids: readonly string[]): Promise<number> {
    return this.#update(token, ids, (row) => this.#rows.delete(row.row));
  }

  async updateRetryCount(token: string, updates: readonly RetryUpdate[]): Promise<number> {
    let changed = 0;
    const now = Date.now();
    for (const update of updates) {
      changed += this.#update(token, [update.id], (row) => {
        row.retries += 1;
        row.availableAt = now + retryDelay(update);
        row.lastError = errorText(update.error);
        release(row);
      });
    }
    return changed;
  }

  async markAsDead(token: string, updates: readonly DeadUpdate[]): Promise<number> {
    let changed = 0;
    for (const update of updates) {
      changed += this.#update(token, [update.id], (row) => {
        row.state = "dead";
        row.lastError = errorText(update.error);
        release(row);
      });
    }
    return changed;
  }

  /**
   * Gives back claimed messages never handed to a sender, or not attempted by it: attempts and
   * last error kept, claimable again after `delay` ms (default 0: at once).
   */
  async release(token: string, ids: readonly string[], delay = 0): Promise<number> {
    const wait = releaseDelay(delay);
    const now = Date.now();
    return this.#update(token, ids, (row) => {
      if (wait > 0) row.availableAt = now + wait;
      release(row);
    });
  }

  /**
   * The three marks, then `fetchAndLock(next)`. Atomic: each method does its work before its
   * first `await`, and all are called before any is awaited, so nothing runs in between.
   */
  async recordAndFetch(outcome: PassOutcome, next: ClaimOptions): Promise<RecordAndFetchResult> {
    const { token } = outcome;
    const sent = this.markAsSent(token, outcome.sent);
    const failed = this.updateRetryCount(token, outcome.retry);
    const dead = this.markAsDead(token, outcome.dead);
    const claim = this.fetchAndLock(next);
    return { recorded: { sent: await sent, failed: await failed, dead: await dead }, claim: await claim };
  }

  async stats(): Promise<OutboxStats> {
    const now = Date.now();
    const stats: OutboxStats = { pending: 0, inFlight: 0, dead: 0, oldestPendingAt: null };
    for (const row of this.#rows.values()) {
      if (row.state === "dead") {
        stats.dead += 1;
        continue;
      }
      if (row.leaseUntil !== null && row.leaseUntil > now) stats.inFlight += 1;
      else stats.pending += 1;
      if (stats.oldestPendingAt === null || row.timestamp < stats.oldestPendingAt) {
        stats.oldestPendingAt = row.timestamp;
      }
    }
    return stats;
  }

  async listDead(options: { limit?: number } = {}): Promise<Message[]> {
    const limit = deadListLimit(options.limit);
    const dead: Message[] = [];
    for (const row of this.#rows.values()) {
      if (dead.length >= limit) break;
      if (row.state === "dead") dead.push(createMessage(snapshot(row), SendStatus.Dead));
    }
    return dead;
  }

  async requeueDead(ids?: readonly string[]): Promise<number> {
    if (ids !== undefined && !Array.isArray(ids)) {
      throw new ValidationError(`ids must be an array of message ids, got ${typeof ids}`);
    }
    const now = Date.now();
    const wanted =
      ids === undefined ? undefined : new Set(ids.map((id) => parseMessageId(this.#namespace(), id)));
    let changed = 0;
    for (const row of this.#rows.values()) {
      if (row.state !== "dead" || (wanted && !wanted.has(row.row))) continue;
      row.state = "pending";
      row.retries = 0;
      row.availableAt = now;
      changed += 1;
    }
    return changed;
  }

  #namespace(): string {
    this.#namespaceValue ??= newIdNamespace();
    return this.#namespaceValue;
  }

  #insert(message: PreparedMessage): void {
    const row = (this.#nextId++).toString();
    this.#rows.set(row, {
      ...message,
      id: formatMessageId(this.#namespace(), row),
      row,
      retries: 0,
      lastError: undefined,
      state: "pending",
      availableAt: Date.now(),
      leaseUntil: null,
      token: null,
    });
  }

  #update(token: string, ids: readonly string[], apply: (row: Row) => void): number {
    let changed = 0;
    for (const id of ids) {
      const key = parseMessageId(this.#namespace(), id);
      const row = key === undefined ? undefined : this.#rows.get(key);
      // Only the current claim may record an outcome; a stale relay's late word is dropped.
      if (row?.state !== "pending" || row.token !== token) continue;
      apply(row);
      changed += 1;
    }
    return changed;
  }
}

function release(row: Row): void {
  row.token = null;
  row.leaseUntil = null;
}

/** A fresh copy in a buffer of its own (`slice()` of a Node Buffer would be a view). */
function copyBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(bytes);
}

/** The wait a retry mark asks for: `delay` on this store's clock, else what `availableAt` says. */
function retryDelay(update: RetryUpdate): number {
  if (Number.isFinite(update.delay) && update.delay >= 0) return update.delay;
  const at = update.availableAt?.getTime?.();
  return typeof at === "number" && at >= Date.now() ? at - Date.now() : 0;
}

/** An error text as every store keeps it: cut to `MAX_ERROR_LENGTH` on a code-point boundary. */
function errorText(error: string | undefined): string | undefined {
  return error === undefined ? undefined : truncateText(String(error), MAX_ERROR_LENGTH);
}

// Each claim and listDead hands out its own copy: a sender writing into message.value must not
// change the stored row, or what the next attempt delivers.
function snapshot(row: Row): MessageRecord {
  return {
    id: row.id,
    key: row.key,
    value: copyBytes(row.value),
    headers: { ...row.headers },
    timestamp: new Date(row.timestamp.getTime()),
    retries: row.retries,
    lastError: row.lastError,
  };
}
