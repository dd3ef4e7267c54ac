/**
 * Options of the libSQL store and their validation.
 *
 * @module
 */
import type { Client, InStatement, Transaction } from "@libsql/client";
import { ValidationError } from "../../mod.ts";
import { checkMs, checkRetention, type RetentionOptions } from "../sql/retention.ts";

export type { RetentionOptions };

import { checkTableName } from "../sqlite/schema.ts";

/**
 * What `addMessage` writes into: a `Transaction` from `client.transaction("write")`, a `Client`
 * (autocommit), or an array of statements the caller passes to `client.batch(stmts, "write")`.
 */
export type LibsqlTx = Transaction | Client | InStatement[];

/** Options of {@link LibsqlStore}. */
export interface LibsqlStoreOptions {
  /**
   * The outbox table: a plain identifier (letters, digits, `_`; at most 63 characters; not
   * `sqlite_*`). Default `"outbox_messages"`. Several outboxes may share a database under
   * different names.
   */
  table?: string;
  /** Delivered rows: deleted at once (default) or kept for a while. See {@link RetentionOptions}. */
  retention?: RetentionOptions;
  /**
   * How long (ms) a statement of the store keeps retrying while another connection holds the
   * write lock before failing with a retryable `StoreError` (code `STORE_BUSY`). Default 5000.
   * The wait is asynchronous (the store retries the statement), never SQLite's `busy_timeout`:
   * the native driver is synchronous, so a busy handler would freeze the event loop, and with
   * it a transaction of the same process that holds the lock (a deadlock until the timeout).
   */
  busyTimeout?: number;
  /**
   * On local `file:` databases, switch to `PRAGMA journal_mode=WAL` on first use (readers never
   * block the writer; the mode is stored in the file). Default true.
   */
  wal?: boolean;
}

/** Options with defaults filled in, checked. */
export interface ResolvedStoreOptions {
  table: string;
  /** Milliseconds sent rows are kept; undefined when they are deleted at once. */
  keepFor: number | undefined;
  busyTimeout: number;
  wal: boolean;
}

/** Checks `options` and fills in defaults; throws a `ValidationError` (`INVALID_OPTIONS`). */
export function resolveStoreOptions(options: LibsqlStoreOptions): ResolvedStoreOptions {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError(`options must be an object, got ${String(options)}`);
  }
  if (options.wal !== undefined && typeof options.wal !== "boolean") {
    throw new ValidationError(`wal must be a boolean, got ${String(options.wal)}`);
  }
  return {
    table: checkTableName(options.table ?? "outbox_messages"),
    keepFor: checkRetention(options.retention),
    busyTimeout: checkMs("busyTimeout", options.busyTimeout ?? 5000),
    wal: options.wal ?? true,
  };
}
