/**
 * `D1Store.migrate()` and `D1Store.migrationSql()`: the schema of the shared SQLite dialect
 * (`../sqlite/schema.ts`, the very DDL LibsqlStore runs) applied through D1, which has no
 * interactive transactions. What to do is decided from reads, then done in ONE batch (D1 runs
 * a batch as one transaction, so a failed migration leaves nothing half-made). Concurrent
 * migrators are safe: every statement is idempotent (`IF NOT EXISTS`, a version row that keeps
 * the first namespace written, a renewal only of the namespace it read).
 *
 * @module
 */
import { newIdNamespace, OutboxError, StoreError } from "../../mod.ts";
import { checkOwnRows, checkShape, needsMigrate, upToDate } from "../sqlite/migrate-checks.ts";
import type { SqlStatement } from "../sqlite/pass.ts";
import { type IdSpace, type Row, toNumber, versionOf } from "../sqlite/rows.ts";
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
  READ_VERSION,
  RENEW_NAMESPACE,
  recordLegacyMax,
  SCHEMA_TABLE,
  SCHEMA_VERSION,
  v2IndexNames,
  WRITE_VERSION,
} from "../sqlite/schema.ts";
import type { D1Runner } from "./runner.ts";

const columnsQuery = (table: string): SqlStatement => ({
  sql: "SELECT name FROM pragma_table_info(?1)",
  args: [table],
});
/** The read of `table`'s version row, to run alone or inside a batch (see {@link spaceFrom}). */
export const versionQuery = (table: string): SqlStatement => ({ sql: READ_VERSION, args: [table] });

/** The id space in the rows of {@link versionQuery}; a `StoreError` when the table needs `migrate()`. */
export function spaceFrom(table: string, rows: readonly Row[]): IdSpace {
  const space = upToDate(table, { rows });
  if (space === undefined) throw needsMigrate(table);
  return space;
}

/**
 * A fresh id namespace drawn by SQLite itself (16 characters of the alphabet of `src/ids.ts`):
 * a migration file applied to several databases (staging, production) gives each its own.
 */
const SQL_NAMESPACE = `(SELECT group_concat(substr('0123456789abcdefghjkmnpqrstvwxyz', (random() & 31) + 1, 1), '')
  FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 16) SELECT i FROM n))`;

/**
 * The DDL of a new outbox table at the current schema version, as one SQL text for a file under
 * `migrations/` (`wrangler d1 migrations apply`): the same statements `migrate()` runs, plus
 * the version row with a namespace drawn in SQL. Idempotent. It also upgrades a table of
 * schema version 2 (made by an earlier `migrationSql` or `migrate()`) to this version: applied
 * as a new migration file, it drops version 2's indexes, makes the state index and records the
 * version, keeping every row, id and the namespace. It does not upgrade a table of schema
 * version 1 (only `migrate()` does: D1Store never made one): on a version table of version 1
 * (no `id_namespace` column) the file fails as a whole ("table edge_outbox_schema has no column
 * named id_namespace"), D1 rolls it back, and wrangler, which records only files that
 * succeeded, keeps it unapplied, blocking the migrations after it. Run `migrate()` first (version
 * 2's file fails the same way); the file then applies as on any table at this version.
 *
 * Applied again, it keeps the namespace of a table that has rows (their ids stay the same) and
 * draws a new one for a table with none. A table without rows is one that never had any, or
 * one made again after a drop (or emptied by hand): the store never deletes the row with the
 * highest id (see `sql.ts`), so a table that has handed out ids keeps at least that row. Its
 * next row ids start again at 1, so the old namespace (and an upgraded table's legacy bound)
 * must go, or new messages would get the ids of delivered ones.
 */
export function migrationSql(table: string): string {
  const s = SCHEMA_TABLE;
  const empty = `NOT EXISTS (SELECT 1 FROM "${table}")`;
  const version = `INSERT INTO ${s} (table_name, version, migrated_at, id_namespace)
VALUES ('${table}', ${SCHEMA_VERSION}, CAST(unixepoch('subsec') * 1000 AS INTEGER), ${SQL_NAMESPACE})
ON CONFLICT (table_name) DO UPDATE SET version = max(${s}.version, excluded.version),
  id_namespace = iif(${empty}, excluded.id_namespace, ${s}.id_namespace),
  legacy_max_id = iif(${empty}, NULL, ${s}.legacy_max_id),
  migrated_at = excluded.migrated_at
WHERE ${s}.version >= ${NAMESPACED_SINCE} AND (${s}.version < ${SCHEMA_VERSION} OR ${empty})`;
  const dropOld = v2IndexNames(table).map((name) => `DROP INDEX IF EXISTS "${name}"`);
  return `${[CREATE_SCHEMA_TABLE, ...dropOld, ...currentSchema(table), version].join(";\n\n")};\n`;
}

/** The column names of a table (none when it does not exist). */
async function _columnsOf(run: D1Runner, table: string): Promise<string[]> {
  return (await run.rows("reading the table's columns", columnsQuery(table))).map((row) => String(row.name));
}

/**
 * Brings `table` to {@link SCHEMA_VERSION} and returns its id space. See the module comment.
 * Two Workers upgrading a version table of schema version 1 at once both read it without the
 * new columns and both add them: the second batch fails "duplicate column name" (and rolls
 * back whole), so it reads again and continues from what the first one wrote.
 */
export async function migrateD1(run: D1Runner, table: string): Promise<IdSpace> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrateOnce(run, table);
    } catch (error) {
      if (attempt >= 3 || !/duplicate column name/i.test(String((error as Error)?.message))) throw error;
    }
  }
}

async function migrateOnce(run: D1Runner, table: string): Promise<IdSpace> {
  try {
    // Checked for LibsqlStore's sake (a moved database): D1 databases are always UTF-8.
    // Older versions' indexes on this table are read in the same batch (no extra round trip):
    // see below.
    const [encoding, schemaColumns, tableColumns, oldIndexes] = await run.batch("reading the schema", [
      BYTES_SURVIVE_CONCAT,
      columnsQuery(SCHEMA_TABLE),
      columnsQuery(table),
      oldIndexesOf(table),
    ]);
    if (toNumber(encoding?.results[0]?.kept) !== 1)
      throw new StoreError("the database's text encoding is not UTF-8", { retryable: false });
    const names = new Set((schemaColumns?.results ?? []).map((row) => String(row.name)));
    const columns = (tableColumns?.results ?? []).map((row) => String(row.name));
    const before = names.size > 0 && names.has("id_namespace") && names.has("legacy_max_id");
    const read = before ? await run.rows("reading the schema version", versionQuery(table)) : [];
    const known = upToDate(table, { rows: read });
    // Up to date means the version row says so AND no older version's index is left on the
    // table: a version-2 Worker migrating beside this one (a rolling deploy; D1 migrators decide
    // from reads and write later) may make its three partial indexes after this version's
    // batch, under a version row that stays 3, and every insert would keep paying for them.
    const leftovers = (oldIndexes?.results ?? []).map((row) => String(row.name));
    if (known !== undefined && columns.length > 0 && leftovers.length === 0) return known;
    checkShape(table, columns.length > 0 ? columns : undefined);
    // Objects named like the store's indexes must be its own (on this table) before any write.
    checkOwnRows(table, await run.rows("reading the schema", ownObjects(table)));
    const writes: (SqlStatement | string)[] = [CREATE_SCHEMA_TABLE];
    if (names.size > 0 && !names.has("id_namespace")) writes.push(ADD_NAMESPACE_COLUMN);
    if (names.size > 0 && !names.has("legacy_max_id")) writes.push(ADD_LEGACY_COLUMN);
    for (const name of leftovers) writes.push(`DROP INDEX IF EXISTS "${name}"`);
    writes.push(...currentSchema(table), {
      sql: WRITE_VERSION,
      args: [table, SCHEMA_VERSION, newIdNamespace()],
    });
    const prior = versionOf({ rows: read });
    if (columns.length === 0 && prior.version >= NAMESPACED_SINCE && prior.namespace !== null) {
      // The version row (of this version or an older namespaced one) outlived its table
      // (dropped by hand): the new table's row ids start again at 1, so they get a new
      // namespace (only if no concurrent migrator renewed it).
      writes.push({ sql: RENEW_NAMESPACE, args: [table, newIdNamespace(), prior.namespace] });
    } else if (columns.length > 0 && prior.version < NAMESPACED_SINCE) {
      // A table from before version 2 (made by LibsqlStore): its rows keep the bare ids receivers saw.
      const sequence = await run.rows("reading the schema", HAS_SEQUENCE_TABLE);
      writes.push({ sql: recordLegacyMax(table, toNumber(sequence[0]?.found) > 0), args: [table] });
    }
    await run.batch(`migrating table "${table}"`, writes);
    const written = upToDate(table, {
      rows: await run.rows("reading the schema version", versionQuery(table)),
    });
    if (written === undefined)
      throw new StoreError(`migrating table "${table}" recorded no version`, { retryable: false });
    return written;
  } catch (error) {
    if (error instanceof OutboxError) throw error;
    throw new StoreError(`D1 failed while migrating table "${table}": ${String(error)}`, {
      retryable: false,
      cause: error,
    });
  }
}

/**
 * The id space of a table migrated to the current version, for a store that did not migrate
 * it itself. A `StoreError` when the table needs `migrate()`.
 */
export async function readNamespaceD1(run: D1Runner, table: string): Promise<IdSpace> {
  let rows: Row[];
  try {
    rows = await run.rows("reading the id namespace", versionQuery(table));
  } catch (error) {
    if (error instanceof OutboxError && /no such (column|table)/i.test(error.message))
      throw needsMigrate(table);
    throw error;
  }
  return spaceFrom(table, rows);
}
