/**
 * Every statement the SQLite stores (LibsqlStore, D1Store) run at run time (the schema is in
 * schema.ts), built once per store so the hot path never assembles SQL. SQLite dialect only, no driver calls.
 *
 * One clock per database: every lease and readiness decision reads the database's own clock
 * ({@link DB_NOW}) inside the statement that makes it, never a relay's `Date.now()`, so relays
 * whose clocks disagree still agree on who holds a message, and a lease runs from when the
 * claim took effect (after any wait for the write lock).
 *
 * Rows are picked by state through one index on `(status, ORDER_AT)` (see `schema.ts`): every
 * statement below that selects by state and orders or bounds by time names `ORDER_AT` exactly
 * as the index does, or SQLite would not use it.
 *
 * Ids are never reused: tables made since schema version 2 have no `AUTOINCREMENT`, so SQLite
 * hands out `max(id) + 1`, and the store never deletes the row with the highest id. When that
 * row is delivered it stays as a sent row (a tombstone) until a newer row exists; the sent
 * mark removes older tombstones first, and purges skip the highest row.
 *
 * @module
 */

import { ORDER_AT, orderAt, SCHEMA_TABLE } from "./schema.ts";

/** Row states in the `status` column (the numbers of `SendStatus`; 2 is never stored). */
export const STATUS = { pending: 0, sent: 1, dead: 3 } as const;

/** The database's clock in integer ms since the epoch, read inside each statement that needs it. */
export const DB_NOW = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

/** One statement of a mark, and whether its changed rows count as the mark's. */
export interface MarkStep {
  sql: string;
  counts: boolean;
  /** Whether ?3 is the tag the step gives the tombstone it makes (see `deleteSent`). */
  tags?: boolean;
}

/**
 * A claim. Locally: `read` (?1 limit, ?2 the largest value it carries, ?3 the tombstone tag of
 * the sent mark just before it, or null) picks the batch and returns it as one row, then `takeByIds`
 * (?1 token, ?2 lease ms, ?3 the read's `ids`) leases exactly those rows. Remotely, where both
 * statements go in one request and the read's result cannot feed the write: `take` (?1 token,
 * ?2 lease ms, ?3 limit) leases the batch, then `readTaken` (?1 token, ?2 limit, ?3 largest
 * value carried) returns it. Each statement reads the clock itself, so a read and a write that
 * both picked ready rows could disagree by the time between them; hence these two shapes.
 *
 * The batch comes back as one row because the driver's cost is per row and per column (about
 * half of a large pass went into reading `UPDATE ... RETURNING` rows): `records` is a JSON
 * array of `[id, key, valueLength, headers, createdAt, retries, lastError]` as a BLOB (decoded
 * in JavaScript with replacement: text that holds invalid UTF-8, from a hand edit or an older
 * version, must never reach the native driver, which aborts the process on it), and `bytes` is
 * every value of at most the carried size concatenated in the same order. Larger values are
 * read by id afterwards (`claimValues`): concatenating them copies more than reading them row by
 * row. `ids` is the JSON array of the ids, and `changed` the rows the sent mark just before the
 * read changed (local reads only).
 */
export interface ClaimSql {
  read: string;
  take: string;
}

/** The SQL of one store, for one (validated) table name. */
export interface Statements {
  /** ?1 key, ?2 value, ?3 headers JSON, ?4 created_at. */
  insert: string;
  /** The claim of ordering "none". */
  claim: ClaimSql;
  /** The claim of ordering "key" (no message while an older one of its key is unfinished). */
  claimByKey: ClaimSql;
  /** See {@link ClaimSql}. */
  takeByIds: string;
  /** See {@link ClaimSql}. */
  readTaken: string;
  /** Sent rows deleted: the steps, in order (?1 ids, ?2 token, ?3 the tombstone's tag). */
  deleteSent: readonly MarkStep[];
  /** Sent rows kept (retention "keep"): ?1 ids, ?2 token. */
  keepSent: string;
  /** ?1 JSON array of [id, delay ms, error], ?2 token. */
  retry: string;
  /** ?1 JSON array of [id, error], ?2 token. */
  dead: string;
  /** ?1 ids, ?2 token: lease and token cleared, nothing else. */
  release: string;
  stats: string;
  /** ?1 limit. */
  listDead: string;
  /**
   * ?1 limit: the dead rows' ids (oldest first) and the bytes each row's key, value, headers
   * and error take, without reading them out, so a listing can read the rows in groups bounded
   * by bytes ({@link deadByIds}).
   */
  deadSizes: string;
  /** ?1 JSON array of ids: those rows, if still dead, in id order (columns of `listDead`). */
  deadByIds: string;
  /** ?1 JSON array of ids: those rows' values (a claim's values too large to carry in its read). */
  claimValues: string;
  requeueAll: string;
  /** ?1 ids. */
  requeueIds: string;
  /** ?1 cutoff ms on the caller's clock or null, ?2 keepFor ms (with null ?1: the db's now minus it). */
  purgeSent: string;
}

// Columns a listing returns. The id goes out as text: an integer above 2^53 would lose digits
// (or throw) in a client with intMode "number". Text columns go out as bytes (see ClaimSql).
const RECORD_COLUMNS = `CAST(id AS TEXT) AS id, CAST(key AS BLOB) AS key, CAST(value AS BLOB) AS value,
  CAST(headers AS BLOB) AS headers, CAST(created_at AS INTEGER) AS created_at,
  CAST(retries AS INTEGER) AS retries, CAST(last_error AS BLOB) AS last_error`;

/** The bytes of column `column` whatever its type (a blob's length is read from its row header). */
const bytesOf = (column: string) =>
  `iif(typeof(${column}) = 'blob', length(${column}), length(CAST(${column} AS BLOB)))`;

/** The bytes of the variable columns of row alias `m`: key, value, headers and last error. */
const storedBytes = (m: string) =>
  `${bytesOf(`${m}.key`)} + ${bytesOf(`${m}.value`)} + ${bytesOf(`${m}.headers`)} + coalesce(${bytesOf(`${m}.last_error`)}, 0)`;

/** Builds every statement for table `t` (already checked with `checkTableName`). */
export function buildStatements(t: string): Statements {
  const q = `"${t}"`;
  // A row whose lease ran out counts that lost attempt, exactly as MemoryStore does. The read
  // reports what the write sets, from the same columns before the write.
  const retriesAfterClaim = "retries + (lease_until IS NOT NULL)";
  const lastErrorAfterClaim = `CASE WHEN lease_until IS NULL THEN last_error ELSE 'lease expired before the outcome was recorded' END`;
  const takeLease = `UPDATE ${q} SET claim_token = ?1, lease_until = ${DB_NOW} + ?2, retries = ${retriesAfterClaim},
  last_error = ${lastErrorAfterClaim}`;
  // The oldest ready rows (limit `limit`): the first entries of status 0 in the state index
  // (ORDER_AT is created_at for them).
  const ready = (columns: string, extra: string, limit: string) => `SELECT ${columns} FROM ${q} AS c
  WHERE c.status = 0 AND c.available_at <= ${DB_NOW} AND (c.lease_until IS NULL OR c.lease_until <= ${DB_NOW})${extra}
  ORDER BY ${orderAt("c")}, c.id LIMIT ${limit}`;
  // Casts keep a hand-edited row from failing json_array (it refuses BLOBs) and with it every
  // claim. A value's length is in bytes whatever its type, as group_concat appends it; a blob's
  // length and type come from the row header, so a value too large to carry is never loaded.
  const valueBytes = bytesOf("c.value");
  const columns = (carried: string) =>
    `c.id, c.key, ${valueBytes} AS value_bytes, iif(${valueBytes} <= ${carried}, c.value, NULL) AS carried, c.headers, c.created_at, c.retries, c.last_error, c.lease_until`;
  // The table's id namespace rides along (one primary-key probe): a claim gives its ids in the
  // namespace the table has NOW, so a store whose cached one went stale (the table was dropped
  // and made again by another process's migrate()) never labels new rows with old messages' ids.
  const batchOf = (rows: string, retries: string, lastError: string, changed: string) =>
    `SELECT CAST(json_group_array(json_array(CAST(id AS TEXT), CAST(key AS TEXT), value_bytes,
    CAST(headers AS TEXT), CAST(created_at AS INTEGER), ${retries}, CAST(${lastError} AS TEXT))) AS BLOB) AS records,
  CAST(group_concat(carried, '') AS BLOB) AS bytes,
  json_group_array(id) AS ids,
  (SELECT CAST(id_namespace AS BLOB) FROM ${SCHEMA_TABLE} WHERE table_name = '${t}') AS id_namespace${changed}
FROM (${rows})`;
  // The rows a sent mark turned into the tombstone (see the module comment), for its count.
  const tombstoned = `(SELECT count(*) FROM ${q} WHERE id = (SELECT max(id) FROM ${q}) AND status = 1 AND claim_token = ?3)`;
  const claimOf = (extra: string): ClaimSql => ({
    read: batchOf(
      ready(columns("?2"), extra, "?1"),
      retriesAfterClaim,
      lastErrorAfterClaim,
      `,\n  changes() + ${tombstoned} AS changed`,
    ),
    take: `${takeLease}
WHERE id IN (${ready("c.id", extra, "?3")})`,
  });
  // ?1 JSON array of ids, ?2 token: marks touch only rows still held by this claim. `+status`
  // (here and wherever rows are picked by id): the state index has status as its first column,
  // and without statistics SQLite would read every unfinished row through it rather than look
  // the given ids up by primary key; the unary plus keeps the index out of that choice.
  const mine = `id IN (SELECT value FROM json_each(?1)) AND claim_token = ?2 AND +status = 0`;
  // ?1 JSON array of [id, delay, error] / [id, error]: per-row values in one statement.
  const perRow = (columns: string) => `FROM (SELECT ${columns} FROM json_each(?1)) AS u
WHERE m.id = u.id AND m.claim_token = ?2 AND +m.status = 0`;
  const newest = `(SELECT max(id) FROM ${q})`;
  // sent_at cleared too: an unfinished row never has one (a hand-edited dead row may).
  const requeue = `UPDATE ${q} SET status = 0, retries = 0, available_at = ${DB_NOW}, lease_until = NULL, claim_token = NULL, sent_at = NULL`;
  return {
    insert: `INSERT INTO ${q} (key, value, headers, created_at, available_at) VALUES (?1, ?2, ?3, ?4, 0)`,
    claim: claimOf(""),
    claimByKey: claimOf(`
    AND NOT EXISTS (SELECT 1 FROM ${q} AS o WHERE o.status = 0 AND o.key = c.key AND o.id < c.id)`),
    takeByIds: `${takeLease}
WHERE id IN (SELECT value FROM json_each(?3))`,
    readTaken: batchOf(
      `SELECT ${columns("?3")} FROM ${q} AS c WHERE c.status = 0 AND c.claim_token = ?1 ORDER BY ${orderAt("c")}, c.id LIMIT ?2`,
      "retries",
      "last_error",
      "",
    ),
    deleteSent: [
      // Tombstones that are no longer the newest row (a newer one exists): their ids are safe.
      // (`+id`: through the sent rows' range of the state index, never a range of the whole table.)
      { sql: `DELETE FROM ${q} WHERE status = 1 AND +id < ${newest}`, counts: false },
      // The newest row, if delivered now, stays as a sent row so that SQLite never hands its id
      // out again. It holds this write's own tag (?3), which the claim's read counts it by: not
      // the claim's token, since one claim may be recorded in several writes (the send window),
      // and a tombstone an earlier write left must not count again.
      {
        sql: `UPDATE ${q} SET status = 1, sent_at = ${DB_NOW}, lease_until = NULL, claim_token = ?3
  WHERE id = ${newest} AND ${mine}`,
        counts: true,
        tags: true,
      },
      { sql: `DELETE FROM ${q} WHERE ${mine}`, counts: true },
    ],
    keepSent: `UPDATE ${q} SET status = 1, sent_at = ${DB_NOW}, lease_until = NULL, claim_token = NULL WHERE ${mine}`,
    retry: `UPDATE ${q} AS m SET retries = m.retries + 1, available_at = ${DB_NOW} + u.delay, last_error = u.e,
  lease_until = NULL, claim_token = NULL
${perRow("json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS delay, json_extract(value, '$[2]') AS e")}`,
    dead: `UPDATE ${q} AS m SET status = 3, last_error = u.e, lease_until = NULL, claim_token = NULL
${perRow("json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS e")}`,
    release: `UPDATE ${q} SET lease_until = NULL, claim_token = NULL, available_at = max(available_at, ${DB_NOW} + ?3) WHERE ${mine}`,
    // Each count reads one range of the state index; the oldest is the first entry of status 0.
    stats: `SELECT
  (SELECT COUNT(*) FROM ${q} WHERE status = 0) AS unfinished,
  (SELECT COUNT(*) FROM ${q} WHERE status = 0 AND lease_until > ${DB_NOW}) AS in_flight,
  (SELECT COUNT(*) FROM ${q} WHERE status = 3) AS dead,
  (SELECT CAST(MIN(${ORDER_AT}) AS INTEGER) FROM ${q} WHERE status = 0) AS oldest`,
    // Order by the integer column, not the text alias of RECORD_COLUMNS ("10" < "9"). ORDER_AT
    // is NULL for every dead row, so this is id order, read straight from the state index.
    listDead: `SELECT ${RECORD_COLUMNS} FROM ${q} AS m WHERE m.status = 3 ORDER BY ${orderAt("m")}, m.id LIMIT ?1`,
    deadSizes: `SELECT CAST(id AS TEXT) AS id, ${storedBytes("m")} AS bytes FROM ${q} AS m WHERE m.status = 3 ORDER BY ${orderAt("m")}, m.id LIMIT ?1`,
    deadByIds: `SELECT ${RECORD_COLUMNS} FROM ${q} AS m WHERE +m.status = 3 AND m.id IN (SELECT value FROM json_each(?1)) ORDER BY m.id`,
    claimValues: `SELECT CAST(id AS TEXT) AS id, CAST(value AS BLOB) AS value FROM ${q} WHERE id IN (SELECT value FROM json_each(?1))`,
    requeueAll: `${requeue} WHERE status = 3`,
    requeueIds: `${requeue} WHERE +status = 3 AND id IN (SELECT value FROM json_each(?1))`,
    // ORDER_AT is sent_at for a sent row: the range of the state index older than the cutoff.
    purgeSent: `DELETE FROM ${q} WHERE status = 1 AND ${ORDER_AT} < coalesce(?1, ${DB_NOW} - ?2) AND +id < ${newest}`,
  };
}
