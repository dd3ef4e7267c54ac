/**
 * The store's view of a PostgreSQL client: run one statement, run a transaction, listen. One
 * small driver per client (node-postgres and Neon's pg-compatible `Pool`/`Client`, postgres.js,
 * PGlite), recognised by shape, so that no driver is imported, let alone required.
 *
 * @module
 */
import { ValidationError } from "../../mod.ts";
import { runPrepared } from "./prepared.ts";
import type { Row } from "./rows.ts";

/** Something that runs one statement: rows come back as arrays, by position. */
export interface Queryable {
  query(text: string, args: readonly unknown[]): Promise<Row[]>;
}

/** A client as the store uses it. Errors are the driver's own; the store maps them. */
export interface Driver extends Queryable {
  /** Which client this is, for messages. */
  readonly name: string;
  /**
   * Runs `fn` in a transaction on one connection, handing it the driver's own transaction
   * object (what `addMessage` accepts): commit when it resolves, roll back when it throws.
   * `BEGIN`/`COMMIT` failures are thrown as `StoreError`s, `fn`'s own errors as they are.
   */
  transaction<R>(fn: (tx: unknown) => Promise<R>): Promise<R>;
  /**
   * The store's own way to run statements on `target` when `target` is the connection this
   * driver queues its work on (a single `pg.Client`), so that an autocommit `addMessage(client)`
   * waits for a transaction of the store on that connection instead of landing inside it;
   * undefined for anything else.
   */
  own?(target: unknown): Queryable | undefined;
  /**
   * Listens on `channel` until the returned function is called, calling `onNotify` for every
   * notification; when the listening connection drops, it reports the error to `onError` and
   * listens again. Absent when the client cannot listen (Neon over HTTP, say).
   */
  listen?(
    channel: string,
    onNotify: () => void,
    onError: (error: unknown) => void,
  ): Promise<() => Promise<void>>;
}

/** Whether `value[name]` is a function (for shape recognition). */
export function hasMethods(value: unknown, ...names: string[]): boolean {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) return false;
  return names.every((name) => typeof (value as Record<string, unknown>)[name] === "function");
}

/** A postgres.js `sql` or transaction `tx`: a tagged-template function with `unsafe`. */
export function isPostgresJs(value: unknown): value is PostgresJsQueryable {
  return typeof value === "function" && hasMethods(value, "unsafe") && !isNeonHttp(value);
}

/**
 * Neon's HTTP query function (`neon(url)` of `@neondatabase/serverless`): a tagged-template
 * function like postgres.js's `sql`, with `transaction` where postgres.js has `begin` (and
 * its `tx` has `savepoint`). Each call is an HTTP request of its own: it cannot take part in a
 * transaction that another statement opened, so it is refused wherever one is expected.
 */
export function isNeonHttp(value: unknown): boolean {
  return (
    typeof value === "function" &&
    hasMethods(value, "unsafe", "transaction") &&
    !hasMethods(value, "begin") &&
    !hasMethods(value, "savepoint")
  );
}

/** What to tell a user who passed `neon()`'s HTTP function. */
export const NEON_HTTP_REFUSED =
  "Neon's HTTP query function neon() cannot take part in a transaction (each call is a request of its own); use the Pool or Client of @neondatabase/serverless (WebSocket) and pass its PoolClient inside your transaction";

/** A PGlite instance or its transaction: `query(text, params, options)` and `exec`. */
export function isPglite(value: unknown): value is PgliteQueryable {
  return typeof value === "object" && hasMethods(value, "query", "exec");
}

/** node-postgres (or Neon's pg-compatible) `Pool`, `Client` or `PoolClient`. */
export function isPg(value: unknown): value is PgQueryable {
  return typeof value === "object" && hasMethods(value, "query");
}

/** The part of a postgres.js `sql`/`tx` the store uses. */
export interface PostgresJsQueryable {
  unsafe(text: string, args?: never[]): { values(): Promise<unknown[][]> };
}
/** The part of a PGlite instance/transaction the store uses. */
export interface PgliteQueryable {
  query(text: string, args?: unknown[], options?: { rowMode?: "array" }): Promise<{ rows: unknown[] }>;
  exec(text: string): Promise<unknown>;
}
/** The part of a node-postgres `Pool`/`Client`/`PoolClient` the store uses. */
export interface PgQueryable {
  query(config: { text: string; values?: unknown[]; rowMode?: "array"; name?: string }): Promise<{
    rows: unknown[];
    /** The command tag's verb (`COMMIT`, or `ROLLBACK` when a failed transaction ended). */
    command?: string;
  }>;
}

/** Runs a statement on any of the three shapes (the caller has recognised it). */
export function runOn(target: unknown, text: string, args: readonly unknown[]): Promise<Row[]> {
  if (isPostgresJs(target)) return target.unsafe(text, args as never[]).values();
  if (isPglite(target)) {
    return target.query(text, [...args], { rowMode: "array" }).then((r) => r.rows as Row[]);
  }
  return (target as PgQueryable)
    .query({ text, values: [...args], rowMode: "array" })
    .then((r) => r.rows as Row[]);
}

/**
 * The caller's transaction (or autocommit client) passed to `addMessage`, as a
 * {@link Queryable} (node-postgres and Neon: prepared when `prepare`); a `ValidationError`
 * (code `INVALID_MESSAGE`) for anything else.
 */
export function txQueryable(tx: unknown, prepare = false): Queryable {
  if (isNeonHttp(tx)) throw new ValidationError(NEON_HTTP_REFUSED, { code: "INVALID_MESSAGE" });
  if (!isPostgresJs(tx) && !isPglite(tx) && !isPg(tx)) {
    throw new ValidationError(
      "tx must be the driver's transaction or client: a node-postgres PoolClient/Client/Pool, a postgres.js sql or tx, a PGlite instance or tx, or a Neon Pool/Client",
      { code: "INVALID_MESSAGE" },
    );
  }
  if (prepare && !isPostgresJs(tx) && !isPglite(tx)) {
    return { query: (text, args) => runPrepared(tx as PgQueryable, text, args) };
  }
  return { query: (text, args) => runOn(tx, text, args) };
}
