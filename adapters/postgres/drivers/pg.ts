/**
 * node-postgres (`pg`) and Neon's `@neondatabase/serverless` `Pool` and `Client`, which share
 * its API. A `Pool` runs each statement on any free connection and each transaction on one
 * checked-out `PoolClient`. A `Client` is one connection, so the store queues its own work on
 * it: a transaction from `withTransaction` holds the connection until it ends, and no statement
 * of the store can slip into it.
 *
 * @module
 */

import { StoreError, ValidationError } from "../../../mod.ts";
import { type Driver, type PgQueryable, runOn } from "../driver.ts";
import {
  commitOutcomeUnknown,
  isCommitOutcomeUnknown,
  isConnectionLost,
  isRefusal,
  toStoreError,
} from "../errors.ts";
import { listenOnPool, quotedChannel } from "../listen.ts";
import { runPrepared } from "../prepared.ts";
import type { Row } from "../rows.ts";

/** The part of a `pg.PoolClient` the driver uses. */
export interface PgPoolClientLike extends PgQueryable {
  release(error?: Error | boolean): void;
}

/** A checked-out client's connection failures (`pg` and Neon clients are event emitters). */
interface ErrorEvents {
  on(event: "error", listener: (error: Error) => void): unknown;
  off(event: "error", listener: (error: Error) => void): unknown;
}

/** The part of a `pg.Pool` the driver uses. */
export interface PgPoolLike extends PgQueryable {
  connect(): Promise<PgPoolClientLike>;
}

/** The events of a `pg.Client` the driver listens to. */
interface EventSource {
  on(event: "end", listener: () => void): unknown;
}

/** The part of a `pg.Client` the driver uses (events for LISTEN). */
export interface PgClientLike extends PgQueryable {
  connect(): Promise<unknown>;
}

/** A `pg.Pool` (or Neon `Pool`): has `connect` and the pool counters, no `release`. */
export function isPgPool(value: unknown): value is PgPoolLike {
  const v = value as Record<string, unknown> | null;
  return (
    typeof v === "object" &&
    v !== null &&
    typeof v.query === "function" &&
    typeof v.connect === "function" &&
    typeof v.release !== "function" &&
    typeof v.totalCount === "number"
  );
}

/** A `pg.Client`, Neon `Client` or `PoolClient`: one connection. */
export function isPgClient(value: unknown): value is PgClientLike {
  const v = value as Record<string, unknown> | null;
  return (
    typeof v === "object" && v !== null && typeof v.query === "function" && typeof v.connect === "function"
  );
}

/** The error of a transaction PostgreSQL rolled back at COMMIT (a statement in it had failed). */
function abortedAtCommit(): StoreError {
  return new StoreError(
    "the transaction was rolled back, not committed: a statement inside it failed (and the error was caught), which aborts a PostgreSQL transaction; nothing it wrote was kept",
    { retryable: false, code: "STORE_ERROR" },
  );
}

/**
 * BEGIN, `fn(tx)`, COMMIT on `tx`; ROLLBACK when anything throws. `onBroken` hears that the
 * connection broke; `working` tells whether it is still believed to work.
 */
async function inTransaction<R>(
  tx: PgQueryable,
  fn: (tx: unknown) => Promise<R>,
  onBroken: (error: Error) => void,
  working: () => boolean,
): Promise<R> {
  try {
    await tx.query({ text: "BEGIN" });
  } catch (error) {
    onBroken(error as Error);
    throw toStoreError(error, "beginning a transaction");
  }
  try {
    const result = await fn(tx);
    // COMMIT on a connection already known broken never reaches the server: not committed.
    const sentOnWorking = working();
    let commit: { command?: unknown };
    try {
      commit = await tx.query({ text: "COMMIT" });
    } catch (error) {
      // Sent and left unanswered (the connection lost, a `query_timeout`), it may have committed.
      if (sentOnWorking && !isRefusal(error)) throw commitOutcomeUnknown(error);
      throw toStoreError(error, "committing a transaction");
    }
    // A transaction in which a statement failed (and `fn` caught it) cannot commit: PostgreSQL
    // answers COMMIT with the tag ROLLBACK and no error. Resolving then would report as
    // committed what was rolled back.
    if (commit.command === "ROLLBACK") throw abortedAtCommit();
    return result;
  } catch (error) {
    // The caller's error is the one that matters; a connection that cannot roll back is broken.
    await tx.query({ text: "ROLLBACK" }).catch((rollback: unknown) => onBroken(rollback as Error));
    throw error;
  }
}

/** The driver of a `pg.Pool` or Neon `Pool`. */
export function pgPoolDriver(pool: PgPoolLike, name = "node-postgres Pool", prepare = true): Driver {
  return {
    name,
    query: (text, args) => (prepare ? runPrepared : runOn)(pool, text, args),
    async transaction(fn) {
      let client: PgPoolClientLike;
      try {
        client = await pool.connect();
      } catch (error) {
        throw toStoreError(error, "connecting for a transaction");
      }
      let broken: Error | undefined;
      const onBroken = (error: Error) => {
        broken ??= error;
      };
      // A checked-out client's 'error' (its connection dropped mid-transaction) has no listener
      // of the pool's: unheard, it would end the process. The statement fails on its own too.
      const events = client as Partial<ErrorEvents>;
      events.on?.("error", onBroken);
      try {
        return await inTransaction(client, fn, onBroken, () => broken === undefined);
      } finally {
        events.off?.("error", onBroken);
        // A broken connection is destroyed rather than handed to the next user.
        client.release(broken);
      }
    },
    listen(channel, onNotify, onError) {
      // The listener keeps one connection of the pool for as long as it listens: with one, every
      // other statement of the store (and of the app) would wait for it forever.
      const max = (pool as { options?: { max?: unknown } }).options?.max;
      if (typeof max === "number" && max <= 1) {
        throw new ValidationError(
          `listen() keeps one connection of the pool for as long as it listens, and this pool has max ${max}: every other statement would wait forever. Give the pool max >= 2, or listen through a PostgresStore on a pool or Client of its own`,
        );
      }
      return listenOnPool(pool, channel, onNotify, onError);
    },
  };
}

/**
 * `client` under another identity: every property and method is the client's own (methods
 * bound to it), but `!==` the client itself.
 */
function sameConnection<C extends object>(client: C): C {
  return new Proxy(client, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The driver of one connection: a `pg.Client`, Neon `Client`, or a `PoolClient` kept for it. */
export function pgClientDriver(client: PgClientLike, name = "node-postgres Client", prepare = true): Driver {
  // A Client whose connection ended (closed, or killed by the server) never reconnects: every
  // later statement would fail "not queryable", which alone reads as a dropped connection a
  // retry gets past. So once 'end' came, or a statement failed with the connection, it is gone.
  let ended = false;
  (client as Partial<EventSource>).on?.("end", () => {
    ended = true;
  });
  const gone = (error?: unknown) =>
    new StoreError(
      `the ${name}'s connection has ended (closed, or terminated by the server) and a Client never reconnects: create a new Client and PostgresStore, or pass a Pool, which replaces dropped connections`,
      { retryable: false, code: "STORE_ERROR", cause: error },
    );
  // The store's work on this connection, one thing at a time (see the module comment).
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <R>(work: () => Promise<R>): Promise<R> => {
    const guarded = async () => {
      if (ended) throw gone();
      try {
        return await work();
      } catch (error) {
        // The failure that killed the connection comes before 'end' does. A COMMIT of unknown
        // outcome killed it too, and says more than "gone" would.
        const unknownCommit = isCommitOutcomeUnknown(error);
        ended ||= unknownCommit || isConnectionLost(error);
        throw ended && !unknownCommit ? gone(error) : error;
      }
    };
    const run = queue.then(guarded, guarded);
    queue = run.catch(() => {});
    return run;
  };
  const query = (text: string, args: readonly unknown[]) =>
    exclusive((): Promise<Row[]> => (prepare ? runPrepared : runOn)(client, text, args));
  // The transaction's own handle: the same connection under another identity, so that `own`
  // tells the caller's autocommit use of the client (queued) from use inside the transaction.
  const inside = sameConnection(client);
  return {
    name,
    query,
    transaction: (fn) =>
      exclusive(() =>
        inTransaction(
          inside,
          fn,
          () => {},
          () => !ended,
        ),
      ),
    own: (target) => (target === client ? { query } : undefined),
    // One connection, which cannot come back once dropped: listen on it, no reconnection. While
    // it listens, the client's 'error' and 'end' go to onError: a Client emitting 'error' with no
    // handler ends the process.
    async listen(channel, onNotify, onError) {
      const events = client as PgClientLike & {
        on(event: string, listener: (arg: never) => void): unknown;
        off(event: string, listener: (arg: never) => void): unknown;
      };
      const listener = (message: { channel: string }) => {
        if (message.channel === channel) onNotify();
      };
      let reported = false;
      const failed = (error?: Error) => {
        if (reported) return;
        reported = true;
        onError(gone(error));
      };
      const ended = () => failed();
      events.on("notification", listener);
      events.on("error", failed);
      events.on("end", ended);
      await exclusive(() => runOn(client, `LISTEN ${quotedChannel(channel)}`, [])).catch((error: unknown) => {
        events.off("notification", listener);
        events.off("error", failed);
        events.off("end", ended);
        throw error;
      });
      return async () => {
        events.off("notification", listener);
        events.off("error", failed);
        events.off("end", ended);
        await exclusive(() => runOn(client, `UNLISTEN ${quotedChannel(channel)}`, [])).catch(() => {});
      };
    },
  };
}
