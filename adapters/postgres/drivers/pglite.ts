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
  listen?(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
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
    // In this process only; PGlite quotes a name given in double quotes as it is.
    async listen(channel, onNotify) {
      if (typeof db.listen !== "function") throw new TypeError("this PGlite cannot listen");
      let active = true;
      const unlisten = await db.listen(`"${channel}"`, () => {
        if (active) onNotify();
      });
      return async () => {
        active = false;
        // PGlite 0.5's unlisten never resolves (measured): start it, never wait for it.
        unlisten().catch(() => {});
      };
    },
  };
}
