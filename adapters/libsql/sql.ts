/**
 * The SQL of the libSQL store: table-name validation, the schema and its migrations, and every
 * statement the store runs, built once per store so the hot path never assembles SQL.
 *
 * @module
 */
import { ValidationError } from "../../mod.ts";

/** Row states in the `status` column (the numbers of `SendStatus`; 2 is never stored). */
export const STATUS = { pending: 0, sent: 1, dead: 3 } as const;

/** Name of the table in which the store records its schema version per outbox table. */
export const SCHEMA_TABLE = "edge_outbox_schema";

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

// Columns a listing returns. The id goes out as text: an integer above 2^53
// would lose digits (or throw) in a client with intMode "number".
const RECORD_COLUMNS = "CAST(id AS TEXT) AS id, key, value, headers, created_at, retries, last_error";

/**
 * A claim as two statements (?1 token, ?2 lease end, ?3 now, ?4 limit; the read also ?5, the
 * largest value it carries), run in that order in one write transaction: `read` returns the
 * batch as one row, `write` takes the same rows' leases. Under the write lock both pick the
 * same rows: same data, same arguments, a total order.
 *
 * The batch comes back as one row because the driver's cost is per row and per column (about
 * half of a large pass went into reading `UPDATE ... RETURNING` rows): `records` is a JSON
 * array of `[id, key, valueLength, headers, createdAt, retries, lastError]`, and `bytes` is
 * every value of at most ?5 bytes concatenated in the same order (both aggregates step through
 * the same rows). Larger values are read by id afterwards (`claimValues`): concatenating them
 * copies more than reading them row by row.
 * `ids` is the JSON array of the ids, for `claimByIds`, and `changed` is `changes()`: the rows
 * the statement just before it changed (a pass's sent mark).
 */
export interface ClaimSql {
  read: string;
  write: string;
}

/** The SQL of one store, for one (validated) table name. */
export interface Statements {
  /** Schema migrations: index i brings the schema from version i to version i + 1. */
  migrations: readonly (readonly string[])[];
  insert: string;
  /** The claim of ordering "none": its read, then its write, in one write transaction. */
  claim: ClaimSql;
  /** The claim of ordering "key" (no message while an older one of its key is unfinished). */
  claimByKey: ClaimSql;
  /**
   * A claim's write for the rows its read returned (?1 token, ?2 lease end, ?3 their `ids`):
   * what a local claim runs, as it has the read's result in hand; remote claims send both
   * statements at once and run `write`.
   */
  claimByIds: string;
  deleteSent: string;
  keepSent: string;
  retry: string;
  dead: string;
  stats: string;
  listDead: string;
  /** ?1 JSON array of ids: those rows' values (a claim's values too large to carry in its read). */
  claimValues: string;
  requeueAll: string;
  requeueIds: string;
  purgeSent: string;
}

/** Builds every statement for table `t` (already checked with {@link checkTableName}). */
export function buildStatements(t: string): Statements {
  const q = `"${t}"`;
  // A row whose lease ran out counts that lost attempt, exactly as MemoryStore does. The read
  // reports what the write sets, from the same columns before the write.
  const retriesAfterClaim = "retries + (lease_until IS NOT NULL)";
  const lastErrorAfterClaim = `CASE WHEN lease_until IS NULL THEN last_error ELSE 'lease expired before the outcome was recorded' END`;
  // ?1 token, ?2 lease end: what a claim's write sets on the rows it takes.
  const takeLease = `UPDATE ${q} SET claim_token = ?1, lease_until = ?2, retries = ${retriesAfterClaim},
  last_error = ${lastErrorAfterClaim}`;
  // ?3 now, ?4 limit: the oldest ready rows, through the partial index of unfinished rows.
  const ready = (columns: string, extra: string) => `SELECT ${columns} FROM ${q} AS c
  WHERE c.status = 0 AND c.available_at <= ?3 AND (c.lease_until IS NULL OR c.lease_until <= ?3)${extra}
  ORDER BY c.created_at, c.id LIMIT ?4`;
  // Casts keep a hand-edited row from failing json_array (it refuses BLOBs) and with it every
  // claim. A value's length is in bytes whatever its type, as group_concat appends it; a blob's
  // length and type come from the row header, so a value too large to carry is never loaded.
  const valueBytes = "iif(typeof(c.value) = 'blob', length(c.value), length(CAST(c.value AS BLOB)))";
  const claimOf = (extra: string): ClaimSql => ({
    read: `SELECT json_group_array(json_array(CAST(id AS TEXT), CAST(key AS TEXT), value_bytes,
    CAST(headers AS TEXT), CAST(created_at AS INTEGER), ${retriesAfterClaim}, CAST(${lastErrorAfterClaim} AS TEXT))) AS records,
  CAST(group_concat(carried, '') AS BLOB) AS bytes,
  json_group_array(id) AS ids,
  changes() AS changed
FROM (${ready(`c.id, c.key, ${valueBytes} AS value_bytes, iif(${valueBytes} <= ?5, c.value, NULL) AS carried, c.headers, c.created_at, c.retries, c.last_error, c.lease_until`, extra)})`,
    write: `${takeLease}
WHERE id IN (${ready("c.id", extra)})`,
  });
  // ?1 JSON array of ids, ?2 token: marks touch only rows still held by this claim.
  const mine = `id IN (SELECT value FROM json_each(?1)) AND claim_token = ?2 AND status = 0`;
  // ?1 JSON array of [id, availableAt, error] / [id, error]: per-row values in one statement.
  const perRow = (columns: string) => `FROM (SELECT ${columns} FROM json_each(?1)) AS u
WHERE m.id = u.id AND m.claim_token = ?2 AND m.status = 0`;
  return {
    migrations: [
      [
        `CREATE TABLE IF NOT EXISTS ${q} (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
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
)`,
        // Unfinished rows in claim order: the claim reads the first batchSize ready entries.
        `CREATE INDEX IF NOT EXISTS "${t}_ready" ON ${q} (created_at, id) WHERE status = 0`,
        // Per-key predecessor lookups for ordering "key".
        `CREATE INDEX IF NOT EXISTS "${t}_key" ON ${q} (key, id) WHERE status = 0`,
        `CREATE INDEX IF NOT EXISTS "${t}_dead" ON ${q} (status) WHERE status = 3`,
        `CREATE INDEX IF NOT EXISTS "${t}_sent" ON ${q} (sent_at) WHERE status = 1`,
      ],
    ],
    insert: `INSERT INTO ${q} (key, value, headers, created_at, available_at) VALUES (?1, ?2, ?3, ?4, ?4)`,
    claim: claimOf(""),
    claimByIds: `${takeLease}
WHERE id IN (SELECT value FROM json_each(?3))`,
    claimByKey: claimOf(`
    AND NOT EXISTS (SELECT 1 FROM ${q} AS o WHERE o.status = 0 AND o.key = c.key AND o.id < c.id)`),
    deleteSent: `DELETE FROM ${q} WHERE ${mine}`,
    keepSent: `UPDATE ${q} SET status = 1, sent_at = ?3, lease_until = NULL, claim_token = NULL WHERE ${mine}`,
    retry: `UPDATE ${q} AS m SET retries = m.retries + 1, available_at = u.at, last_error = u.e,
  lease_until = NULL, claim_token = NULL
${perRow("json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS at, json_extract(value, '$[2]') AS e")}`,
    dead: `UPDATE ${q} AS m SET status = 3, last_error = u.e, lease_until = NULL, claim_token = NULL
${perRow("json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS e")}`,
    // ?1 now. Each count reads one partial index; the oldest is the first ready-index entry.
    stats: `SELECT
  (SELECT COUNT(*) FROM ${q} WHERE status = 0) AS unfinished,
  (SELECT COUNT(*) FROM ${q} WHERE status = 0 AND lease_until > ?1) AS in_flight,
  (SELECT COUNT(*) FROM ${q} WHERE status = 3) AS dead,
  (SELECT MIN(created_at) FROM ${q} WHERE status = 0) AS oldest`,
    // Order by the integer column, not the text alias of RECORD_COLUMNS ("10" < "9").
    listDead: `SELECT ${RECORD_COLUMNS} FROM ${q} AS m WHERE m.status = 3 ORDER BY m.id LIMIT ?1`,
    claimValues: `SELECT CAST(id AS TEXT) AS id, value FROM ${q} WHERE id IN (SELECT value FROM json_each(?1))`,
    requeueAll: `UPDATE ${q} SET status = 0, retries = 0, available_at = ?1, lease_until = NULL, claim_token = NULL
WHERE status = 3`,
    requeueIds: `UPDATE ${q} SET status = 0, retries = 0, available_at = ?1, lease_until = NULL, claim_token = NULL
WHERE status = 3 AND id IN (SELECT value FROM json_each(?2))`,
    purgeSent: `DELETE FROM ${q} WHERE status = 1 AND sent_at < ?1`,
  };
}

/**
 * One row, `kept` 1 when a claim's `group_concat` hands bytes back unchanged. It does in UTF-8
 * databases; in UTF-16 ones SQLite re-encodes them (these bytes are invalid UTF-16 either way
 * round). No PRAGMA, which remote servers may refuse.
 */
export const BYTES_SURVIVE_CONCAT = `SELECT CAST(group_concat(b, '') AS BLOB) = b AS kept FROM (SELECT x'00d8d800ff' AS b)`;

/** Creates the version table. */
export const CREATE_SCHEMA_TABLE = `CREATE TABLE IF NOT EXISTS ${SCHEMA_TABLE} (
  table_name TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  migrated_at INTEGER NOT NULL
)`;
/** ?1 table name. */
export const READ_VERSION = `SELECT version FROM ${SCHEMA_TABLE} WHERE table_name = ?1`;
/** ?1 table name, ?2 version, ?3 now. */
export const WRITE_VERSION = `INSERT INTO ${SCHEMA_TABLE} (table_name, version, migrated_at) VALUES (?1, ?2, ?3)
ON CONFLICT (table_name) DO UPDATE SET version = excluded.version, migrated_at = excluded.migrated_at`;
