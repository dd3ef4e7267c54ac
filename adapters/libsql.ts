/**
 * `edge-outbox/libsql`: the outbox on libSQL, local SQLite files and Turso alike, through
 * `@libsql/client`. Claims are leases held in the table (taken in one short write transaction),
 * so a relay holds no transaction across the network and a crashed relay loses nothing.
 *
 * @module
 */
import type { Client, InStatement, ResultSet, Transaction } from "@libsql/client";
import {
  type Claim,
  type ClaimOptions,
  createMessage,
  type DeadUpdate,
  deadListLimit,
  type Message,
  type OutboxStats,
  type PassOutcome,
  type PreparedMessage,
  type RecordAndFetchResult,
  type RetryUpdate,
  SendStatus,
  StoreError,
  type TransactionalStore,
  ValidationError,
} from "../mod.ts";
import { isTooBig, toStoreError } from "./libsql/errors.ts";
import { type LibsqlStoreOptions, type LibsqlTx, resolveStoreOptions } from "./libsql/options.ts";
import {
  claimStatements,
  INLINED_VALUE_BYTES,
  type MarkStatements,
  markStatements,
  missingValues,
  type PassRead,
  passResult,
  passSteps,
  toClaim,
} from "./libsql/pass.ts";
import { idsJson, toNumber, toRecord, toStats, toValues, versionOf } from "./libsql/rows.ts";
import { Runner } from "./libsql/runner.ts";
import {
  BYTES_SURVIVE_CONCAT,
  buildStatements,
  CREATE_SCHEMA_TABLE,
  READ_VERSION,
  type Statements,
  WRITE_VERSION,
} from "./libsql/sql.ts";

export type { LibsqlStoreOptions, LibsqlTx, RetentionOptions } from "./libsql/options.ts";

const PURGE_INTERVAL = 60_000;
/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = 1;

/**
 * A {@link TransactionalStore} on libSQL / Turso. Call {@link LibsqlStore.migrate} once (at
 * start-up or in a deploy step) before use.
 *
 * Errors are `StoreError`s: `retryable` (code `STORE_BUSY`) while another connection holds the
 * write lock past `busyTimeout`; the relay's next pass retries and nothing is lost.
 *
 * `:memory:` databases have one connection: with `@libsql/client` >= 0.18 an open interactive
 * transaction holds it, and the store's own statements wait (up to `busyTimeout`) until it ends.
 * Older clients open a fresh, empty database after `client.transaction()`; there, use
 * `file::memory:?cache=shared` or a file.
 *
 * On local files every write of the store runs in a short transaction that first takes the
 * write lock, so contention fails cleanly and never leaves the driver's connection stuck (see
 * `adapters/libsql/runner.ts`).
 *
 * @example
 * ```ts
 * const client = createClient({ url: "file:app.db" });
 * const store = new LibsqlStore(client);
 * await store.migrate();
 * const outbox = new Outbox(store, httpSender({ url, secret }));
 * ```
 */
export class LibsqlStore implements TransactionalStore<LibsqlTx> {
  /** The outbox table's name. */
  readonly table: string;
  readonly #sql: Statements;
  readonly #keepFor: number | undefined;
  readonly #run: Runner;
  #lastPurge = Date.now();

  /** Throws a `ValidationError` (code `INVALID_OPTIONS`) for a bad table name or option. */
  constructor(client: Client, options: LibsqlStoreOptions = {}) {
    if (typeof client?.execute !== "function" || typeof client.transaction !== "function") {
      throw new ValidationError("client must be a libSQL Client (createClient from @libsql/client)");
    }
    const resolved = resolveStoreOptions(options);
    this.table = resolved.table;
    this.#keepFor = resolved.keepFor;
    this.#run = new Runner(client, resolved.busyTimeout, resolved.wal);
    this.#sql = buildStatements(this.table);
  }

  /**
   * Creates or upgrades the table and its indexes; safe to run again and from several
   * processes at once. The version lives in `edge_outbox_schema` (one row per table), never in
   * `PRAGMA user_version`. Rejects with a `StoreError` if the table was migrated by a newer
   * edge-outbox, or if the database's text encoding is not UTF-8 (the default; claims carry
   * message bytes through SQLite's text functions, which would re-encode them).
   */
  async migrate(): Promise<void> {
    await this.#checkEncoding();
    await this.#run.script("creating the schema table", CREATE_SCHEMA_TABLE);
    // Up to date (the usual start-up): done without taking the write lock.
    if (this.#checkVersion(await this.#run.read("reading the schema version", this.#versionQuery))) return;
    // Under the write lock, concurrent migrators queue up; each sees the version the last left.
    await this.withTransaction(async (tx) => {
      const from = await tx.execute(this.#versionQuery);
      if (this.#checkVersion(from)) return;
      for (const step of this.#sql.migrations.slice(versionOf(from)))
        for (const sql of step) await tx.execute(sql);
      await tx.execute({ sql: WRITE_VERSION, args: [this.table, SCHEMA_VERSION, Date.now()] });
    });
  }

  async #checkEncoding(): Promise<void> {
    const result = await this.#run.read("checking the text encoding", BYTES_SURVIVE_CONCAT);
    if (toNumber(result.rows[0]?.kept) !== 1) {
      throw new StoreError(
        "the database's text encoding is UTF-16; edge-outbox needs UTF-8, SQLite's default (a new database file starts with it)",
        { retryable: false },
      );
    }
  }

  get #versionQuery(): InStatement {
    return { sql: READ_VERSION, args: [this.table] };
  }

  /** True when the table is at this code's version; throws when it is newer. */
  #checkVersion(result: ResultSet): boolean {
    const version = versionOf(result);
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        `table "${this.table}" has schema version ${version}, newer than this edge-outbox supports (${SCHEMA_VERSION}); upgrade edge-outbox`,
        { retryable: false },
      );
    }
    return version === SCHEMA_VERSION;
  }

  /**
   * The INSERT for `message` as a statement, to run with your own writes however you like
   * (`client.batch`, `tx.batch`, ...). `addMessage` uses it.
   */
  insertStatement(message: PreparedMessage): InStatement {
    return {
      sql: this.#sql.insert,
      args: [message.key, message.value, JSON.stringify(message.headers), message.timestamp.getTime()],
    };
  }

  /**
   * Writes `message` (usually through `Outbox.addMessage`) as part of `tx`:
   * - a `Transaction`: visible when you commit it, gone if you roll back;
   * - a `Client`: committed at once (autocommit: atomic with nothing else);
   * - an array of statements: the INSERT is pushed onto it; run the array with
   *   `client.batch(stmts, "write")`, the atomic way over remote Turso/HTTP.
   *
   * @example
   * ```ts
   * // 1. Interactive transaction
   * const tx = await client.transaction("write");
   * try {
   *   await tx.execute({ sql: "INSERT INTO orders (id) VALUES (?)", args: [id] });
   *   await outbox.addMessage(tx, { key: `order:${id}`, value: body });
   *   await tx.commit();
   * } finally { tx.close(); }
   * // 2. Batch: your writes and the message commit together in one round trip
   * const stmts: InStatement[] = [{ sql: "INSERT INTO orders (id) VALUES (?)", args: [id] }];
   * await outbox.addMessage(stmts, { key: `order:${id}`, value: body });
   * await client.batch(stmts, "write");
   * // 3. Client: the message alone, committed at once
   * await outbox.addMessage(client, { key: "ping", value: "{}" });
   * ```
   */
  async addMessage(tx: LibsqlTx, message: PreparedMessage): Promise<void> {
    const statement = this.insertStatement(message);
    if (Array.isArray(tx)) {
      tx.push(statement);
      return;
    }
    if (typeof (tx as Partial<Transaction> | null)?.execute !== "function") {
      throw new ValidationError(
        "tx must be a libSQL Transaction, a Client, or an array of statements for client.batch()",
        { code: "INVALID_MESSAGE" },
      );
    }
    if (typeof (tx as Partial<Client>).transaction === "function") {
      // A client: autocommit, through the runner so that a busy lock cannot wedge its pool.
      await this.#run.forClient(tx as Client).write("adding a message", statement);
      return;
    }
    try {
      await tx.execute(statement);
    } catch (error) {
      throw toStoreError(error, "adding a message");
    }
  }

  /**
   * Runs `fn` in a write transaction that holds the write lock from the start (like BEGIN
   * IMMEDIATE; waits up to `busyTimeout` for it): commits when `fn` resolves, rolls back and
   * rethrows when it throws, closes the transaction either way.
   */
  async withTransaction<R>(fn: (tx: Transaction) => Promise<R>): Promise<R> {
    const tx = await this.#run.begin("beginning a transaction");
    try {
      const result = await fn(tx);
      try {
        await tx.commit();
      } catch (error) {
        throw toStoreError(error, "committing a transaction");
      }
      return result;
    } catch (error) {
      // The caller's error is the one that matters; a failed rollback ends in close() anyway.
      await tx.rollback().catch(() => {});
      throw error;
    } finally {
      tx.close();
    }
  }

  /**
   * Claims up to `batchSize` ready messages, oldest first, under a fresh random token and a
   * lease of `leaseDuration` ms, in one short write transaction. A reclaimed expired lease
   * counts as a failed attempt (`retries + 1`).
   */
  async fetchAndLock(options: ClaimOptions): Promise<Claim> {
    const { claim } = await this.#claim("claiming messages", {}, options);
    return claim;
  }

  /**
   * Records a pass's outcome and claims the next batch in one write transaction (one lock, one
   * commit, one fsync): the non-empty marks, then the claim, which sees them.
   */
  async recordAndFetch(outcome: PassOutcome, next: ClaimOptions): Promise<RecordAndFetchResult> {
    const now = Date.now();
    const marks = this.#marks(outcome, now);
    const result = await this.#claim("recording outcomes and claiming", marks, next);
    if (marks.sent !== undefined) await this.#afterSent(now);
    return result;
  }

  /** Runs `marks` and a claim in one write, then completes the claim's values. */
  async #claim(doing: string, marks: MarkStatements, options: ClaimOptions): Promise<RecordAndFetchResult> {
    const { token, recorded, records } = await this.#write(doing, marks, options);
    // Values the read did not carry, read after the commit: a value never changes once written.
    const missing = idsJson(missingValues(records));
    const values =
      missing === undefined
        ? undefined
        : toValues(
            await this.#run.read("reading claimed values", { sql: this.#sql.claimValues, args: [missing] }),
          );
    return { recorded, claim: toClaim(token, records, values) };
  }

  /**
   * The write of {@link #claim}. Its read returns the batch as one row, which SQLite refuses
   * above its length limit (1e9 bytes per value): then the whole write, which changed nothing,
   * runs again with half the batch, down to one message.
   */
  async #write(
    doing: string,
    marks: MarkStatements,
    options: ClaimOptions,
  ): Promise<PassRead & { token: string }> {
    const inlined = this.#run.local ? INLINED_VALUE_BYTES : Number.MAX_SAFE_INTEGER;
    for (let batchSize = options.batchSize; ; batchSize = Math.ceil(batchSize / 2)) {
      // Leases run from this attempt, not from the first: a refused one may have taken seconds.
      const claim = claimStatements(this.#sql, { ...options, batchSize }, Date.now(), inlined);
      try {
        const results = await this.#run.writeSteps(doing, passSteps(marks, claim));
        return { token: claim.token, ...passResult(marks, claim, results) };
      } catch (error) {
        if (batchSize === 1 || !isTooBig(error)) throw error;
      }
    }
  }

  /** Delivered: deleted, or kept as sent under `retention: { sent: "keep" }`. */
  async markAsSent(token: string, ids: readonly string[]): Promise<number> {
    const now = Date.now();
    const { sent } = this.#marks({ token, sent: ids }, now);
    if (sent === undefined) return 0;
    const changed = await this.#change("recording sent messages", sent);
    await this.#afterSent(now);
    return changed;
  }

  /** Failed attempts: `retries + 1`, error kept, lease released, ready again at `availableAt`. */
  async updateRetryCount(token: string, updates: readonly RetryUpdate[]): Promise<number> {
    const { retry } = this.#marks({ token, retry: updates }, 0);
    return retry === undefined ? 0 : this.#change("recording failed messages", retry);
  }

  /** Gives up on messages; they stay for `listDead` and `requeueDead`. */
  async markAsDead(token: string, updates: readonly DeadUpdate[]): Promise<number> {
    const { dead } = this.#marks({ token, dead: updates }, 0);
    return dead === undefined ? 0 : this.#change("recording dead messages", dead);
  }

  #marks(outcome: Partial<PassOutcome> & { token: string }, now: number): MarkStatements {
    return markStatements(this.#sql, outcome, this.#keepFor !== undefined, now);
  }

  /** Purges kept sent rows at most once a minute, after a mark that recorded sent messages. */
  async #afterSent(now: number): Promise<void> {
    if (this.#keepFor === undefined || now - this.#lastPurge < PURGE_INTERVAL) return;
    this.#lastPurge = now;
    // Housekeeping must not fail a mark that already committed: a failed purge waits a minute.
    await this.purgeSent().catch(() => {});
  }

  /** Pending, in-flight and dead counts and the oldest unfinished timestamp, in one query. */
  async stats(): Promise<OutboxStats> {
    return toStats(await this.#run.read("reading stats", { sql: this.#sql.stats, args: [Date.now()] }));
  }

  /** Dead messages in id order (default limit 100), with `status` `SendStatus.Dead`. */
  async listDead(options: { limit?: number } = {}): Promise<Message[]> {
    const limit = deadListLimit(options.limit);
    const result = await this.#run.read("listing dead messages", { sql: this.#sql.listDead, args: [limit] });
    return result.rows.map((row) => createMessage(toRecord(row), SendStatus.Dead));
  }

  /** Dead messages (all, or those ids) back to pending with `retries` 0; returns how many. */
  async requeueDead(ids?: readonly string[]): Promise<number> {
    if (ids === undefined) {
      return this.#change("requeueing dead messages", { sql: this.#sql.requeueAll, args: [Date.now()] });
    }
    const json = idsJson(ids);
    if (json === undefined) return 0;
    return this.#change("requeueing dead messages", { sql: this.#sql.requeueIds, args: [Date.now(), json] });
  }

  /**
   * Deletes delivered rows kept by `retention: { sent: "keep" }` that were sent before
   * `olderThan` (default: now minus `keepFor`; with `sent: "delete"`, all of them). Never
   * touches unsent or dead rows. Returns how many rows it deleted.
   */
  async purgeSent(olderThan?: Date): Promise<number> {
    const cutoff = olderThan?.getTime() ?? Date.now() - (this.#keepFor ?? 0);
    if (!Number.isFinite(cutoff))
      throw new ValidationError(`olderThan must be a valid Date, got ${String(olderThan)}`);
    return this.#change("purging sent messages", { sql: this.#sql.purgeSent, args: [cutoff] });
  }

  /** One writing statement, retried while busy; returns the rows it changed. */
  async #change(doing: string, statement: InStatement): Promise<number> {
    return (await this.#run.write(doing, statement)).rowsAffected;
  }
}
