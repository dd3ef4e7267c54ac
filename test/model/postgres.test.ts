/**
 * The model-based tests of PostgresStore: on PGlite always, and on the server named by
 * `EDGE_OUTBOX_PG_URL` through a pg Pool when it is set (an unreachable server fails them).
 * Both run in process: no native driver can abort it. PostgreSQL text cannot hold NUL, so the
 * store refuses it in keys and headers and keeps it as U+FFFD in error texts (`refusesNul`);
 * leases are on the database's clock: the server's is its own (`ownClock`: relays whose clocks
 * run off are tried too), while PGlite's SQL clock IS this process's `Date.now` (Emscripten's
 * clock), so a relay with a skewed clock skews PGlite's too: that variant cannot apply to it.
 */
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { afterAll, beforeAll, vi } from "vitest";
import { PG_URL, serverDatabase } from "../postgres/helpers.ts";
import { runStoreModel } from "./harness.ts";
import { postgresStore } from "./postgres-stores.ts";

// Starting PGlite (and creating the server database) takes long on a loaded machine.
vi.setConfig({ hookTimeout: 120_000 });

let lite: PGlite | undefined;
beforeAll(async () => {
  lite = new PGlite();
  await lite.waitReady;
});
afterAll(async () => {
  await lite?.close();
});

// PGlite runs its database in WebAssembly on this thread: slower per run than a server, so
// it gets 60% of a store's usual time (its runs are counted and printed all the same).
runStoreModel(
  "PostgresStore (PGlite)",
  postgresStore(() => lite!),
  "test/model/postgres.test.ts",
  {},
  { ownClock: false, refusesNul: true, shareScale: 0.6 },
);

if (PG_URL !== undefined) {
  const url = serverDatabase("model");
  let pool: pg.Pool | undefined;
  afterAll(async () => {
    await pool?.end();
  });
  runStoreModel(
    "PostgresStore (server, pg Pool)",
    postgresStore(() => {
      if (pool === undefined) {
        pool = new pg.Pool({ connectionString: url(), max: 4, connectionTimeoutMillis: 5000 });
        // An idle connection the server ends must not take the test process down.
        pool.on("error", () => {});
      }
      return pool;
    }),
    "test/model/postgres.test.ts",
    {},
    { ownClock: true, refusesNul: true },
  );
}
