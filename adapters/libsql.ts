/**
 * `edge-outbox/libsql`: the outbox on libSQL, local SQLite files and Turso alike, through
 * `@libsql/client`. Claims are leases held in the table (taken in one short write transaction),
 * so a relay holds no transaction across the network and a crashed relay loses nothing.
 *
 * @module
 */

import type { Client, InStatement, Transaction } from "@libsql/client";
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
  releaseDelay,
  SendStatus,
  StoreError,
  type TransactionalStore,
  ValidationError,
  wellFormedText,
} from "../mod.ts";
import { runClaim, runMark } from "./libsql/claim.ts";
import { toStoreError } from "./libsql/errors.ts";
import { inlineStatement } from "./libsql/inline.ts";
import { migrateTable, readNamespace } from "./libsql/migrate.ts";
import { hasOpenTransaction, insideTransaction, refuseClientInsideItsTransaction } from "./libsql/nesting.ts";
import { type LibsqlStoreOptions, type LibsqlTx, resolveStoreOptions } from "./libsql/options.ts";
import { Runner, TAKE_WRITE_LOCK } from "./libsql/runner.ts";
import { PurgeSchedule } from "./sql/retention.ts";
import { type MarkStatements, markStatements } from "./sqlite/pass.ts";
import { headersJson, type IdSpace, idsJson, toRecord, toStats } from "./sqlite/rows.ts";
import { keyIndex } from "./sqlite/schema.ts";
import { buildStatements, type Statements } from "./sqlite/sql.ts";

export type { LibsqlStoreOptions, LibsqlTx, RetentionOptions } from "./libsql/options.ts";

export { SCHEMA_VERSION } from "./sqlite/schema.ts";

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
  readonly #client: Client;
  /** The table's id space, once `migrate()` or the first call that needs it read it. */
  #namespace: IdSpace | undefined;
  readonly #purges: PurgeSchedule;
  /**
   * The namespace under which this store made (or found) the per-key index (see `keyIndex`): a
   * table dropped and migrated again by another process comes back without it, under another.
   */
  #keyIndexed: string | undefined;

  /** Throws a `ValidationError` (code `INVALID_OPTIONS`) for a bad table name or option. */
  constructor(client: Client, options: LibsqlStoreOptions = {}) {
    if (typeof client?.execute !== "function" || typeof client.transaction !== "function") {
      throw new ValidationError("client must be a libSQL Client (createClient from @libsql/client)");
    }
    const resolved = resolveStoreOptions(options);
    this.table = resolved.table;
    this.#keepFor = resolved.keepFor;
    this.#purges = new PurgeSchedule(resolved.keepFor, () => this.purgeSent());
    this.#client = client;
    this.#run = new Runner(client, resolved.busyTimeout, resolved.wal);
    this.#sql = buildStatements(this.table);
  }

  /**
   * Creates or upgrades the table and its indexes; safe to run again and from several
   * processes at once. The version and the table's random id namespace (see `formatMessageId`)
   * live in `edge_outbox_schema` (one row per table), never in `PRAGMA user_version`. Tables of
   * schema versions 1 and 2 are upgraded in place, their rows and ids kept. Every failure is a
   * `StoreError`: a table migrated by a newer edge-outbox, a database whose text encoding is not
   * UTF-8 (claims carry message bytes through SQLite's text functions, which would re-encode
   * them), a table of that name that is not an outbox table, or a name the store's indexes need
   * (`edge_outbox_<table>_state`, `_key`) taken by another object.
   */
  async migrate(): Promise<void> {
    this.#namespace = await migrateTable(this.#run, (fn) => this.withTransaction(fn), this.table);
  }

  /** The table's id space: read once (a `StoreError` if the table needs `migrate()`). */
  async #ns(): Promise<IdSpace> {
    this.#namespace ??= await readNamespace(this.#run, this.table);
    return this.#namespace;
  }

  /**
   * The namespace read again: for what hands out or takes ids from outside a claim (listings,
   * requeues), and after a claim saw another one (the table was dropped and made again by
   * another process's `migrate()`), so an old message's id never names a new row.
   */
  async #freshNs(): Promise<IdSpace> {
    this.#namespace = await readNamespace(this.#run, this.table);
    return this.#namespace;
  }

  /**
   * The INSERT for `message` as a statement, to run with your own writes however you like
   * (`client.batch`, `tx.batch`, ...). `addMessage` uses it.
   */
  insertStatement(message: PreparedMessage): InStatement {
    return {
      sql: this.#sql.insert,
      args: [
        wellFormedText(message.key),
        message.value,
        headersJson(message.headers),
        message.timestamp.getTime(),
      ],
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
   * // 1. Interactive transaction (commits when the callback returns, rolls back if it throws)
   * await store.withTransaction(async (tx) => {
   *   await tx.execute({ sql: "INSERT INTO orders (id) VALUES (?)", args: [id] });
   *   await outbox.addMessage(tx, { key: `order:${id}`, value: body }); // tx, never client
   * });
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
      await this.#addThroughClient(tx as Client, statement);
      return;
    }
    try {
      await this.#insertInTransaction(tx as Transaction, statement);
    } catch (error) {
      throw notWritten(
        toStoreError(error, "adding a message"),
        "retry the call in the same transaction, or roll it back and retry the transaction.",
      );
    }
  }

  /**
   * Locally, the INSERT written in and run through `executeMultiple`: a fraction of what
   * `execute` costs, which would otherwise be most of an addMessage (see inline.ts). One that
   * must stay bound (a value over 1 KiB) takes the write lock that way first, so that a busy
   * lock fails cleanly instead of leaving a statement in progress that fails the transaction's
   * COMMIT later (libsql-client-ts#352, see runner.ts).
   */
  async #insertInTransaction(tx: Transaction, statement: InStatement): Promise<void> {
    if (!this.#run.local || typeof tx.executeMultiple !== "function") {
      await tx.execute(statement);
      return;
    }
    const script = inlineStatement(statement);
    if (script !== undefined) {
      await tx.executeMultiple(script);
      return;
    }
    await tx.executeMultiple(TAKE_WRITE_LOCK);
    await tx.execute(statement);
  }

  /** A client: autocommit, through the runner so that a busy lock cannot wedge its pool. */
  async #addThroughClient(client: Client, statement: InStatement): Promise<void> {
    refuseClientInsideItsTransaction(client);
    const openBefore = hasOpenTransaction(client);
    try {
      await this.#run.forClient(client).write("adding a message", statement);
    } catch (error) {
      const inside =
        openBefore && hasOpenTransaction(client)
          ? " A store.withTransaction on this same client stayed open the whole time: if this call runs inside it, pass its transaction (tx) instead of the client."
          : " If a transaction of yours is open on this client around this call, pass that transaction instead of the client.";
      throw notWritten(error, `retry the call.${inside}`);
    }
  }

  /**
   * Runs `fn` in a write transaction that holds the write lock from the start (like BEGIN
   * IMMEDIATE; waits up to `busyTimeout` for it): commits when `fn` resolves, rolls back and
   * rethrows when it throws, closes the transaction either way. Inside `fn`, write through
   * `tx`: `addMessage(client, ...)` with this store's client is refused at once with a
   * `ValidationError` (the transaction holds the lock it would wait for). "At once" needs
   * `AsyncLocalStorage` (Node 20.16+, Deno, Bun, or a global `AsyncLocalStorage`); on Node
   * 20.0-20.15 that call instead waits `busyTimeout`, then fails with a `STORE_BUSY` whose
   * message says to pass `tx` (the message is not written).
   */
  async withTransaction<R>(fn: (tx: Transaction) => Promise<R>): Promise<R> {
    const tx = await this.#run.begin("beginning a transaction");
    try {
      const result = await insideTransaction(this.#client, () => fn(tx));
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
    const { claim } = await this.#claim("claiming messages", { sentToken: null }, options);
    return claim;
  }

  async #claim(doing: string, marks: MarkStatements, options: ClaimOptions): Promise<RecordAndFetchResult> {
    // The namespace first: a table that is not a migrated outbox table gets "run migrate()", and
    // no index of ours.
    const ns = await this.#ns();
    if (options.ordering === "key" && this.#keyIndexed !== ns.namespace) {
      await this.#run.script("creating the per-key index", keyIndex(this.table));
      this.#keyIndexed = ns.namespace;
    }
    return runClaim(this.#run, this.#sql, ns, () => this.#freshNs(), doing, marks, options);
  }

  /**
   * Records a pass's outcome and claims the next batch in one write transaction (one lock, one
   * commit, one fsync): the non-empty marks, then the claim, which sees them.
   */
  async recordAndFetch(outcome: PassOutcome, next: ClaimOptions): Promise<RecordAndFetchResult> {
    const marks = this.#marks((await this.#ns()).namespace, outcome);
    const result = await this.#claim("recording outcomes and claiming", marks, next);
    if (marks.sent !== undefined) await this.#purges.afterSent();
    return result;
  }

  /** Delivered: deleted, or kept as sent under `retention: { sent: "keep" }`. */
  async markAsSent(token: string, ids: readonly string[]): Promise<number> {
    const { sent } = this.#marks((await this.#ns()).namespace, { token, sent: ids });
    if (sent === undefined) return 0;
    const changed = await runMark(this.#run, "recording sent messages", sent);
    await this.#purges.afterSent();
    return changed;
  }

  /**
   * Failed attempts: `retries + 1`, error kept, lease released, ready again `delay` ms after
   * the database's now (see `RetryUpdate`).
   */
  async updateRetryCount(token: string, updates: readonly RetryUpdate[]): Promise<number> {
    const { retry } = this.#marks((await this.#ns()).namespace, { token, retry: updates });
    return retry === undefined ? 0 : this.#change("recording failed messages", retry);
  }

  /** Gives up on messages; they stay for `listDead` and `requeueDead`. */
  async markAsDead(token: string, updates: readonly DeadUpdate[]): Promise<number> {
    const { dead } = this.#marks((await this.#ns()).namespace, { token, dead: updates });
    return dead === undefined ? 0 : this.#change("recording dead messages", dead);
  }

  /**
   * Gives back claimed messages never handed to a sender (or not attempted by it): lease and
   * token cleared, `retries` and the last error untouched, claimable again `delay` ms after the
   * database's now (default 0: at once). Only rows still holding `token` change.
   */
  async release(token: string, ids: readonly string[], delay = 0): Promise<number> {
    const json = idsJson((await this.#ns()).namespace, ids);
    if (json === undefined) return 0;
    const wait = releaseDelay(delay);
    return this.#change("releasing claimed messages", { sql: this.#sql.release, args: [json, token, wait] });
  }

  #marks(namespace: string, outcome: Partial<PassOutcome> & { token: string }): MarkStatements {
    return markStatements(this.#sql, namespace, outcome, this.#keepFor !== undefined);
  }

  /** Pending, in-flight and dead counts and the oldest unfinished timestamp, in one query. */
  async stats(): Promise<OutboxStats> {
    return toStats(await this.#run.read("reading stats", this.#sql.stats));
  }

  /** Dead messages in id order (default limit 100), with `status` `SendStatus.Dead`. */
  async listDead(options: { limit?: number } = {}): Promise<Message[]> {
    const limit = deadListLimit(options.limit);
    const space = await this.#freshNs();
    const result = await this.#run.read("listing dead messages", { sql: this.#sql.listDead, args: [limit] });
    return result.rows.map((row) => createMessage(toRecord(space, row), SendStatus.Dead));
  }

  /**
   * Dead messages (all, or those ids) back to pending with `retries` 0; returns how many. Takes
   * the ids this store hands out and the bare row ids of before schema version 2; another
   * outbox's ids name no row here.
   */
  async requeueDead(ids?: readonly string[]): Promise<number> {
    if (ids === undefined) return this.#change("requeueing dead messages", this.#sql.requeueAll);
    const json = idsJson((await this.#freshNs()).namespace, ids);
    if (json === undefined) return 0;
    return this.#change("requeueing dead messages", { sql: this.#sql.requeueIds, args: [json] });
  }

  /**
   * Deletes delivered rows kept by `retention: { sent: "keep" }` that were sent before
   * `olderThan` (a time on this machine's clock; default: the database's now minus `keepFor`;
   * with `sent: "delete"`, all of them). Never touches unsent or dead rows, nor the row with the
   * highest id (it keeps SQLite from handing that id out again). Returns how many rows it
   * deleted.
   */
  async purgeSent(olderThan?: Date): Promise<number> {
    const cutoff =
      olderThan === undefined ? null : olderThan instanceof Date ? olderThan.getTime() : Number.NaN;
    if (cutoff !== null && !Number.isFinite(cutoff))
      throw new ValidationError(`olderThan must be a valid Date, got ${String(olderThan)}`);
    return this.#change("purging sent messages", {
      sql: this.#sql.purgeSent,
      args: [cutoff, this.#keepFor ?? 0],
    });
  }

  /** One writing statement, retried while busy; returns the rows it changed. */
  async #change(doing: string, statement: InStatement): Promise<number> {
    return (await this.#run.write(doing, statement)).rowsAffected;
  }
}

/**
 * A busy `error` of `addMessage` with the relay's promise ("the next pass retries") replaced by
 * what its caller must do: nothing retries an application's write by itself. Other errors as
 * they are.
 */
function notWritten(error: unknown, advice: string): unknown {
  if (!(error instanceof StoreError) || error.code !== "STORE_BUSY") return error;
  return new StoreError(
    `${error.message.replace(/; the next pass retries, nothing is lost$/, "")}; the message was NOT written, ${advice}`,
    { retryable: true, code: "STORE_BUSY", cause: error.cause },
  );
}
