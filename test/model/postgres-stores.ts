/**
 * PostgresStore for the model-based tests: one database per test file (PGlite, or the server's
 * through a pg Pool), a fresh table per run, dropped when the run closes its store.
 */
import type { PGlite } from "@electric-sql/pglite";
import type pg from "pg";
import { PostgresStore } from "../../adapters/postgres.ts";
import { freshTable } from "../postgres/helpers.ts";
import type { ModelStoreFactory } from "./store-run.ts";

/** The databases the model runs on: PGlite, or a pg Pool on the server. */
type Database = PGlite | pg.Pool;

/** Runs one statement on `db` (the two clients' `query` signatures do not unify). */
function run(db: Database, text: string): Promise<unknown> {
  return "waitReady" in db ? db.query(text) : db.query(text);
}

/** A factory of fresh PostgresStores on the database `db()` returns (opened by the caller). */
export function postgresStore(db: () => Database): ModelStoreFactory {
  return async ({ keepSent }) => {
    const database = db();
    const table = freshTable();
    const store = new PostgresStore(database, {
      table,
      ...(keepSent ? { retention: { sent: "keep" as const, keepFor: 3_600_000 } } : {}),
    });
    await store.migrate();
    return {
      store,
      purgeSent: keepSent ? (olderThan) => store.purgeSent(olderThan) : undefined,
      // The table only: the schema-version row is the store's business and harmless to keep.
      close: async () => {
        await run(database, `DROP TABLE IF EXISTS "${table}"`);
      },
    };
  };
}
