/**
 * The parts of Cloudflare's D1 binding the store uses, declared structurally so that a real
 * `env.DB` (typed by `@cloudflare/workers-types` or not) fits without this package depending on
 * those types.
 *
 * @module
 */
import { ValidationError } from "../../mod.ts";

/** What a D1 statement reports about its run; the store reads `changes`. */
export interface D1Meta {
  /** Rows the statement changed. */
  changes: number;
}

/** The result of one D1 statement: its rows (empty for writes without `RETURNING`) and `meta`. */
export interface D1Result<T = Record<string, unknown>> {
  results: T[];
  meta: D1Meta;
}

/** A D1 prepared statement (`db.prepare(sql).bind(...values)`). */
export interface D1PreparedStatement {
  bind(...values: unknown[]): D1PreparedStatement;
  all<T = Record<string, unknown>>(): Promise<D1Result<T>>;
  run<T = Record<string, unknown>>(): Promise<D1Result<T>>;
}

/**
 * A D1 database binding (`env.DB`): the store uses `prepare` and `batch` (every statement of a
 * batch runs in one implicit transaction: all or nothing).
 */
export interface D1Database {
  prepare(query: string): D1PreparedStatement;
  batch<T = Record<string, unknown>>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]>;
}

/**
 * A property no D1 binding has. An RPC stub (a Service binding, a Durable Object stub) answers
 * every property name with a callable method stub, so it would pass for a database on
 * `prepare` and `batch` alone; reading a property of a stub calls nothing remotely.
 */
const NO_SUCH_METHOD = "edgeOutboxNoSuchMethod";

/** Whether `value` is an RPC stub: it has a method of every name, even {@link NO_SUCH_METHOD}. */
function isRpcStub(value: object): boolean {
  return typeof (value as Record<string, unknown>)[NO_SUCH_METHOD] === "function";
}

/**
 * Whether `value` looks like a D1 binding: `prepare` and `batch` functions, and not an RPC
 * stub (a Service binding or Durable Object stub, which has a method of every name).
 */
export function isD1Database(value: unknown): value is D1Database {
  const db = value as Partial<D1Database> | null | undefined;
  return typeof db?.prepare === "function" && typeof db.batch === "function" && !isRpcStub(db);
}

/** `db` if it is a D1 binding; a `ValidationError` (code `INVALID_OPTIONS`) otherwise. */
export function checkD1Database(db: unknown): D1Database {
  if (typeof db === "object" && db !== null && isRpcStub(db)) {
    throw new ValidationError(
      "db must be a D1 database binding (such as env.DB), got an RPC stub (a Service binding or a Durable Object stub answers every method name); check the binding's name in wrangler.toml",
    );
  }
  if (!isD1Database(db)) {
    throw new ValidationError(
      `db must be a D1 database binding (an object with prepare() and batch(), such as env.DB), got ${db === null ? "null" : typeof db}`,
    );
  }
  return db;
}
