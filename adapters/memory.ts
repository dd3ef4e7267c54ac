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
  type Message,
  type MessageRecord,
  type OutboxStats,
  type PassOutcome,
  type PreparedMessage,
  type RecordAndFetchResult,
  type RetryUpdate,
  SendStatus,
  type TransactionalStore,
  ValidationError,
} from "../mod.ts";

interface Row extends MessageRecord {
  seq: bigint;
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
  // Map iteration follows insertion, which is commit order: the claim scan reads oldest first.
  readonly #rows = new Map<string, Row>();
  #nextId = 1n;
  #nextToken = 1;

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
    tx.pending.push({ ...message, value: message.value.slice(), headers: { ...message.headers } });
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
    claimed.sort((a, b) => a.timestamp.getTime() - b.timestamp.getTime() || (a.seq < b.seq ? -1 : 1));
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
    return this.#update(token, ids, (row) => this.#rows.delete(row.id));
  }

  async updateRetryCount(token: string, updates: readonly RetryUpdate[]): Promise<number> {
    let changed = 0;
    for (const update of updates) {
      changed += this.#update(token, [update.id], (row) => {
        row.retries += 1;
        row.availableAt = update.availableAt.getTime();
        row.lastError = update.error;
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
        row.lastError = update.error;
        release(row);
      });
    }
    return changed;
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
    const now = Date.now();
    const wanted = ids === undefined ? undefined : new Set(ids);
    let changed = 0;
    for (const row of this.#rows.values()) {
      if (row.state !== "dead" || (wanted && !wanted.has(row.id))) continue;
      row.state = "pending";
      row.retries = 0;
      row.availableAt = now;
      changed += 1;
    }
    return changed;
  }

  #insert(message: PreparedMessage): void {
    const seq = this.#nextId++;
    const id = seq.toString();
    this.#rows.set(id, {
      ...message,
      id,
      seq,
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
      const row = this.#rows.get(id);
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

function snapshot(row: Row): MessageRecord {
  return {
    id: row.id,
    key: row.key,
    value: row.value.slice(),
    headers: { ...row.headers },
    timestamp: new Date(row.timestamp.getTime()),
    retries: row.retries,
    lastError: row.lastError,
  };
}
