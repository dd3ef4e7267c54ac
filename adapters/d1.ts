/**
 * `edge-outbox/d1`: the outbox on Cloudflare D1, through a Worker's D1 binding (`env.DB`). The
 * same schema and SQL as `edge-outbox/libsql` (one SQLite dialect, `adapters/sqlite/`), run
 * through D1's `batch`: a claim is one batch, a relay pass's marks and the next claim one more.
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
  type OutboxStats,
  type PassOutcome,
  type PreparedMessage,
  type RecordAndFetchResult,
  type RetryUpdate,
  releaseDelay,
  SendStatus,
  type TransactionalStore,
  ValidationError,
  wellFormedText,
} from "../mod.ts";
import { checkD1Database, type D1Database, type D1PreparedStatement, isD1Database } from "./d1/binding.ts";
import { checkMessageSize, chunks, MARK_CHUNK, READ_GROUP_BYTES } from "./d1/limits.ts";
import { migrateD1, migrationSql, readNamespaceD1, spaceFrom, versionQuery } from "./d1/migrate.ts";
import { type D1StoreOptions, type D1Tx, resolveD1Options } from "./d1/options.ts";
import { type D1MarkStep, d1MarkSteps, type MarkContext, runMarks, runPass } from "./d1/pass.ts";
import { D1Runner } from "./d1/runner.ts";
// The same grouping as a queue batch: consecutive runs bounded by count and by bytes.
import { splitToLimits } from "./queues/sender.ts";
import { PurgeSchedule } from "./sql/retention.ts";
import type { SqlStatement } from "./sqlite/pass.ts";
import {
  headersJson,
  type IdSpace,
  idsJson,
  rowIdsJson,
  toNumber,
  toRecord,
  toStats,
} from "./sqlite/rows.ts";
import { checkTableName, keyIndex } from "./sqlite/schema.ts";
import { buildStatements, type Statements } from "./sqlite/sql.ts";

export type { D1Database, D1Meta, D1PreparedStatement, D1Result } from "./d1/binding.ts";
export { MAX_ROW_BYTES } from "./d1/limits.ts";
export type { D1StoreOptions, D1Tx, RetentionOptions } from "./d1/options.ts";
export { SCHEMA_VERSION } from "./sqlite/schema.ts";

/**
 * A {@link TransactionalStore} on Cloudflare D1. Run {@link D1Store.migrate} once, or save
 * {@link D1Store.migrationSql} under `migrations/` and apply it with
 * `wrangler d1 migrations apply`.
 *
 * D1 has no interactive transactions: a message commits with your writes when its INSERT is in
 * the same `db.batch` (one implicit transaction, all or nothing). `addMessage(stmts, message)`
 * pushes the INSERT onto your array; `withTransaction(fn)` hands `fn` an empty array and runs
 * it as one batch when `fn` resolves (nothing runs if it throws).
 *
 * Ids are `msg_<namespace>_<row>` like LibsqlStore's: the INSERT needs no namespace (the row
 * id is SQLite's). Every claim and listing reads the namespace from `edge_outbox_schema` in
 * the same batch as its rows, so the ids it hands out are always the table's current ones
 * (a table dropped and made again gets a new namespace); marks and `release` read ids with the
 * namespace of the last claim (their claim token already confines them to that claim's rows),
 * `requeueDead(ids)` with one read just before.
 *
 * Errors are `StoreError`s; D1's transient failures (a reset, an overloaded database, a lost
 * connection) are `retryable`. A message whose row would exceed D1's 2,000,000-byte row limit
 * is refused with a `ValidationError` before anything is written.
 *
 * @example
 * ```ts
 * export default {
 *   async fetch(request, env, ctx) {
 *     const store = new D1Store(env.DB);
 *     const outbox = new Outbox(store, httpSender({ url: env.WEBHOOK_URL, secret: env.WEBHOOK_SECRET }));
 *     const stmts = [env.DB.prepare("INSERT INTO orders (id) VALUES (?1)").bind(id)];
 *     await outbox.addMessage(stmts, { key: `order:${id}`, value: body });
 *     await env.DB.batch(stmts); // the order and its message, all or nothing
 *     ctx.waitUntil(outbox.tick({ budgetMs: 5_000 }));
 *     return new Response(null, { status: 202 });
 *   },
 * };
 * ```
 */
export class D1Store implements TransactionalStore<D1Tx> {
  /** The outbox table's name. */
  readonly table: string;
  readonly #sql: Statements;
  readonly #marks: MarkContext;
  readonly #run: D1Runner;
  readonly #keepFor: number | undefined;
  readonly #purges: PurgeSchedule;
  /** The table's id space, once `migrate()` or the first call that needs it read it. */
  #namespace: IdSpace | undefined;
  /**
   * The namespace under which this store made (or found) the per-key index (see `keyIndex`): a
   * table dropped and migrated again by another process comes back without it, under another.
   */
  #keyIndexed: string | undefined;

  /**
   * The DDL of the outbox table `table` (default `"outbox_messages"`) as SQL text, for a file
   * under `migrations/` applied with `wrangler d1 migrations apply`: exactly the schema
   * `migrate()` creates (and LibsqlStore's), with the table's id namespace drawn by SQLite
   * when the file runs (each database gets its own). Idempotent. Also upgrades a table of the
   * previous schema version (2) in place: after an edge-outbox upgrade that raises
   * `SCHEMA_VERSION`, save its output as a new migration file. Throws a `ValidationError`
   * for an unsafe table name.
   *
   * @example
   * ```ts
   * // Once, in your project (then `wrangler d1 migrations apply DB`):
   * // node -e 'import("edge-outbox/d1").then((m) => console.log(m.D1Store.migrationSql()))' > migrations/0001_outbox.sql
   * const sql = D1Store.migrationSql("outbox_messages");
   * ```
   */
  static migrationSql(table = "outbox_messages"): string {
    return migrationSql(checkTableName(table));
  }

  /**
   * Throws a `ValidationError` (code `INVALID_OPTIONS`) when `db` is not a D1 binding or an
   * option is bad (an unsafe table name), before anything runs.
   */
  constructor(db: D1Database, options: D1StoreOptions = {}) {
    const resolved = resolveD1Options(options);
    this.#run = new D1Runner(checkD1Database(db));
    this.table = resolved.table;
    this.#keepFor = resolved.keepFor;
    this.#sql = buildStatements(this.table);
    this.#marks = { sql: this.#sql, keepSent: resolved.keepFor !== undefined };
    this.#purges = new PurgeSchedule(resolved.keepFor, () => this.purgeSent());
  }

  /**
   * Creates or upgrades the table and its indexes: a few reads decide, one batch writes (all or
   * nothing); cheap when up to date; safe to run again and from several Workers at once. Same schema and version table as LibsqlStore's `migrate()`.
   */
  async migrate(): Promise<void> {
    this.#namespace = await migrateD1(this.#run, this.table);
  }

  async #ns(): Promise<IdSpace> {
    this.#namespace ??= await readNamespaceD1(this.#run, this.table);
    return this.#namespace;
  }

  #insert(message: PreparedMessage): SqlStatement {
    const headers = headersJson(message.headers);
    checkMessageSize(message, headers);
    return {
      sql: this.#sql.insert,
      args: [wellFormedText(message.key), message.value, headers, message.timestamp.getTime()],
    };
  }

  /**
   * The INSERT for `message` as a statement prepared on this store's database, to put in your
   * own `db.batch`. Throws a `ValidationError` for a message over D1's row size.
   */
  insertStatement(message: PreparedMessage): D1PreparedStatement {
    return this.#run.prepare(this.#insert(message));
  }

  /**
   * Writes `message` (usually through `Outbox.addMessage`) as part of `tx`:
   * - an array of statements: the INSERT is pushed onto it; run the array with
   *   `db.batch(stmts)` on the same database: your writes and the message commit together;
   * - a D1 binding: the message alone, committed at once.
   * A message over D1's row size is refused (`ValidationError`) before anything is written.
   */
  async addMessage(tx: D1Tx, message: PreparedMessage): Promise<void> {
    const statement = this.#insert(message);
    if (Array.isArray(tx)) {
      tx.push(this.#run.prepare(statement));
      return;
    }
    if (!isD1Database(tx)) {
      throw new ValidationError(
        "tx must be an array of D1 statements (run later with db.batch) or a D1 database binding",
        { code: "INVALID_MESSAGE" },
      );
    }
    await (tx === this.#run.db ? this.#run : new D1Runner(tx)).change("adding a message", statement);
  }

  /**
   * Runs `fn` with an empty array of statements, then runs the array as one `db.batch` (all or
   * nothing) when `fn` resolves; when `fn` throws, nothing runs and the error is rethrown. D1
   * has no interactive transactions: reads inside `fn` do not see the writes it queued.
   */
  async withTransaction<R>(fn: (tx: D1PreparedStatement[]) => Promise<R>): Promise<R> {
    const statements: D1PreparedStatement[] = [];
    const result = await fn(statements);
    if (statements.length > 0) await this.#run.batchPrepared("committing a transaction", statements);
    return result;
  }

  /**
   * Claims up to `batchSize` ready messages, oldest first, under a fresh random token and a
   * lease of `leaseDuration` ms on the database's clock, in one batch. A reclaimed expired
   * lease counts as a failed attempt (`retries + 1`).
   */
  async fetchAndLock(options: ClaimOptions): Promise<Claim> {
    return (await this.#pass("claiming messages", [], options)).claim;
  }

  /** A pass; the namespace its batch read becomes the cached one. */
  async #pass(
    doing: string,
    marks: readonly D1MarkStep[],
    options: ClaimOptions,
  ): Promise<RecordAndFetchResult> {
    // First use: a missing version row is reported as "run migrate()", not as a failed batch.
    const { namespace } = await this.#ns();
    if (options.ordering === "key" && this.#keyIndexed !== namespace) {
      await this.#run.change("creating the per-key index", keyIndex(this.table));
      this.#keyIndexed = namespace;
    }
    const { space, ...result } = await runPass(this.#run, this.#sql, this.table, doing, marks, options);
    this.#namespace = space;
    return result;
  }

  /** Records a pass's outcome and claims the next batch in one batch: one round trip. */
  async recordAndFetch(outcome: PassOutcome, next: ClaimOptions): Promise<RecordAndFetchResult> {
    const marks = d1MarkSteps(this.#marks, (await this.#ns()).namespace, outcome);
    const result = await this.#pass("recording outcomes and claiming", marks, next);
    if (outcome.sent.length > 0) await this.#purges.afterSent();
    return result;
  }

  async #mark(doing: string, outcome: Partial<PassOutcome> & { token: string }): Promise<number> {
    const steps: D1MarkStep[] = d1MarkSteps(this.#marks, (await this.#ns()).namespace, outcome);
    return steps.length === 0 ? 0 : runMarks(this.#run, doing, steps);
  }

  /** Delivered: deleted, or kept as sent under `retention: { sent: "keep" }`. */
  async markAsSent(token: string, ids: readonly string[]): Promise<number> {
    const changed = await this.#mark("recording sent messages", { token, sent: ids });
    if (changed > 0) await this.#purges.afterSent();
    return changed;
  }

  /** Failed attempts: `retries + 1`, error kept, lease released, ready `delay` ms after the database's now. */
  updateRetryCount(token: string, updates: readonly RetryUpdate[]): Promise<number> {
    return this.#mark("recording failed messages", { token, retry: updates });
  }

  /** Gives up on messages; they stay for `listDead` and `requeueDead`. */
  markAsDead(token: string, updates: readonly DeadUpdate[]): Promise<number> {
    return this.#mark("recording dead messages", { token, dead: updates });
  }

  /**
   * Gives back claimed messages never handed to a sender (or not attempted by it): lease and
   * token cleared, `retries` and the last error untouched, claimable again `delay` ms after the
   * database's now (default 0: at once). Only rows still holding `token` change.
   */
  async release(token: string, ids: readonly string[], delay = 0): Promise<number> {
    const wait = releaseDelay(delay);
    return this.#byIds("releasing claimed messages", ids, (json) => ({
      sql: this.#sql.release,
      args: [json, token, wait],
    }));
  }

  /** Pending, in-flight and dead counts and the oldest unfinished timestamp, in one query. */
  async stats(): Promise<OutboxStats> {
    return toStats({ rows: await this.#run.rows("reading stats", this.#sql.stats) });
  }

  /**
   * Dead messages in id order (default limit 100), with `status` `SendStatus.Dead`. The ids and
   * sizes come first (with the namespace, in one batch), then the rows by id in groups of at
   * most {@link READ_GROUP_BYTES}: 100 dead messages of 2 MB never come back as one result.
   */
  async listDead(options: { limit?: number } = {}): Promise<Message[]> {
    const limit = deadListLimit(options.limit);
    await this.#ns();
    const [version, sizes] = await this.#run.batch("listing dead messages", [
      versionQuery(this.table),
      { sql: this.#sql.deadSizes, args: [limit] },
    ]);
    const space = spaceFrom(this.table, version?.results ?? []);
    this.#namespace = space;
    const dead = (sizes?.results ?? []).map((row) => ({ id: String(row.id), bytes: toNumber(row.bytes) }));
    const messages: Message[] = [];
    for (const group of splitToLimits(dead, MARK_CHUNK, READ_GROUP_BYTES)) {
      const rows = await this.#run.rows("listing dead messages", {
        sql: this.#sql.deadByIds,
        args: [rowIdsJson(group.map((row) => row.id))!],
      });
      for (const row of rows) messages.push(createMessage(toRecord(space, row), SendStatus.Dead));
    }
    return messages;
  }

  /**
   * Dead messages (all, or those ids) back to pending with `retries` 0; returns how many. Ids
   * are read in the namespace read just before: one of a table since dropped matches nothing.
   */
  async requeueDead(ids?: readonly string[]): Promise<number> {
    if (ids === undefined) return this.#run.change("requeueing dead messages", this.#sql.requeueAll);
    this.#namespace = await readNamespaceD1(this.#run, this.table);
    return this.#byIds("requeueing dead messages", ids, (json) => ({
      sql: this.#sql.requeueIds,
      args: [json],
    }));
  }

  /** One statement per {@link MARK_CHUNK} of `ids` (of this outbox), in one batch; rows changed. */
  async #byIds(
    doing: string,
    ids: readonly string[],
    statement: (json: string) => SqlStatement,
  ): Promise<number> {
    const { namespace } = await this.#ns();
    const statements: SqlStatement[] = [];
    for (const group of chunks(ids, MARK_CHUNK)) {
      const json = idsJson(namespace, group);
      if (json !== undefined) statements.push(statement(json));
    }
    const results = await this.#run.batch(doing, statements);
    return results.reduce((sum, result) => sum + (result.meta.changes ?? 0), 0);
  }

  /**
   * Deletes delivered rows kept by `retention: { sent: "keep" }` that were sent before
   * `olderThan` (default: the database's now minus `keepFor`; with `sent: "delete"`, all of
   * them). Never touches unsent or dead rows, nor the row with the highest id (it keeps SQLite
   * from handing that id out again). Returns how many rows it deleted.
   */
  async purgeSent(olderThan?: Date): Promise<number> {
    const cutoff =
      olderThan === undefined ? null : olderThan instanceof Date ? olderThan.getTime() : Number.NaN;
    if (cutoff !== null && !Number.isFinite(cutoff))
      throw new ValidationError(`olderThan must be a valid Date, got ${String(olderThan)}`);
    return this.#run.change("purging sent messages", {
      sql: this.#sql.purgeSent,
      args: [cutoff, this.#keepFor ?? 0],
    });
  }
}
