/**
 * `LibsqlStore.migrate()`: creating a table at the current schema version or upgrading an
 * older one, and reading the table's id namespace. Every failure comes out as an
 * `OutboxError` (a `StoreError`), never as a raw libSQL error.
 *
 * @module
 */
import type { InStatement, ResultSet, Transaction } from "@libsql/client";
import { newIdNamespace, OutboxError, StoreError } from "../../mod.ts";
import { checkOwnRows, checkShape, needsMigrate, upToDate } from "../sqlite/migrate-checks.ts";
import { type IdSpace, toNumber, versionOf } from "../sqlite/rows.ts";
import {
  ADD_LEGACY_COLUMN,
  ADD_NAMESPACE_COLUMN,
  BYTES_SURVIVE_CONCAT,
  CREATE_SCHEMA_TABLE,
  currentSchema,
  HAS_SEQUENCE_TABLE,
  NAMESPACED_SINCE,
  oldIndexesOf,
  ownObjects,
  PROBE_LEGACY_COLUMN,
  PROBE_NAMESPACE_COLUMN,
  READ_VERSION,
  RENEW_NAMESPACE,
  recordLegacyMax,
  SCHEMA_VERSION,
  tableColumns,
  WRITE_VERSION,
} from "../sqlite/schema.ts";
import { toStoreError } from "./errors.ts";
import type { Runner } from "./runner.ts";

type InTransaction = <R>(fn: (tx: Transaction) => Promise<R>) => Promise<R>;

/**
 * Brings `table` to {@link SCHEMA_VERSION} and returns its id space. Safe to run again and
 * from several processes at once: the work happens under the write lock (`inTransaction`), where
 * each migrator sees what the one before it left.
 */
export async function migrateTable(
  run: Runner,
  inTransaction: InTransaction,
  table: string,
): Promise<IdSpace> {
  try {
    await checkEncoding(run);
    await run.script("creating the schema table", CREATE_SCHEMA_TABLE);
    const probes = [PROBE_NAMESPACE_COLUMN, PROBE_LEGACY_COLUMN];
    let complete = true;
    for (const probe of probes)
      complete &&= await hasColumn(() => run.read("reading the schema table", probe));
    if (!complete) {
      // Version 1's version table: the columns, once (a concurrent migrator may have added them).
      await inTransaction(async (tx) => {
        if (!(await hasColumn(() => tx.execute(PROBE_NAMESPACE_COLUMN))))
          await tx.execute(ADD_NAMESPACE_COLUMN);
        if (!(await hasColumn(() => tx.execute(PROBE_LEGACY_COLUMN)))) await tx.execute(ADD_LEGACY_COLUMN);
      });
    }
    // Up to date (the usual start-up): done without taking the write lock. Up to date means
    // the version row says so AND no older version's index is left on the table, which a
    // version-2 D1 migrator racing a version-3 one leaves (see `../d1/migrate.ts`; the database
    // may have moved here) and a hand edit may: every insert would keep paying for them. Here
    // a version-2 migrator coming second refuses (it reads the version under the write lock).
    const known = upToDate(table, await run.read("reading the schema version", versionQuery(table)));
    if (
      known !== undefined &&
      (await columnsOf(() => run.read("reading the table", tableColumns(table)))) &&
      (await run.read("reading the schema", oldIndexesOf(table))).rows.length === 0
    ) {
      return known;
    }
    return await inTransaction(async (tx) => {
      const before = await tx.execute(versionQuery(table));
      const again = upToDate(table, before);
      const columns = await columnsOf(() => tx.execute(tableColumns(table)));
      const leftovers = (await tx.execute(oldIndexesOf(table))).rows;
      if (again !== undefined && columns !== undefined && leftovers.length === 0) return again;
      checkShape(table, columns);
      // From version 1 or 2 (or a table whose version row went missing): older versions'
      // indexes go, if they are on this table; the table, created only if missing, keeps its
      // columns and rows (no version changed a column), and gets the state index.
      for (const row of leftovers) await tx.execute(`DROP INDEX "${String(row.name)}"`);
      for (const sql of currentSchema(table)) await tx.execute(sql);
      await checkOwnership(tx, table);
      await tx.execute({ sql: WRITE_VERSION, args: [table, SCHEMA_VERSION, newIdNamespace()] });
      const prior = versionOf(before);
      // The version row (of this version or an older namespaced one) outlived its table:
      // dropped by hand, made again here, its row ids start over at 1 (see RENEW_NAMESPACE).
      if (columns === undefined && prior.version >= NAMESPACED_SINCE && prior.namespace !== null)
        await tx.execute({ sql: RENEW_NAMESPACE, args: [table, newIdNamespace(), prior.namespace] });
      else if (columns !== undefined && prior.version < NAMESPACED_SINCE) {
        // A table from before version 2: its rows keep the bare ids receivers saw.
        const sequence = toNumber((await tx.execute(HAS_SEQUENCE_TABLE)).rows[0]?.found) > 0;
        await tx.execute({ sql: recordLegacyMax(table, sequence), args: [table] });
      }
      const written = upToDate(table, await tx.execute(versionQuery(table)));
      if (written === undefined)
        throw new StoreError(`migrating table "${table}" recorded no version`, { retryable: false });
      return written;
    });
  } catch (error) {
    throw migrationError(error, table);
  }
}

/**
 * The id space of a table migrated to the current version, for a store that did not migrate
 * it itself (another process ran `migrate()`). A `StoreError` when the table needs `migrate()`.
 */
export async function readNamespace(run: Runner, table: string): Promise<IdSpace> {
  let result: ResultSet;
  try {
    result = await run.read("reading the id namespace", versionQuery(table));
  } catch (error) {
    // A version table from version 1 has no namespace column yet.
    if (error instanceof OutboxError && /no such (column|table)/i.test(error.message))
      throw needsMigrate(table);
    throw error;
  }
  const namespace = upToDate(table, result);
  if (namespace === undefined) throw needsMigrate(table);
  return namespace;
}

function versionQuery(table: string): InStatement {
  return { sql: READ_VERSION, args: [table] };
}

async function checkEncoding(run: Runner): Promise<void> {
  const result = await run.read("checking the text encoding", BYTES_SURVIVE_CONCAT);
  if (toNumber(result.rows[0]?.kept) !== 1) {
    throw new StoreError(
      "the database's text encoding is UTF-16; edge-outbox needs UTF-8, SQLite's default (a new database file starts with it)",
      { retryable: false },
    );
  }
}

/** False when `probe` fails "no such column". */
async function hasColumn(probe: () => Promise<unknown>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch (error) {
    if (/no such column/i.test(error instanceof Error ? error.message : String(error))) return false;
    throw error;
  }
}

/** The table's column names, or undefined when there is no such table. */
async function columnsOf(select: () => Promise<ResultSet>): Promise<string[] | undefined> {
  try {
    return (await select()).columns;
  } catch (error) {
    if (/no such table/i.test(error instanceof Error ? error.message : String(error))) return undefined;
    throw error;
  }
}

/** `CREATE INDEX IF NOT EXISTS` keeps an index of the same name on another table: refuse that. */
async function checkOwnership(tx: Transaction, table: string): Promise<void> {
  checkOwnRows(table, (await tx.execute(ownObjects(table))).rows);
}

function migrationError(error: unknown, table: string): OutboxError {
  if (error instanceof OutboxError) return error;
  const stored = toStoreError(error, `migrating table "${table}"`);
  if (!/already (exists|a table|an index|a view)|there is already/i.test(stored.message)) return stored;
  return new StoreError(
    `${stored.message}; a name the outbox table "${table}" needs is taken by another object in this database: rename that object or choose another outbox table name`,
    { retryable: false, cause: error },
  );
}
