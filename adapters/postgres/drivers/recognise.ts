/**
 * Picks the driver for the client given to `PostgresStore`, by shape.
 *
 * @module
 */
import { ValidationError } from "../../../mod.ts";
import { type Driver, isNeonHttp, NEON_HTTP_REFUSED } from "../driver.ts";
import { isPgClient, isPgPool, pgClientDriver, pgPoolDriver } from "./pg.ts";
import { isPgliteDb, pgliteDriver } from "./pglite.ts";
import { isPostgresJsSql, postgresJsDriver } from "./postgres-js.ts";

/**
 * The driver for `db` (`prepare`: node-postgres and Neon run the store's statements as named
 * prepared statements): a postgres.js `sql`, a PGlite instance, a node-postgres or Neon `Pool`,
 * or a node-postgres or Neon `Client`. Anything else (a transaction, a connection string, an
 * HTTP-only `neon()` query function) is a `ValidationError` (code `INVALID_OPTIONS`).
 */
export function driverFor(db: unknown, prepare = true): Driver {
  if (isNeonHttp(db)) throw new ValidationError(NEON_HTTP_REFUSED);
  if (isPostgresJsSql(db)) return postgresJsDriver(db);
  if (isPgliteDb(db)) return pgliteDriver(db);
  if (isPgPool(db)) return pgPoolDriver(db, `${vendor(db)} Pool`, prepare);
  if (isPgClient(db)) return pgClientDriver(db, `${vendor(db)} Client`, prepare);
  throw new ValidationError(
    `db must be a node-postgres Pool or Client, a postgres.js sql, a PGlite instance, or a Neon Pool or Client, got ${describe(db)}`,
  );
}

/**
 * Whose pg-API client `db` is, for messages ("the node-postgres Client's connection has
 * ended"): Neon's classes are `NeonPool`/`NeonClient`, node-postgres's `BoundPool`/`Client`.
 */
function vendor(db: object): string {
  return constructorName(db)?.startsWith("Neon") ? "Neon" : "node-postgres";
}

function constructorName(value: object): string | undefined {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name !== "" ? name : undefined;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return "a string (pass a client, not a connection string)";
  if (typeof value === "function") return "a function without unsafe() and begin() (not a postgres.js sql)";
  if (typeof value === "object") return `an object (${constructorName(value) ?? "Object"}) of another shape`;
  return typeof value;
}
