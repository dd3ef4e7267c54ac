/**
 * postgres.js (`postgres`): `sql.unsafe(text, args)` for one statement, `sql.begin(tx => ...)`
 * for a transaction (postgres.js reserves one connection for it and commits or rolls back).
 *
 * @module
 */
import { type Driver, type PostgresJsQueryable, runOn } from "../driver.ts";
import { commitOutcomeUnknown, isRefusal } from "../errors.ts";

/** The part of a postgres.js `sql` the driver uses. */
export interface PostgresJsLike extends PostgresJsQueryable {
  begin<R>(fn: (tx: unknown) => Promise<R>): Promise<unknown>;
  listen?(
    channel: string,
    fn: (payload: string) => void,
    onlisten?: () => void,
  ): Promise<{ unlisten(): Promise<void> }>;
}

/** A postgres.js `sql` (a transaction's `tx` has no `begin`: it cannot start another). */
export function isPostgresJsSql(value: unknown): value is PostgresJsLike {
  return (
    typeof value === "function" &&
    typeof (value as unknown as Record<string, unknown>).unsafe === "function" &&
    typeof (value as unknown as Record<string, unknown>).begin === "function"
  );
}

/** The driver of a postgres.js `sql`. */
export function postgresJsDriver(sql: PostgresJsLike): Driver {
  return {
    name: "postgres.js sql",
    query: (text, args) => runOn(sql, text, args),
    // begin resolves with fn's result: errors from BEGIN/COMMIT are the driver's, mapped by the store.
    async transaction<R>(fn: (tx: unknown) => Promise<R>): Promise<R> {
      let finished = false;
      try {
        return (await sql.begin(async (tx) => {
          const result = await fn(tx);
          finished = true;
          return result;
        })) as R;
      } catch (error) {
        // After `fn` only COMMIT is left: unless PostgreSQL refused it, its answer was lost and
        // it may have committed. (Also when `fn` caught and swallowed its connection's death:
        // postgres.js then throws that error again without sending COMMIT, which errs on the
        // safe side.) postgres.js rejects as soon as the connection closes, `fn` perhaps still
        // running; waiting for `fn` could hang for good on 3.4.9, whose statements on a dead
        // transaction never settle (README).
        if (finished && !isRefusal(error)) throw commitOutcomeUnknown(error);
        throw error;
      }
    },
    // postgres.js keeps one connection for its listeners and LISTENs again after reconnecting
    // (calling onlisten each time); a wake then covers what was missed while it was down.
    async listen(channel, onNotify) {
      if (typeof sql.listen !== "function") throw new TypeError("this postgres.js sql cannot listen");
      let first = true;
      const { unlisten } = await sql.listen(channel, onNotify, () => {
        if (!first) onNotify();
        first = false;
      });
      return unlisten;
    },
  };
}
