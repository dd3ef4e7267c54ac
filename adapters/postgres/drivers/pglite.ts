/**
 * PGlite (`@electric-sql/pglite`): PostgreSQL compiled to WebAssembly, in this process. One
 * connection; `db.transaction(tx => ...)` holds it exclusively (statements from outside wait),
 * so a store's claim never runs inside a caller's transaction.
 *
 * @module
 */
import { type Driver, type PgliteQueryable, runOn } from "../driver.ts";

/** The part of a PGlite instance the driver uses. */
export interface PgliteLike extends PgliteQueryable {
  transaction<R>(fn: (tx: unknown) => Promise<R>): Promise<unknown>;
}

/** A PGlite instance (its transactions have no `transaction`). */
export function isPgliteDb(value: unknown): value is PgliteLike {
  const v = value as Record<string, unknown> | null;
  return (
    typeof v === "object" &&
    v !== null &&
    typeof v.query === "function" &&
    typeof v.exec === "function" &&
    typeof v.transaction === "function"
  );
}

/** The driver of a PGlite instance. */
export function pgliteDriver(db: PgliteLike): Driver {
  return {
    name: "PGlite",
    query: (text, args) => runOn(db, text, args),
    transaction: <R>(fn: (tx: unknown) => Promise<R>) => db.transaction((tx) => fn(tx)) as Promise<R>,
  };
}
