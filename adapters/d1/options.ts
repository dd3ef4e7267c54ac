/**
 * Options of the D1 store and their validation.
 *
 * @module
 */
import { ValidationError } from "../../mod.ts";
import { checkRetention, type RetentionOptions } from "../sql/retention.ts";
import { checkTableName } from "../sqlite/schema.ts";
import type { D1Database, D1PreparedStatement } from "./binding.ts";

export type { RetentionOptions };

/**
 * What `addMessage` writes into: an array of statements the caller then runs with
 * `db.batch(stmts)` (its own writes and the message, all or nothing), or a D1 binding (the
 * message alone, at once).
 */
export type D1Tx = D1PreparedStatement[] | D1Database;

/** Options of {@link D1Store}. */
export interface D1StoreOptions {
  /**
   * The outbox table: a plain identifier (letters, digits, `_`; at most 63 characters; not
   * `sqlite_*`). Default `"outbox_messages"`. Several outboxes may share a database under
   * different names.
   */
  table?: string;
  /** Delivered rows: deleted at once (default) or kept for a while. See {@link RetentionOptions}. */
  retention?: RetentionOptions;
}

/** Options with defaults filled in, checked. */
export interface ResolvedD1Options {
  table: string;
  /** Milliseconds sent rows are kept; undefined when they are deleted at once. */
  keepFor: number | undefined;
}

/** Checks `options` and fills in defaults; throws a `ValidationError` (`INVALID_OPTIONS`). */
export function resolveD1Options(options: D1StoreOptions): ResolvedD1Options {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError(`options must be an object, got ${String(options)}`);
  }
  return {
    table: checkTableName(options.table ?? "outbox_messages"),
    keepFor: checkRetention(options.retention),
  };
}
