/**
 * The checks of a migration that every SQLite driver makes (libSQL, D1): the version row
 * read, the shape of an existing table, and who owns the names of the store's indexes.
 *
 * @module
 */
import { checkIdNamespace, StoreError } from "../../mod.ts";
import { type IdSpace, type ResultSet, type Row, versionOf } from "./rows.ts";
import { OUTBOX_COLUMNS, SCHEMA_TABLE, SCHEMA_VERSION } from "./schema.ts";

/** The error of a store used on a table that needs `migrate()` first. */
export function needsMigrate(table: string): StoreError {
  return new StoreError(
    `table "${table}" is not migrated to schema version ${SCHEMA_VERSION} (its version row is missing or older); run \`await store.migrate()\` once (it upgrades older tables in place)`,
    { retryable: false },
  );
}

/** The id space when the table is at this code's version (undefined if older); throws when it is newer. */
export function upToDate(table: string, result: ResultSet): IdSpace | undefined {
  const { version, namespace, legacyMax } = versionOf(result);
  if (version > SCHEMA_VERSION) {
    throw new StoreError(
      `table "${table}" has schema version ${version}, newer than this edge-outbox supports (${SCHEMA_VERSION}); upgrade edge-outbox`,
      { retryable: false },
    );
  }
  if (version < SCHEMA_VERSION) return undefined;
  try {
    return { namespace: checkIdNamespace(namespace), legacyMax };
  } catch (error) {
    throw new StoreError(
      `table "${table}" has a damaged id namespace in ${SCHEMA_TABLE} (${JSON.stringify(namespace)}); restore it: the ids receivers deduplicate on depend on it`,
      { retryable: false, cause: error },
    );
  }
}

/** An existing table of that name must be an outbox table, not an application's. */
export function checkShape(table: string, names: readonly string[] | undefined): void {
  if (names === undefined) return;
  const columns = new Set(names.map((name) => name.toLowerCase()));
  const missing = OUTBOX_COLUMNS.filter((c) => !columns.has(c));
  if (missing.length > 0) {
    throw new StoreError(
      `table "${table}" already exists and is not an edge-outbox table (it lacks ${missing.join(", ")}); choose another outbox table name`,
      { retryable: false },
    );
  }
}

/** The rows of `ownObjects(table)` must all be indexes on `table`; a `StoreError` otherwise. */
export function checkOwnRows(table: string, rows: readonly Row[]): void {
  for (const row of rows) {
    if (row.type !== "index" || String(row.tbl_name).toLowerCase() !== table.toLowerCase()) {
      throw new StoreError(
        `the name "${String(row.name)}" that the outbox table "${table}" needs for its index is taken by the ${String(row.type)} on "${String(row.tbl_name)}"; rename that object or choose another outbox table name`,
        { retryable: false },
      );
    }
  }
}
