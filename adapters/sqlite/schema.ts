/**
 * The SQLite stores' schema as SQL text (LibsqlStore and D1Store share it, so a database moves
 * between them): table-name validation, the names of the store's own objects, the DDL of the
 * current version, the steps that upgrade older versions, and the version table. SQLite
 * dialect only, no driver calls.
 *
 * Schema versions:
 * - 1: the table with `AUTOINCREMENT`, indexes named `<table>_ready`, `_key`, `_dead`, `_sent`.
 * - 2: indexes named `edge_outbox_<table>_<purpose>` (see {@link indexName}); a random id
 *   namespace per table in the version table, and for a table upgraded from version 1 the
 *   highest id it had used (`legacy_max_id`: those rows keep their bare ids); new tables without `AUTOINCREMENT` (the store
 *   never deletes the row with the highest id instead, see `sql.ts`). The per-key index
 *   (`_key`) is not made by the migration but by the first claim with ordering "key" (see
 *   {@link keyIndex}); a table migrated before that keeps the one it has.
 * - 3: the same table; its three partial indexes (`_ready`, `_dead`, `_sent`) replaced by ONE
 *   index `_state` on `(status, ORDER_AT)` (see {@link ORDER_AT}), which every statement that
 *   picks rows by state reads. Every insert maintains every index: with two fewer, a raw INSERT
 *   into the store's table went from about 0.82-0.88x to about 0.96-0.99x of a minimal outbox
 *   table's in paired probes (issue 11; whether addMessage meets benchmark 2's 0.9x awaits a
 *   quiet-machine run). The per-key index is unchanged.
 *
 * @module
 */
import { ValidationError } from "../../mod.ts";

/** Name of the table in which the store records its schema version per outbox table. */
export const SCHEMA_TABLE = "edge_outbox_schema";

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = 3;

/**
 * The first version with id namespaces: a table upgraded from an older one (or whose version
 * row went missing) keeps its rows' bare ids (see {@link recordLegacyMax}); one upgraded from
 * this version or later already has its namespace and legacy bound, which stay as they are.
 */
export const NAMESPACED_SINCE = 2;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Returns `table` if it is a plain SQL identifier the store may create and quote; throws a
 * `ValidationError` (code `INVALID_OPTIONS`) for anything else, before any SQL runs.
 */
export function checkTableName(table: unknown): string {
  if (typeof table !== "string" || !IDENTIFIER.test(table)) {
    throw new ValidationError(
      `table must be a plain SQL identifier (a letter or _, then up to 62 letters, digits or _), got ${JSON.stringify(table)}`,
    );
  }
  if (table.toLowerCase().startsWith("sqlite_") || table.toLowerCase() === SCHEMA_TABLE) {
    throw new ValidationError(
      `table must not start with "sqlite_" (reserved by SQLite) nor be "${SCHEMA_TABLE}", got "${table}"`,
    );
  }
  return table;
}

/**
 * What each of the store's indexes serves; the last part of its name. Versions 1 and 2 also
 * used "ready", "dead" and "sent" (see {@link RETIRED_PURPOSES}).
 */
export const INDEX_PURPOSES = ["state", "key"] as const;
/** The purposes of version 2's indexes that version 3 replaced by "state": the upgrade drops them. */
const RETIRED_PURPOSES = ["ready", "dead", "sent"] as const;
type IndexPurpose = (typeof INDEX_PURPOSES)[number];
type AnyPurpose = IndexPurpose | (typeof RETIRED_PURPOSES)[number];
/** Version 1's indexes, named `<table>_<purpose>`. */
const V1_PURPOSES = ["ready", "key", "dead", "sent"] as const;

/**
 * The name of the store's index for `purpose` on `table`: `edge_outbox_<table>_<purpose>`.
 * Indexes share SQLite's namespace with tables and views, so version 1's `<table>_key` met an
 * outbox `events` next to an outbox `events_key`, or an outbox `orders` next to an app table
 * `orders_sent`. The prefix is the one of the store's version table (a name an application
 * has no reason to use), and no purpose, current or retired, has an underscore or is a suffix
 * of another, so two outbox tables never produce the same index name (not even a table
 * upgraded to version 3 and one still at version 2 in the same database). Readable in
 * `.schema`, unlike a hash.
 */
export function indexName(table: string, purpose: AnyPurpose): string {
  return `edge_outbox_${table}_${purpose}`;
}

/**
 * The position of a row in the state index, after its status: the creation time of an
 * unfinished row (the claim's "oldest first", then id), the delivery time of a sent row
 * (purges by age), and NULL for a dead row (so dead rows are in id order, as listings give
 * them). CASE, not `coalesce(sent_at, created_at)`: an unfinished row is placed by its
 * creation time even if a hand edit left it a `sent_at`, and a dead row by its id whatever it
 * holds. Every statement names it exactly like this (with the table's alias, see
 * {@link orderAt}): SQLite uses an index on an expression only for that same expression.
 */
export const ORDER_AT = orderBy("");

/** {@link ORDER_AT} with its columns qualified by `alias` (for statements that alias the table). */
export function orderAt(alias: string): string {
  return orderBy(`${alias}.`);
}

/** The one text of {@link ORDER_AT}, its columns prefixed with `prefix` ("" or "alias."). */
function orderBy(prefix: string): string {
  return `CASE ${prefix}status WHEN 0 THEN ${prefix}created_at WHEN 1 THEN ${prefix}sent_at END`;
}

/** Version 1's name of the same index, which the upgrade to version 2 drops. */
function v1IndexName(table: string, purpose: AnyPurpose): string {
  return `${table}_${purpose}`;
}

/** The columns of every version so far. */
function createTable(q: string): string {
  return `CREATE TABLE IF NOT EXISTS ${q} (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  headers TEXT NOT NULL DEFAULT '{}',
  created_at INTEGER NOT NULL,
  available_at INTEGER NOT NULL,
  lease_until INTEGER,
  claim_token TEXT,
  retries INTEGER NOT NULL DEFAULT 0,
  status INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  sent_at INTEGER
)`;
}

function createIndexes(t: string): string[] {
  // Every row, by state then ORDER_AT then id (every index entry ends in the rowid, which id
  // is). Not partial: a partial index per state costs each insert a WHERE evaluation per index,
  // and one index serves the claim (status 0), the purge (status 1), stats and the dead
  // listings (status 3). Claim cost stays flat with the table: a claim reads the first entries
  // of status 0, whatever the number of sent or dead rows after them.
  return [`CREATE INDEX IF NOT EXISTS "${indexName(t, "state")}" ON "${t}" (status, ${ORDER_AT})`];
}

/**
 * The per-key index (ordering "key"'s predecessor lookups: key, then id, as every entry ends in
 * the rowid), made by each store on its first claim with ordering "key" rather than by the
 * migration: every insert pays for every index (about a tenth of a plain INSERT's cost each,
 * most of it in preparing the statement, which `@libsql/client` does on every call), and an
 * outbox that never orders by key has no use for it. `IF NOT EXISTS`: any store, in any
 * process, makes it or finds it; the migration checked that its name is free.
 */
export function keyIndex(t: string): string {
  return `CREATE INDEX IF NOT EXISTS "${indexName(t, "key")}" ON "${t}" (key) WHERE status = 0`;
}

/** The DDL of a new table at the current version (without {@link keyIndex}). */
export function currentSchema(t: string): string[] {
  // No AUTOINCREMENT: its per-insert bookkeeping (a read and a write of sqlite_sequence) was
  // most of addMessage's gap to a plain INSERT. Ids still never come back: see `sql.ts`.
  return [createTable(`"${t}"`), ...createIndexes(t)];
}

/**
 * ?1 table name: the names of older versions' indexes that exist ON THIS TABLE, to drop them
 * (an index of that name on another table is someone else's and stays): version 1's
 * `<table>_<purpose>` and version 2's partial `edge_outbox_<table>_ready`, `_dead` and `_sent`.
 */
export function oldIndexesOf(t: string): { sql: string; args: string[] } {
  const names = [...V1_PURPOSES.map((p) => v1IndexName(t, p)), ...v2IndexNames(t)];
  return {
    sql: `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 COLLATE NOCASE
  AND name COLLATE NOCASE IN (${names.map((_, i) => `?${i + 2}`).join(", ")})`,
    args: [t, ...names],
  };
}

/** Version 2's index names on `t` (no `IF EXISTS` check of ownership: for `migrationSql`). */
export function v2IndexNames(t: string): string[] {
  return RETIRED_PURPOSES.map((p) => indexName(t, p));
}

/**
 * The schema objects named like the store's indexes and what they belong to: after creating
 * them (`IF NOT EXISTS` silently keeps an index of that name on ANOTHER table), each must be an
 * index on this table.
 */
export function ownObjects(t: string): { sql: string; args: string[] } {
  return {
    sql: `SELECT name, type, tbl_name FROM sqlite_schema
WHERE name COLLATE NOCASE IN (${INDEX_PURPOSES.map((_, i) => `?${i + 1}`).join(", ")})`,
    args: INDEX_PURPOSES.map((p) => indexName(t, p)),
  };
}

/**
 * No rows, only the table's column names (in the result's `columns`), to tell an outbox table
 * from someone else's; fails "no such table" when there is none. No PRAGMA, which remote
 * servers may refuse.
 */
export function tableColumns(t: string): string {
  return `SELECT * FROM "${t}" WHERE 0`;
}

/** The columns an outbox table must have (every version). */
export const OUTBOX_COLUMNS = [
  "id",
  "key",
  "value",
  "headers",
  "created_at",
  "available_at",
  "lease_until",
  "claim_token",
  "retries",
  "status",
  "last_error",
  "sent_at",
] as const;

/**
 * One row, `kept` 1 when a claim's `group_concat` hands bytes back unchanged. It does in UTF-8
 * databases; in UTF-16 ones SQLite re-encodes them (these bytes are invalid UTF-16 either way
 * round). No PRAGMA, which remote servers may refuse.
 */
export const BYTES_SURVIVE_CONCAT = `SELECT CAST(group_concat(b, '') AS BLOB) = b AS kept FROM (SELECT x'00d8d800ff' AS b)`;

/** Creates the version table (version 2's shape; version 1's lacks `id_namespace`). */
export const CREATE_SCHEMA_TABLE = `CREATE TABLE IF NOT EXISTS ${SCHEMA_TABLE} (
  table_name TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  migrated_at INTEGER NOT NULL,
  id_namespace TEXT,
  legacy_max_id INTEGER
)`;
/** Fails "no such column" while the version table lacks `id_namespace` (added by version 2). */
export const PROBE_NAMESPACE_COLUMN = `SELECT id_namespace FROM ${SCHEMA_TABLE} WHERE 0`;
/** Adds it to a version table made by version 1. */
export const ADD_NAMESPACE_COLUMN = `ALTER TABLE ${SCHEMA_TABLE} ADD COLUMN id_namespace TEXT`;
/** Fails "no such column" while the version table lacks `legacy_max_id` (added by version 2). */
export const PROBE_LEGACY_COLUMN = `SELECT legacy_max_id FROM ${SCHEMA_TABLE} WHERE 0`;
/** Adds it to a version table made by version 1 (or by an early version 2). */
export const ADD_LEGACY_COLUMN = `ALTER TABLE ${SCHEMA_TABLE} ADD COLUMN legacy_max_id INTEGER`;
/**
 * ?1 table name. The namespace as bytes: a hand-edited text is never read as invalid UTF-8.
 * `legacy_max_id`: rows up to it were written before the upgrade to version 2 and keep their
 * bare decimal ids (see {@link recordLegacyMax}).
 */
export const READ_VERSION = `SELECT version, CAST(id_namespace AS BLOB) AS id_namespace, legacy_max_id FROM ${SCHEMA_TABLE} WHERE table_name = ?1`;

/** One row, `found` 1 when the database has `sqlite_sequence` (AUTOINCREMENT's table). */
export const HAS_SEQUENCE_TABLE = `SELECT count(*) AS found FROM sqlite_schema WHERE name = 'sqlite_sequence'`;

/**
 * ?1 table name. Run when a table that existed before version 2 is upgraded (its version row
 * written): records the highest id it ever used (its highest row, or AUTOINCREMENT's memory of
 * a deleted one, whichever is higher). Receivers and QStash saw those rows' ids as bare
 * decimals before the upgrade, so they keep them: a row redelivered under a new id would not
 * be deduplicated. Recorded once (a later migrate keeps the first value).
 */
export function recordLegacyMax(t: string, hasSequence: boolean): string {
  // Always two arguments: max() of one argument is the aggregate, which SQLite refuses in SET
  // ("misuse of aggregate function max()"), as it did for a table whose version row went
  // missing in a database without sqlite_sequence.
  const seq = hasSequence ? `coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?1), 0)` : "0";
  return `UPDATE ${SCHEMA_TABLE} SET legacy_max_id = max(coalesce((SELECT max(id) FROM "${t}"), 0), ${seq})
WHERE table_name = ?1 AND legacy_max_id IS NULL`;
}
/**
 * ?1 table name, ?2 version, ?3 a fresh namespace, kept only if the table has none yet (ids
 * already handed out keep their meaning). Never lowers the version: on D1, whose migrators
 * decide from reads and write later, an older migrator's write must not undo a newer one's.
 * (Version 2's statement did lower it, and still does where such a process runs: `migrate()`
 * run again repairs that.)
 */
export const WRITE_VERSION = `INSERT INTO ${SCHEMA_TABLE} (table_name, version, migrated_at, id_namespace)
VALUES (?1, ?2, CAST(unixepoch('subsec') * 1000 AS INTEGER), ?3)
ON CONFLICT (table_name) DO UPDATE SET version = max(${SCHEMA_TABLE}.version, excluded.version), migrated_at = excluded.migrated_at,
  id_namespace = coalesce(${SCHEMA_TABLE}.id_namespace, excluded.id_namespace)`;
/**
 * ?1 table name, ?2 a fresh namespace, ?3 the namespace the migrator read: for a table created
 * anew under a version row that outlived the old table (dropped by hand). Its row ids start
 * again at 1, so its ids must not reuse the old namespace, nor be read as the old table's bare
 * ids (no legacy rows). Only the namespace read is replaced: a concurrent migrator (D1 has no
 * interactive transaction to serialize them) that renewed it first keeps its own.
 */
export const RENEW_NAMESPACE = `UPDATE ${SCHEMA_TABLE} SET id_namespace = ?2, legacy_max_id = NULL WHERE table_name = ?1 AND id_namespace = ?3`;
