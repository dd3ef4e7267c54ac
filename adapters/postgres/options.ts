/**
 * Options of the PostgreSQL store and their validation: identifiers, retention, wake-ups.
 *
 * @module
 */
import { ValidationError } from "../../mod.ts";
import { checkRetention, type RetentionOptions } from "../sql/retention.ts";

export type { RetentionOptions };

/** Name of the table in which the store records its schema version and id namespace. */
export const SCHEMA_TABLE = "edge_outbox_schema";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Options of `PostgresStore`. */
export interface PostgresStoreOptions {
  /**
   * The outbox table: a plain identifier (a letter or `_`, then letters, digits or `_`; at most
   * 63 characters; not `edge_outbox_schema`). Always quoted, so case matters: `"Outbox"` and
   * `"outbox"` are two tables. Default `"outbox_messages"`.
   */
  table?: string;
  /**
   * The schema that holds the table and the store's version table; `migrate()` creates it if
   * missing. Same rules as `table`, and not `pg_*` (reserved by PostgreSQL). Default `"public"`.
   */
  schema?: string;
  /** Delivered rows: deleted at once (default) or kept for a while. See {@link RetentionOptions}. */
  retention?: RetentionOptions;
  /**
   * When true, `addMessage` also sends a `NOTIFY` on {@link PostgresStore.channel} (in the same
   * statement, so it is delivered when the caller's transaction commits and never if it rolls
   * back), and relays that `listen()` wake at once instead of waiting for their period.
   * Default false: a NOTIFY takes a database-wide lock at commit, which costs busy writers.
   */
  notify?: boolean;
  /**
   * node-postgres and Neon: run the store's statements (claims, marks, stats, and the INSERT
   * `addMessage` runs in your transaction) as named prepared statements, planned once per
   * connection. Default true. At most 64 distinct statements per process are prepared (the
   * others run unnamed), so each connection holds a bounded number whatever the tables and
   * schemas. When the server drops them (`DISCARD ALL`, `DEALLOCATE ALL`), the store notices:
   * its own statements run again; an `addMessage` in your transaction fails once with a
   * retryable `StoreError` (the transaction is aborted) and the next transaction works. Set
   * false behind a pooler in transaction mode that cannot carry prepared statements across
   * connections (PgBouncer before 1.21, or without `max_prepared_statements`) or that resets
   * sessions with `DISCARD ALL` between clients, and with many tables or schemas per process
   * (a table per tenant), as postgres.js's own `prepare: false`. postgres.js and PGlite keep
   * their own behaviour.
   */
  prepare?: boolean;
}

/** Options with defaults filled in, checked. */
export interface ResolvedStoreOptions {
  schema: string;
  table: string;
  /** Milliseconds sent rows are kept; undefined when they are deleted at once. */
  keepFor: number | undefined;
  notify: boolean;
  prepare: boolean;
}

/**
 * Returns `name` if it is a plain identifier the store may create and quote; throws a
 * `ValidationError` (code `INVALID_OPTIONS`) naming `what` for anything else.
 */
export function checkIdentifier(what: "table" | "schema", name: unknown): string {
  if (typeof name !== "string" || !IDENTIFIER.test(name)) {
    throw new ValidationError(
      `${what} must be a plain SQL identifier (a letter or _, then up to 62 letters, digits or _), got ${JSON.stringify(name)}`,
    );
  }
  if (what === "schema" && name.toLowerCase().startsWith("pg_")) {
    throw new ValidationError(`schema must not start with "pg_" (reserved by PostgreSQL), got "${name}"`);
  }
  if (what === "table" && name === SCHEMA_TABLE) {
    throw new ValidationError(`table must not be "${SCHEMA_TABLE}" (the store's version table)`);
  }
  return name;
}

/** Checks `options` and fills in defaults; throws a `ValidationError` (`INVALID_OPTIONS`). */
export function resolveStoreOptions(options: PostgresStoreOptions): ResolvedStoreOptions {
  if (typeof options !== "object" || options === null) {
    throw new ValidationError(`options must be an object, got ${String(options)}`);
  }
  if (options.notify !== undefined && typeof options.notify !== "boolean") {
    throw new ValidationError(`notify must be a boolean, got ${String(options.notify)}`);
  }
  if (options.prepare !== undefined && typeof options.prepare !== "boolean") {
    throw new ValidationError(`prepare must be a boolean, got ${String(options.prepare)}`);
  }
  return {
    schema: checkIdentifier("schema", options.schema ?? "public"),
    table: checkIdentifier("table", options.table ?? "outbox_messages"),
    keepFor: checkRetention(options.retention),
    notify: options.notify ?? false,
    prepare: options.prepare ?? true,
  };
}

/**
 * The NOTIFY channel of an outbox: `edge_outbox:<schema>.<table>`, or, when that exceeds the 63
 * bytes PostgreSQL allows a channel name, its first 40 characters and a hash of the whole (FNV-1a)
 * so that two long names stay apart. Identifiers are ASCII, so characters are bytes.
 */
export function notifyChannel(schema: string, table: string): string {
  const full = `edge_outbox:${schema}.${table}`;
  return full.length <= 63 ? full : `${full.slice(0, 40)}~${shortHash(full)}`;
}

/** 8 hex digits of FNV-1a over `text`: tells apart names cut to PostgreSQL's 63 bytes. */
export function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash.toString(16).padStart(8, "0");
}
