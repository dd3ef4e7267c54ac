/**
 * `edge-outbox/postgres`: the outbox on PostgreSQL through the client you already use:
 * node-postgres (`pg`) `Pool` or `Client`, postgres.js `sql`, PGlite, or Neon's serverless
 * `Pool`/`Client`. Claims are leases held in the table, taken by one short statement
 * (`FOR UPDATE SKIP LOCKED`), so a relay holds no transaction across the network and a
 * crashed relay loses nothing. No driver is a dependency: the store recognises the one you pass.
 *
 * @module
 */

import {
  type Claim,
  type ClaimOptions,
  checkIdNamespace,
  createMessage,
  type DeadUpdate,
  deadListLimit,
  type Message,
  newIdNamespace,
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
} from "../mod.ts";
import type { Driver, PgliteQueryable, PgQueryable, PostgresJsQueryable } from "./postgres/driver.ts";
import { txQueryable } from "./postgres/driver.ts";
import type { PgClientLike, PgPoolLike } from "./postgres/drivers/pg.ts";
import type { PgliteLike } from "./postgres/drivers/pglite.ts";
import type { PostgresJsLike } from "./postgres/drivers/postgres-js.ts";
import { driverFor } from "./postgres/drivers/recognise.ts";
import { toStoreError } from "./postgres/errors.ts";
import {
  notifyChannel,
  type PostgresStoreOptions,
  resolveStoreOptions,
  SCHEMA_TABLE,
} from "./postgres/options.ts";
import { checkClaimOptions, passArguments } from "./postgres/pass.ts";
import {
  claimedRows,
  countOf,
  headersJson,
  keyText,
  type Row,
  rowIds,
  toRecord,
  toStats,
} from "./postgres/rows.ts";
import { buildStatements, type PassArg, type PassShape, type Statements } from "./postgres/sql.ts";
import { PurgeSchedule } from "./sql/retention.ts";

/** The outcome part of a claim's pass: it marks nothing. */
const NO_MARKS: Readonly<Partial<PassOutcome> & { token: string }> = Object.freeze({ token: "" });

export type { PostgresStoreOptions, RetentionOptions } from "./postgres/options.ts";

/** A client the store can run on: node-postgres/Neon `Pool` or `Client`, postgres.js `sql`, PGlite. */
export type PostgresDb = PgPoolLike | PgClientLike | PostgresJsLike | PgliteLike;

/**
 * What `addMessage` writes into: the driver's transaction (a `pg` `PoolClient` or `Client`
 * after `BEGIN`, postgres.js `sql.begin`'s `tx`, PGlite `db.transaction`'s `tx`), or a
 * pool/client/`sql`/PGlite itself (autocommit: the message commits alone, at once).
 */
export type PostgresTx = PgQueryable | PostgresJsQueryable | PgliteQueryable;

/**
 * The schema version this code writes and reads.
 * - 1: the table, its indexes, and the version table with the id namespace.
 * - 2: the per-key index on a hash of the key (a long key no longer fails the INSERT); the id
 *   fence in the version table (the id sequence and its storage, to renew the namespace when
 *   ids start again).
 * - 3: index names of their own, `edge_outbox_<table>_<purpose>` (`<table>_<purpose>` could be
 *   another outbox's table name); the fence also keeps the sequence's settings and a high-water
 *   mark (a harmless ALTER no longer renews the namespace).
 */
export const SCHEMA_VERSION = 3;

/**
 * A {@link TransactionalStore} on PostgreSQL. Call {@link PostgresStore.migrate} once (at
 * start-up or in a deploy step) before use. `Tx` is your driver's transaction type, which
 * `withTransaction` hands to its callback (`PoolClient`, `postgres.TransactionSql`, PGlite's
 * `Transaction`); it defaults to any of them.
 *
 * Every claim, mark and pass is ONE statement (autocommit: a short transaction of its own), and
 * every time that decides a lease or readiness comes from the database's clock. Errors are
 * `StoreError`s: `retryable` (code `STORE_BUSY`) for serialization failures, deadlocks, lock and
 * statement timeouts and dropped connections; the relay's next pass retries, nothing is lost.
 *
 * A `pg` `Client` is one connection: the store queues its own statements on it, and a caller
 * who runs `BEGIN` on that same client must not let the relay use it meanwhile (use a `Pool`).
 *
 * @example
 * ```ts
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const store = new PostgresStore<pg.PoolClient>(pool);
 * await store.migrate();
 * const outbox = new Outbox(store, httpSender({ url, secret }));
 * ```
 */
export class PostgresStore<Tx extends PostgresTx = PostgresTx> implements TransactionalStore<Tx> {
  /** The outbox table's name (unquoted). */
  readonly table: string;
  /** The schema that holds it (unquoted). */
  readonly schema: string;
  /** The NOTIFY channel of this outbox (`edge_outbox:<schema>.<table>`, hashed past 63 bytes). */
  readonly channel: string;
  readonly #driver: Driver;
  readonly #sql: Statements;
  readonly #keepFor: number | undefined;
  readonly #notify: boolean;
  readonly #prepare: boolean;
  #namespace: Promise<string> | undefined;
  readonly #purges: PurgeSchedule;

  /** Throws a `ValidationError` (code `INVALID_OPTIONS`) for an unknown client, a bad name or option. */
  constructor(db: PostgresDb, options: PostgresStoreOptions = {}) {
    const resolved = resolveStoreOptions(options);
    this.#driver = driverFor(db, resolved.prepare);
    this.table = resolved.table;
    this.schema = resolved.schema;
    this.channel = notifyChannel(resolved.schema, resolved.table);
    this.#keepFor = resolved.keepFor;
    this.#purges = new PurgeSchedule(resolved.keepFor, () => this.purgeSent());
    this.#notify = resolved.notify;
    this.#prepare = resolved.prepare;
    this.#sql = buildStatements(resolved.schema, resolved.table);
  }

  /**
   * Creates or upgrades the schema, the table and its indexes, and the version table
   * (`<schema>.edge_outbox_schema`, one row per table with its version, the random namespace
   * of its message ids, and the id fence: which sequence numbers its rows). Idempotent, and
   * safe when many processes run it at once: it runs in one transaction under an advisory lock
   * per schema. Rejects with a `StoreError` if the table was migrated by a newer edge-outbox.
   *
   * Receivers deduplicate on message ids, so an id never comes back for another message: a
   * table dropped by hand is created again under a new namespace, and so is one whose ids
   * started again (`TRUNCATE ... RESTART IDENTITY`; claims notice that one by themselves).
   */
  async migrate(): Promise<void> {
    try {
      this.#namespace = Promise.resolve(checkIdNamespace(await this.#migrate()));
    } catch (error) {
      // Every failure is an OutboxError: a lock timeout is a retryable STORE_BUSY like anywhere else.
      throw toStoreError(error, "migrating the schema");
    }
  }

  /** migrate()'s transaction; returns the id namespace. Errors are the driver's own. */
  #migrate(): Promise<string> {
    return this.#transaction("migrating the schema", async (q) => {
      await q.query(this.#sql.lock, [`edge-outbox:${this.schema}`]);
      if ((await q.query(this.#sql.schemaExists, [this.schema])).length === 0)
        await q.query(this.#sql.createSchema, []);
      for (const statement of this.#sql.prepare) await q.query(statement, []);
      if ((await q.query(this.#sql.fenceColumnsMissing, [])).length > 0)
        for (const statement of this.#sql.addFenceColumns) await q.query(statement, []);
      const [row] = await q.query(this.#sql.readVersion, [this.table]);
      const version = this.#checkVersion(row);
      const exists = (await q.query(this.#sql.tableExists, []))[0]?.[0] === true;
      // A version row that outlived its table (dropped by hand): the table is made anew.
      const steps = exists && version > 0 ? this.#sql.upgrades.slice(version - 1).flat() : this.#sql.create;
      for (const statement of steps) await q.query(statement, []);
      // The namespace stays while the same ids go on; a version 1 row has no fence yet (null).
      // Read again against the table's ids, as claims read it (the layout has the table now).
      const fence =
        exists && row !== undefined ? (await q.query(this.#sql.fenceHolds, [this.table]))[0]?.[0] : row?.[2];
      const kept = exists && fence !== false && typeof row?.[1] === "string" ? row[1] : undefined;
      const namespace = kept ?? newIdNamespace();
      // The fence is recorded anew when it is missing, unsettled, or older than its high-water mark.
      if (version !== SCHEMA_VERSION || kept === undefined || fence !== true || row?.[3] !== true) {
        await q.query(this.#sql.writeVersion, [this.table, SCHEMA_VERSION, namespace]);
      }
      return namespace;
    });
  }

  /**
   * `value`, the namespace a statement read behind the id fence, when the fence held (and the
   * ids it hands out are of that namespace). When the fence is broken (the ids started again),
   * renews the namespace and returns undefined: the caller runs its statement again, once.
   */
  async #fenced(value: unknown, settled: unknown, renewed: boolean): Promise<string | undefined> {
    if (typeof value === "string") {
      const namespace = checkIdNamespace(value);
      this.#namespace = Promise.resolve(namespace);
      // A harmless ALTER gave the sequence new storage: the fence is recorded anew.
      if (settled === false) await this.#read("recording the id fence", this.#sql.refence, [this.table]);
      return namespace;
    }
    if (renewed) {
      throw new StoreError(
        `table ${this.#sql.qualified} is not the one migrate() recorded (dropped and made again by hand?): run \`await store.migrate()\``,
        { retryable: false },
      );
    }
    await this.#read("renewing the id namespace", this.#sql.renewIds, [this.table, newIdNamespace()]);
    return undefined;
  }

  /** The version a version row holds (0: none); throws when it is newer than this code's. */
  #checkVersion(row: Row | undefined): number {
    const version = row === undefined ? 0 : Number(row[0]);
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        `table ${this.#sql.qualified} has schema version ${version}, newer than this edge-outbox supports (${SCHEMA_VERSION}); upgrade edge-outbox`,
        { retryable: false },
      );
    }
    return version;
  }

  /** The id namespace, read once from the version table (kept only once read). */
  #ids(): Promise<string> {
    this.#namespace ??= this.#read("reading the id namespace", this.#sql.readVersion, [this.table]).then(
      ([row]) => {
        if (row === undefined || this.#checkVersion(row) !== SCHEMA_VERSION) {
          throw new StoreError(
            `table ${this.#sql.qualified} is not migrated (did you run \`await store.migrate()\`?)`,
            { retryable: false },
          );
        }
        return checkIdNamespace(row[1]);
      },
      (error: unknown) => {
        // A missing version table means the same as a missing row.
        const cause =
          error instanceof StoreError ? (error.cause as { code?: unknown } | undefined) : undefined;
        if (cause?.code !== "42P01") throw error;
        throw new StoreError(
          `${this.schema}.${SCHEMA_TABLE} does not exist (did you run \`await store.migrate()\`?)`,
          { retryable: false, cause: error },
        );
      },
    );
    const loading = this.#namespace;
    loading.catch(() => {
      if (this.#namespace === loading) this.#namespace = undefined;
    });
    return loading;
  }

  /**
   * Writes `message` (usually through `Outbox.addMessage`) as part of `tx`, in your driver's
   * own idiom; it becomes visible when `tx` commits and never if it rolls back:
   * - node-postgres / Neon: a `PoolClient` (or `Client`) after `BEGIN`;
   * - postgres.js: the `tx` of `sql.begin(async (tx) => ...)`;
   * - PGlite: the `tx` of `db.transaction(async (tx) => ...)`;
   * - the pool, client, `sql` or PGlite itself: committed at once (autocommit, atomic with
   *   nothing else).
   *
   * A key or header containing NUL (U+0000), which PostgreSQL text cannot hold, is refused
   * with a `ValidationError` (code `INVALID_MESSAGE`) before anything is written.
   *
   * @example
   * ```ts
   * // node-postgres
   * const client = await pool.connect();
   * try {
   *   await client.query("BEGIN");
   *   await client.query("INSERT INTO orders (id) VALUES ($1)", [id]);
   *   await outbox.addMessage(client, { key: `order:${id}`, value: body });
   *   await client.query("COMMIT");
   * } catch (error) { await client.query("ROLLBACK"); throw error; } finally { client.release(); }
   * // postgres.js
   * await sql.begin(async (tx) => {
   *   await tx`INSERT INTO orders (id) VALUES (${id})`;
   *   await outbox.addMessage(tx, { key: `order:${id}`, value: body });
   * });
   * // PGlite
   * await db.transaction(async (tx) => {
   *   await tx.query("INSERT INTO orders (id) VALUES ($1)", [id]);
   *   await outbox.addMessage(tx, { key: `order:${id}`, value: body });
   * });
   * ```
   */
  async addMessage(tx: Tx, message: PreparedMessage): Promise<void> {
    // A single pg.Client the store also runs on: queued behind the store's own work on it.
    const target = this.#driver.own?.(tx) ?? txQueryable(tx, this.#prepare);
    if (!(message?.value instanceof Uint8Array)) {
      throw new ValidationError(
        "message.value must be a Uint8Array (use Outbox.addMessage, which encodes it)",
        {
          code: "INVALID_MESSAGE",
        },
      );
    }
    const at = message.timestamp instanceof Date ? message.timestamp.getTime() : Number.NaN;
    if (!Number.isFinite(at)) {
      throw new ValidationError(`message.timestamp must be a valid Date, got ${String(message.timestamp)}`, {
        code: "INVALID_MESSAGE",
      });
    }
    const args: unknown[] = [
      keyText(message.key),
      message.value,
      headersJson(message.headers),
      new Date(at).toISOString(),
    ];
    if (this.#notify) args.push(this.channel);
    try {
      await target.query(this.#notify ? this.#sql.insertNotify : this.#sql.insert, args);
    } catch (error) {
      throw toStoreError(error, "adding a message");
    }
  }

  /**
   * Runs `fn` in a new transaction on one connection, handing it your driver's transaction
   * object (a `PoolClient` after `BEGIN`, a postgres.js `tx`, a PGlite `tx`): commits when `fn`
   * resolves, rolls back and rethrows `fn`'s error when it throws. A failed `BEGIN` or `COMMIT`
   * is a `StoreError`. With a single `pg` `Client`, do not call the store's other methods
   * inside `fn`: they wait for the connection `fn` holds.
   */
  withTransaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    return this.#transaction("running a transaction", (_q, tx) => fn(tx as Tx));
  }

  /** `fn` in a driver transaction; `fn`'s own errors pass through, the driver's are mapped. */
  async #transaction<R>(
    doing: string,
    fn: (q: { query(text: string, args: readonly unknown[]): Promise<Row[]> }, tx: unknown) => Promise<R>,
  ): Promise<R> {
    let thrown: { error: unknown } | undefined;
    try {
      return await this.#driver.transaction(async (tx) => {
        try {
          return await fn(txQueryable(tx), tx);
        } catch (error) {
          thrown = { error };
          throw error;
        }
      });
    } catch (error) {
      if (thrown !== undefined && error === thrown.error) throw error;
      throw toStoreError(error, doing);
    }
  }

  /**
   * Claims up to `batchSize` ready messages, oldest first, under a fresh random token and a
   * lease of `leaseDuration` ms on the database's clock, in one statement. A reclaimed expired
   * lease counts as a failed attempt (`retries + 1`).
   */
  async fetchAndLock(options: ClaimOptions): Promise<Claim> {
    return this.#claim(checkClaimOptions(options), false);
  }

  // No recordAndFetch: one statement sees one snapshot, so a claim in the same statement as the
  // marks could neither see rows the marks made ready nor tell a predecessor this pass marked
  // sent from one another relay just took over (both reproduced by the model test and review).
  // The relay then records and claims in two statements; correctness first, see BENCHMARKS.md.

  /** Runs a claim's pass statement; `renewed`: the id namespace was just renewed for it. */
  async #claim(options: ClaimOptions, renewed: boolean): Promise<Claim> {
    const namespace = await this.#ids();
    const token = crypto.randomUUID();
    const { shape, values } = passArguments(namespace, NO_MARKS, options, token);
    // At least one row: the claim statement joins what it took onto the namespace it read.
    const [head, ...rest] = (await this.#passStatement("claiming messages", shape, values)) as [
      Row,
      ...Row[],
    ];
    const current = await this.#fenced(head[3], head[4], renewed);
    // The claim took nothing under a namespace the fence no longer holds: again under the new one.
    if (current === undefined) return this.#claim(options, true);
    const messages = claimedRows([head, ...rest], 5).map((row) => createMessage(toRecord(current, row, 5)));
    return { token, messages };
  }

  /** Runs the pass statement of marks under `outcome.token`; the rows each mark changed. */
  async #record(
    doing: string,
    outcome: Partial<PassOutcome> & { token: string },
  ): Promise<RecordAndFetchResult["recorded"]> {
    const namespace = await this.#ids();
    // The last argument is a claim's token; a pass of marks has none.
    const { shape: passShape, values } = passArguments(namespace, outcome, undefined, outcome.token);
    // Without claim options, passArguments gives the marks' shape.
    const shape = passShape as Extract<PassShape, { claim: false }>;
    if (!shape.sent && !shape.retry && !shape.dead) return { sent: 0, failed: 0, dead: 0 };
    // One row: the marks statement ends in a SELECT of counts without FROM.
    const [counts] = (await this.#passStatement(doing, shape, values)) as [Row];
    return { sent: Number(counts[0]), failed: Number(counts[1]), dead: Number(counts[2]) };
  }

  /** Runs the pass statement of `shape` with `values` in its parameters' order. */
  async #passStatement(
    doing: string,
    shape: PassShape,
    values: Partial<Record<PassArg, unknown>>,
  ): Promise<Row[]> {
    const statement = this.#sql.pass(shape, this.#keepFor !== undefined);
    return this.#read(
      doing,
      statement.text,
      statement.args.map((name) => values[name]),
    );
  }

  /** Delivered: deleted, or kept as sent under `retention: { sent: "keep" }`. */
  async markAsSent(token: string, ids: readonly string[]): Promise<number> {
    const { sent } = await this.#record("recording sent messages", { token, sent: ids });
    if (sent > 0) await this.#purges.afterSent();
    return sent;
  }

  /** Failed attempts: `retries + 1`, error kept, lease released, ready again `delay` ms from the database's now. */
  async updateRetryCount(token: string, updates: readonly RetryUpdate[]): Promise<number> {
    return (await this.#record("recording failed messages", { token, retry: updates })).failed;
  }

  /** Gives up on messages; they stay for `listDead` and `requeueDead`. */
  async markAsDead(token: string, updates: readonly DeadUpdate[]): Promise<number> {
    return (await this.#record("recording dead messages", { token, dead: updates })).dead;
  }

  /**
   * Gives back claimed messages never handed to a sender (or not attempted by it): lease and
   * token cleared, `retries` and `last_error` untouched, claimable again `delay` ms after the
   * database's now (default 0: at once). Only rows still holding `token` change.
   */
  async release(token: string, ids: readonly string[], delay = 0): Promise<number> {
    const namespace = await this.#ids();
    const rows = rowIds(namespace, ids);
    if (rows === undefined) return 0;
    const wait = releaseDelay(delay);
    return countOf(
      await this.#read("releasing messages", this.#sql.release, [String(token), rows, namespace, wait]),
    );
  }

  /** Pending, in-flight and dead counts and the oldest unfinished timestamp, in one query. */
  async stats(): Promise<OutboxStats> {
    const [row] = await this.#read("reading stats", this.#sql.stats, []);
    return toStats(row);
  }

  /** Dead messages in id order (default limit 100), with `status` `SendStatus.Dead`. */
  async listDead(options: { limit?: number } = {}): Promise<Message[]> {
    const limit = deadListLimit(options?.limit);
    await this.#ids();
    for (let renewed = false; ; renewed = true) {
      const rows = await this.#read("listing dead messages", this.#sql.listDead, [limit]);
      const [head] = rows;
      if (head === undefined) return [];
      const current = await this.#fenced(head[0], head[1], renewed);
      if (current !== undefined)
        return rows.map((row) => createMessage(toRecord(current, row, 2), SendStatus.Dead));
    }
  }

  /** Dead messages (all, or those ids) back to pending with `retries` 0; returns how many. */
  async requeueDead(ids?: readonly string[]): Promise<number> {
    if (ids === undefined)
      return countOf(await this.#read("requeueing dead messages", this.#sql.requeueAll, []));
    // Ids of a namespace the fence no longer holds (the ids started again) match nothing.
    const namespace = await this.#ids();
    const rows = rowIds(namespace, ids);
    if (rows === undefined) return 0;
    return countOf(await this.#read("requeueing dead messages", this.#sql.requeueIds, [rows, namespace]));
  }

  /**
   * Deletes delivered rows kept by `retention: { sent: "keep" }` that were sent before
   * `olderThan` (default: `keepFor` ago on the database's clock; with `sent: "delete"`, all of
   * them). Never touches unsent or dead rows. Returns how many rows it deleted.
   */
  async purgeSent(olderThan?: Date): Promise<number> {
    if (olderThan === undefined) {
      return countOf(
        await this.#read("purging sent messages", this.#sql.purgeOlderThan, [this.#keepFor ?? 0]),
      );
    }
    const cutoff = olderThan instanceof Date ? olderThan.getTime() : Number.NaN;
    if (!Number.isFinite(cutoff))
      throw new ValidationError(`olderThan must be a valid Date, got ${String(olderThan)}`);
    return countOf(
      await this.#read("purging sent messages", this.#sql.purgeBefore, [new Date(cutoff).toISOString()]),
    );
  }

  /**
   * Calls `onWake` whenever a message is committed by a store with `notify: true` (in any
   * process), within milliseconds, until the returned function is called: pass
   * `() => outbox.wake()` and keep `outbox.start()`'s period as the safety net. node-postgres
   * and Neon pools keep one connection for it and open a new one when it drops (after a pause
   * that grows to 5 s), waking once after each reconnect for what was missed, and report each
   * drop to `onError`; such a pool needs `max` >= 2 (a `ValidationError` otherwise: the listener
   * would hold its only connection). A single `pg` `Client` listens on itself and cannot
   * reconnect: its `error`/`end` go to `onError` once while it listens. postgres.js reconnects
   * by itself and wakes after each reconnect, but reports no drop (`onError` is never called for
   * it). PGlite hears its own process only. Failures never stop the loop, which keeps relaying
   * on its period meanwhile.
   *
   * @example
   * ```ts
   * const store = new PostgresStore(pool, { notify: true });
   * const outbox = new Outbox(store, sender);
   * outbox.start();
   * const unlisten = await store.listen(() => outbox.wake());
   * // at shutdown: await unlisten(); await outbox.stop();
   * ```
   */
  async listen(
    onWake: () => void,
    options: { onError?: (error: unknown) => void } = {},
  ): Promise<() => Promise<void>> {
    if (typeof onWake !== "function") throw new ValidationError("onWake must be a function");
    const listen = this.#driver.listen;
    if (listen === undefined) {
      throw new StoreError(`${this.#driver.name} cannot LISTEN`, { retryable: false });
    }
    const report = (error: unknown) => {
      try {
        options.onError?.(toStoreError(error, `listening on ${this.channel}`));
      } catch {
        // A throwing error handler must not take the listening connection down with it.
      }
    };
    const wake = () => {
      try {
        onWake();
      } catch (error) {
        report(error);
      }
    };
    try {
      return await listen(this.channel, wake, report);
    } catch (error) {
      throw toStoreError(error, `listening on ${this.channel}`);
    }
  }

  /** One statement through the store's driver, errors mapped. */
  async #read(doing: string, text: string, args: readonly unknown[]): Promise<Row[]> {
    try {
      return await this.#driver.query(text, args);
    } catch (error) {
      throw toStoreError(error, doing);
    }
  }
}
