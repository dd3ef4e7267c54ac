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

/** Whether `value` looks like a D1 binding (`prepare` and `batch` functions). */
export function isD1Database(value: unknown): value is D1Database {
  const db = value as Partial<D1Database> | null | undefined;
  return typeof db?.prepare === "function" && typeof db.batch === "function";
}

/** `db` if it is a D1 binding; a `ValidationError` (code `INVALID_OPTIONS`) otherwise. */
export function checkD1Database(db: unknown): D1Database {
  if (!isD1Database(db)) {
    throw new ValidationError(
      `db must be a D1 database binding (an object with prepare() and batch(), such as env.DB), got ${db === null ? "null" : typeof db}`,
    );
  }
  return db;
}
