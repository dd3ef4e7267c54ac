/**
 * The PostgreSQL dialect of the store: the schema and its migrations, and every statement the
 * store runs, built once per store (the pass statements once per shape) so that the hot path
 * never assembles SQL. Every statement is ONE statement: an autocommit statement is a
 * transaction of its own, so a claim, a mark or a whole pass costs one round trip and holds its
 * row locks only while it runs, never across a send.
 *
 * Conventions: ids travel as text (`id::text`, and lists as `string_to_array($n, ',')`), so a
 * `bigint` never passes through a lossy JavaScript number whatever the driver's type parsers;
 * times that decide leases and readiness come from the database's clock (`now()`,
 * `clock_timestamp()`); results are read by position, so a driver's column-name transform
 * (postgres.js `transform`) changes nothing.
 *
 * @module
 */
import { SCHEMA_TABLE, shortHash } from "./options.ts";

/** Row states in the `status` column (the numbers of `SendStatus`; 2 is never stored). */
export const STATUS = { pending: 0, sent: 1, dead: 3 } as const;

/**
 * The columns a claim and a listing return, in this order (see `rows.ts`), named so that the
 * claim can order its rows by them. The key and the error text come behind a one-character
 * guard (`'.' || ...`, which `toRecord` takes off): PGlite's wire-protocol reader decodes each
 * text field with a BOM-stripping `TextDecoder`, so a text starting with U+FEFF would come back
 * without it (the server's drivers keep it).
 */
const RECORD = (m: string) =>
  `${m}.id::text AS id, '.' || ${m}.key AS key, ${m}.value AS value, ${m}.headers::text AS headers,
  (extract(epoch from ${m}.created_at) * 1000)::float8 AS created_ms, ${m}.retries AS retries, '.' || ${m}.last_error AS last_error`;

/** The hash the per-key index holds (see the version 2 migration). */
const KEY_HASH = (key: string) => `hashtextextended(${key}, 0)`;

/**
 * The settings of the sequence `seq` (an oid) and its persistence, as one text: what an
 * `ALTER` that gives the sequence new storage without resetting it changes (`SET CACHE`,
 * `INCREMENT BY`, `MAXVALUE`, `SET LOGGED`...). NULL when the sequence is gone.
 */
const SEQUENCE_SETTINGS = (seq: string) =>
  `(SELECT concat_ws('/', s.seqtypid, s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle, c.relpersistence)
    FROM pg_sequence AS s JOIN pg_class AS c ON c.oid = s.seqrelid WHERE s.seqrelid = ${seq})`;

/** The last id the sequence handed out, 0 when it has handed none out since it (re)started. */
const SEQUENCE_VALUE = (seq: string) => `coalesce(pg_sequence_last_value(${seq}::regclass), 0)`;

/**
 * Whether version row `v`'s id fence is settled: the table's id sequence has the storage it
 * had when the fence was recorded, so nothing restarted it since (the fast path).
 */
const FENCE_SETTLED = (v: string) => `(${v}.id_filenode = pg_relation_filenode(${v}.id_sequence))`;

/**
 * Whether version row `v`'s id fence holds: the ids its table's sequence hands out were never
 * handed out under the recorded namespace. A sequence gets new storage both when its ids start
 * again (`TRUNCATE ... RESTART IDENTITY`, `ALTER ... RESTART`) and when a harmless `ALTER`
 * changes a setting; the settings tell them apart: new storage under the recorded settings is a
 * restart (broken), new storage under new settings holds while the sequence has not gone back
 * below the high-water mark recorded with them (a restart in the same `ALTER` as a settings
 * change). A sequence whose settings changed and that has handed out nothing since (restarted,
 * or never used) counts as restarted: renewing a namespace no id was handed out under costs
 * nothing. The high-water mark is the larger of the recorded one and, given `table`, the
 * largest id in it. A dropped table takes its sequence with it (broken). NULL when no fence is
 * recorded (a version 1 row). A CASE, so that nothing reads a sequence that is gone.
 */
const FENCE_HOLDS = (v: string, table?: string) => `(CASE
  WHEN ${v}.id_filenode IS NULL THEN NULL
  WHEN pg_relation_filenode(${v}.id_sequence) IS NULL THEN false
  WHEN ${FENCE_SETTLED(v)} THEN true
  WHEN ${SEQUENCE_SETTINGS(`${v}.id_sequence`)} IS NOT DISTINCT FROM ${v}.id_settings THEN false
  ELSE coalesce(pg_sequence_last_value(${v}.id_sequence) >= ${
    table === undefined ? `${v}.id_mark` : `greatest(${v}.id_mark, (SELECT max(id) FROM ${table}))`
  }, false) END)`;

/** The fence columns of the sequence `seq` as it is now: storage, settings, high-water mark. */
const FENCE_NOW = (seq: string) =>
  `pg_relation_filenode(${seq}), ${SEQUENCE_SETTINGS(seq)}, ${SEQUENCE_VALUE(seq)}`;

/**
 * How one pass statement claims, or which marks it records: never both (PostgresStore has no
 * recordAndFetch, see postgres.ts), so a claim's shape has no mark flags.
 */
export type PassShape =
  /** A claim; `keyed`: ordering "key", no message while an older one of its key is unfinished. */
  | { claim: true; keyed: boolean }
  /** The marks alone: which of them the outcome has. */
  | { claim: false; sent: boolean; retry: boolean; dead: boolean };

/**
 * Named arguments of a pass statement: `namespace` the one the marked ids are of; `token` the
 * outcome's claim token; `sent` the sent ids
 * (comma-separated); `retry` JSON `[{id, delay, e}]`; `dead` JSON `[{id, e}]`; `claim` the
 * new token; `lease` ms; `limit` the batch size.
 */
export type PassArg = "namespace" | "token" | "sent" | "retry" | "dead" | "claim" | "lease" | "limit";

/** A statement whose arguments are named, in `$n` order. */
export interface PassSql {
  text: string;
  args: readonly PassArg[];
}

/** The SQL of one store, for one (validated) schema and table. */
export interface Statements {
  /** The quoted, schema-qualified table. */
  qualified: string;
  /** $1 schema: one row when it exists. */
  schemaExists: string;
  createSchema: string;
  /** Runs inside migrate()'s transaction, after the schema exists: creates the version table. */
  prepare: readonly string[];
  /** One row when the version table lacks version 2's id fence columns (made by version 1). */
  fenceColumnsMissing: string;
  /** Adds them (and makes version 2's sequence oid a regclass). */
  addFenceColumns: readonly string[];
  /** One row, true when the outbox table exists. */
  tableExists: string;
  /** Creates the table and its indexes as this version has them (all `IF NOT EXISTS`). */
  create: readonly string[];
  /** Schema upgrades: index i brings a table from version i + 1 to version i + 2. */
  upgrades: readonly (readonly string[])[];
  /** $1 the advisory lock's key text: taken for the rest of migrate()'s transaction. */
  lock: string;
  /**
   * $1 table: version, namespace, and whether the id fence holds: true when the table's id
   * sequence is the one recorded with the namespace, never reset since; false when it was
   * reset or replaced (the namespace must be renewed); null when none is recorded yet.
   */
  readVersion: string;
  /** $1 table: readVersion's fence, also held against the largest id in the (existing) table. */
  fenceHolds: string;
  /**
   * $1 table, $2 version, $3 namespace: the version row, with the id fence of the table's
   * sequence as it is now.
   */
  writeVersion: string;
  /**
   * $1 table, $2 a fresh namespace: renews the namespace when the fence no longer holds (ids
   * started again: `TRUNCATE ... RESTART IDENTITY`, `ALTER SEQUENCE ... RESTART`). A no-op
   * when another process renewed it first, or when the sequence is gone with its table.
   */
  renewIds: string;
  /**
   * $1 table: records the fence anew (storage, settings, high-water mark) when it holds but is
   * not settled (a harmless ALTER gave the sequence new storage), so that the fast path serves
   * again and a later restart is told apart exactly.
   */
  refence: string;
  /**
   * $1 key, $2 value, $3 headers (JSON text), $4 timestamp (ISO text). JSON goes in as `text`
   * and is cast: typed `jsonb`, postgres.js would encode the string as a JSON string.
   */
  insert: string;
  /** The insert, plus a NOTIFY on $5 that the commit delivers. */
  insertNotify: string;
  /** The statement of a pass of this shape (marks, then the claim that sees them). */
  pass(shape: PassShape, keep: boolean): PassSql;
  /** $1 token, $2 ids of namespace $3 (no row when the fence holds another): leases given back untouched. Returns one count. */
  release: string;
  /** One row: unfinished, in flight, dead, oldest (ms). */
  stats: string;
  /** $1 limit. Each row led by the namespace when the id fence holds (NULL: renew, re-read). */
  listDead: string;
  requeueAll: string;
  /** $1 ids of namespace $2 (no row when the fence holds another). */
  requeueIds: string;
  /** $1 cutoff (ISO text): kept sent rows sent before it. */
  purgeBefore: string;
  /** $1 ms: kept sent rows sent more than that long ago on the database's clock. */
  purgeOlderThan: string;
}

/** `"name"`: the caller has checked it is a plain identifier, so it needs no escaping. */
export function quote(name: string): string {
  return `"${name}"`;
}

/** What each of the table's indexes serves. */
type IndexPurpose = "ready" | "key" | "dead" | "sent";
const PURPOSES: readonly IndexPurpose[] = ["ready", "key", "dead", "sent"];

/** Names longer than this are cut by PostgreSQL (NAMEDATALEN - 1 bytes; identifiers are ASCII). */
const MAX_NAME = 63;

/**
 * The name of `table`'s `purpose` index: `edge_outbox_<table>_<purpose>`, which no other
 * outbox's table or index name meets; past 63 bytes (which PostgreSQL would cut, and the four
 * would collide) the table part is shortened and a hash of the whole table name keeps it apart.
 */
export function indexName(table: string, purpose: IndexPurpose): string {
  const name = `edge_outbox_${table}_${purpose}`;
  if (name.length <= MAX_NAME) return name;
  const room = MAX_NAME - "edge_outbox_".length - purpose.length - 10;
  return `edge_outbox_${table.slice(0, room)}_${shortHash(table)}_${purpose}`;
}

/** The name versions 1 and 2 gave `table`'s `purpose` index: `<table>_<purpose>`, hashed if long. */
function legacyIndexName(table: string, purpose: IndexPurpose): string {
  const name = `${table}_${purpose}`;
  return name.length <= MAX_NAME
    ? name
    : `${table.slice(0, 63 - purpose.length - 10)}_${shortHash(table)}_${purpose}`;
}

/**
 * A statement running `action` (a format() template given the schema, the legacy name and the
 * new one) for each legacy-named index that is an index OF `schema`.`table`: a relation of that
 * name that is another table's index, or a table, is left alone.
 */
function forLegacyIndexes(
  schema: string,
  table: string,
  purposes: readonly IndexPurpose[],
  action: string,
): string {
  const pairs = purposes.map((p) => `('${legacyIndexName(table, p)}', '${indexName(table, p)}')`).join(", ");
  return `DO $$
DECLARE legacy record;
BEGIN
  FOR legacy IN SELECT n.old, n.new FROM (VALUES ${pairs}) AS n(old, new)
    JOIN pg_class AS c ON c.relname = n.old AND c.relnamespace = '${quote(schema)}'::regnamespace
    JOIN pg_index AS i ON i.indexrelid = c.oid AND i.indrelid = '${quote(schema)}.${quote(table)}'::regclass
  LOOP
    IF to_regclass(format('%I.%I', '${schema}', legacy.new)) IS NULL THEN
      EXECUTE format(${action}, '${schema}', legacy.old, legacy.new);
    END IF;
  END LOOP;
END $$`;
}

/** Renames the table's indexes still under their version 1-2 names to this version's names. */
function renameLegacyIndexes(schema: string, table: string): string {
  return forLegacyIndexes(schema, table, PURPOSES, `'ALTER INDEX %I.%I RENAME TO %I'`);
}

/** Drops the table's `purpose` index under its version 1-2 name (if it is the table's). */
function dropLegacyIndex(schema: string, table: string, purpose: IndexPurpose): string {
  return forLegacyIndexes(schema, table, [purpose], `'DROP INDEX %I.%I /* %s */'`);
}

/** The table's indexes, as this version has them. */
function createIndexes(t: string, index: (purpose: IndexPurpose) => string): string[] {
  return [
    // Unfinished rows in claim order: the claim reads the first ready entries.
    `CREATE INDEX IF NOT EXISTS ${index("ready")} ON ${t} (created_at, id) WHERE status = 0`,
    // Per-key predecessor lookups for ordering "key", on a hash of the key (see version 2): the
    // claim compares the hashes, then the keys. hashtextextended rather than md5, which FIPS
    // builds refuse.
    `CREATE INDEX IF NOT EXISTS ${index("key")} ON ${t} (${KEY_HASH("key")}, id) WHERE status = 0`,
    `CREATE INDEX IF NOT EXISTS ${index("dead")} ON ${t} (id) WHERE status = 3`,
    `CREATE INDEX IF NOT EXISTS ${index("sent")} ON ${t} (sent_at) WHERE status = 1`,
  ];
}

/** Builds every statement for `schema`.`table` (both already checked). */
export function buildStatements(schema: string, table: string): Statements {
  const s = quote(schema);
  const t = `${s}.${quote(table)}`;
  const versions = `${s}.${quote(SCHEMA_TABLE)}`;
  const index = (purpose: IndexPurpose) => quote(indexName(table, purpose));
  const cache = new Map<string, PassSql>();
  // A claim handing out an id above the fence's high-water mark raises the mark to the
  // sequence's value (every id made so far, so the claims after it write nothing until newer
  // ids come), unless another claim holds the version row right now (its raise does it): a claim
  // never waits on another.
  const raiseMark = `raised AS (UPDATE ${versions} AS v
  SET id_mark = greatest((SELECT max(id::bigint) FROM claimed), ${SEQUENCE_VALUE("v.id_sequence")})
  WHERE v.table_name IN (SELECT l.table_name FROM ${versions} AS l
    WHERE l.table_name = '${table}' AND l.id_mark < (SELECT max(id::bigint) FROM claimed)
    FOR NO KEY UPDATE SKIP LOCKED))`;
  // The namespace, only while the id fence holds (see readVersion): read once per statement.
  const fencedIds = `ids AS MATERIALIZED (SELECT v.id_namespace, ${FENCE_SETTLED("v")} AS settled
  FROM ${versions} AS v WHERE v.table_name = '${table}' AND ${FENCE_HOLDS("v", t)})`;
  return {
    qualified: t,
    // CREATE SCHEMA needs the CREATE privilege on the database even when the schema exists:
    // only run it when it does not.
    schemaExists: "SELECT 1 FROM pg_namespace WHERE nspname = $1::text",
    createSchema: `CREATE SCHEMA IF NOT EXISTS ${s}`,
    prepare: [
      `CREATE TABLE IF NOT EXISTS ${versions} (
  table_name text PRIMARY KEY,
  version integer NOT NULL,
  id_namespace text NOT NULL,
  migrated_at timestamptz NOT NULL DEFAULT now(),
  id_sequence regclass,
  id_filenode oid,
  id_settings text,
  id_mark bigint
)`,
    ],
    // Probed before altering: ALTER needs to own the table even when the columns are there.
    fenceColumnsMissing: `SELECT 1 FROM pg_attribute WHERE attrelid = '${versions}'::regclass AND NOT attisdropped
  AND (attname = 'id_mark' OR (attname = 'id_sequence' AND atttypid = 'regclass'::regtype)) HAVING count(*) < 2`,
    addFenceColumns: [
      `ALTER TABLE ${versions} ADD COLUMN IF NOT EXISTS id_sequence regclass, ADD COLUMN IF NOT EXISTS id_filenode oid,
  ADD COLUMN IF NOT EXISTS id_settings text, ADD COLUMN IF NOT EXISTS id_mark bigint`,
      // Version 2 kept the sequence as an oid, which a dump restores as a number of no meaning.
      `ALTER TABLE ${versions} ALTER COLUMN id_sequence TYPE regclass USING id_sequence::oid::regclass`,
    ],
    tableExists: `SELECT to_regclass('${t}') IS NOT NULL`,
    create: [
      `CREATE TABLE IF NOT EXISTS ${t} (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  key text NOT NULL,
  value bytea NOT NULL,
  headers jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL,
  available_at timestamptz NOT NULL DEFAULT now(),
  lease_until timestamptz,
  claim_token text,
  retries integer NOT NULL DEFAULT 0,
  status smallint NOT NULL DEFAULT 0,
  last_error text,
  sent_at timestamptz
)`,
      // A table made before the version row (or whose row was lost) keeps its indexes.
      renameLegacyIndexes(schema, table),
      ...createIndexes(t, index),
    ],
    upgrades: [
      [
        // Version 1's per-key index, on the key itself: a btree entry holds at most ~2,700
        // bytes, and a key may be 1,024 characters of 3 UTF-8 bytes each (the INSERT, inside
        // the caller's transaction, would fail). Version 3 makes it again on the hash.
        dropLegacyIndex(schema, table, "key"),
      ],
      [
        // Version 3: index names of their own (`edge_outbox_<table>_<purpose>`), which no other
        // table's name meets (`outbox` had `outbox_key`, the name of a possible second outbox).
        renameLegacyIndexes(schema, table),
        ...createIndexes(t, index),
      ],
    ],
    lock: "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))",
    readVersion: `SELECT version, id_namespace, ${FENCE_HOLDS("v")}, v.id_mark IS NOT NULL AND ${FENCE_SETTLED("v")}
FROM ${versions} AS v WHERE table_name = $1::text`,
    fenceHolds: `SELECT ${FENCE_HOLDS("v", t)} FROM ${versions} AS v WHERE table_name = $1::text`,
    writeVersion: `WITH sequence AS (SELECT pg_get_serial_sequence('${t}', 'id')::regclass AS seq)
INSERT INTO ${versions} (table_name, version, id_namespace, id_sequence, id_filenode, id_settings, id_mark)
SELECT $1::text, $2::integer, $3::text, seq, ${FENCE_NOW("sequence.seq")} FROM sequence
ON CONFLICT (table_name) DO UPDATE SET version = excluded.version, id_namespace = excluded.id_namespace,
  id_sequence = excluded.id_sequence, id_filenode = excluded.id_filenode, id_settings = excluded.id_settings,
  id_mark = excluded.id_mark, migrated_at = now()`,
    renewIds: `UPDATE ${versions} AS v SET id_namespace = $2::text, (id_filenode, id_settings, id_mark) = (SELECT ${FENCE_NOW("v.id_sequence")}),
  migrated_at = now()
WHERE v.table_name = $1::text AND NOT ${FENCE_HOLDS("v", t)} AND pg_relation_filenode(v.id_sequence) IS NOT NULL`,
    refence: `UPDATE ${versions} AS v SET (id_filenode, id_settings, id_mark) = (SELECT ${FENCE_NOW("v.id_sequence")})
WHERE v.table_name = $1::text AND ${FENCE_HOLDS("v", t)} AND NOT ${FENCE_SETTLED("v")}`,
    insert: `INSERT INTO ${t} (key, value, headers, created_at) VALUES ($1::text, $2::bytea, $3::text::jsonb, $4::timestamptz)`,
    insertNotify: `WITH added AS (
  INSERT INTO ${t} (key, value, headers, created_at) VALUES ($1::text, $2::bytea, $3::text::jsonb, $4::timestamptz) RETURNING 1
)
SELECT pg_notify($5::text, '') FROM added`,
    pass(shape, keep) {
      const id = shape.claim ? `claim${+shape.keyed}` : `${+shape.sent}${+shape.retry}${+shape.dead}${+keep}`;
      let sql = cache.get(id);
      if (sql === undefined) {
        sql = passStatement(t, fencedIds, raiseMark, shape, keep);
        cache.set(id, sql);
      }
      return sql;
    },
    release: `WITH ${fencedIds}, released AS (
  UPDATE ${t} SET lease_until = NULL, claim_token = NULL,
    available_at = greatest(available_at, now() + $4::integer * interval '1 millisecond')
  WHERE id = ANY(string_to_array($2::text, ',')::bigint[]) AND claim_token = $1::text AND status = 0
    AND EXISTS (SELECT 1 FROM ids WHERE ids.id_namespace = $3::text)
  RETURNING 1
)
SELECT count(*)::integer FROM released`,
    // Each count reads one partial index; the oldest is the first ready-index entry.
    stats: `SELECT
  (SELECT count(*) FROM ${t} WHERE status = 0)::float8,
  (SELECT count(*) FROM ${t} WHERE status = 0 AND lease_until > now())::float8,
  (SELECT count(*) FROM ${t} WHERE status = 3)::float8,
  (SELECT (extract(epoch from min(created_at)) * 1000)::float8 FROM ${t} WHERE status = 0)`,
    listDead: `WITH ${fencedIds}
SELECT (SELECT id_namespace FROM ids), (SELECT settled FROM ids), ${RECORD("m")} FROM ${t} AS m WHERE m.status = 3 ORDER BY m.id LIMIT $1::bigint`,
    requeueAll: `WITH requeued AS (
  UPDATE ${t} SET status = 0, retries = 0, available_at = now(), lease_until = NULL, claim_token = NULL
  WHERE status = 3 RETURNING 1
)
SELECT count(*)::integer FROM requeued`,
    requeueIds: `WITH ${fencedIds}, requeued AS (
  UPDATE ${t} SET status = 0, retries = 0, available_at = now(), lease_until = NULL, claim_token = NULL
  WHERE status = 3 AND id = ANY(string_to_array($1::text, ',')::bigint[])
    AND EXISTS (SELECT 1 FROM ids WHERE ids.id_namespace = $2::text) RETURNING 1
)
SELECT count(*)::integer FROM requeued`,
    purgeBefore: `WITH purged AS (DELETE FROM ${t} WHERE status = 1 AND sent_at < $1::timestamptz RETURNING 1)
SELECT count(*)::integer FROM purged`,
    purgeOlderThan: `WITH purged AS (
  DELETE FROM ${t} WHERE status = 1 AND sent_at < now() - $1::float8 * interval '1 millisecond' RETURNING 1
)
SELECT count(*)::integer FROM purged`,
  };
}

/**
 * One pass as one statement: the marks (data-modifying CTEs) of an outcome, or a claim. The
 * result has one row: the three mark counts; a claim's has one row per claimed message (or one
 * row of NULLs when none), each led by zero counts and the namespace of the ids it hands out
 * (NULL, claiming nothing, when the id fence is broken).
 *
 * The claim's SELECT is a MATERIALIZED CTE so that it runs exactly once: `FOR UPDATE SKIP
 * LOCKED` skips rows another relay is claiming right now instead of waiting for them, and a row
 * another relay claimed and committed meanwhile fails the recheck of the readiness test.
 */
function passStatement(
  t: string,
  fencedIds: string,
  raiseMark: string,
  shape: PassShape,
  keep: boolean,
): PassSql {
  const args: PassArg[] = [];
  const $ = (name: PassArg, type: string) => {
    let n = args.indexOf(name);
    if (n < 0) n = args.push(name) - 1;
    return `$${n + 1}::${type}`;
  };
  const ids = (name: PassArg) => `string_to_array(${$(name, "text")}, ',')::bigint[]`;
  // The fence first: the marks act only on ids of the namespace it holds, the claim only while
  // it holds (the store renews the namespace, then claims).
  const ctes: string[] = [fencedIds];
  // `args` is filled as the text names its arguments.
  if (shape.claim) return { text: claimText(t, ctes, raiseMark, shape.keyed, $), args };
  const mine = (m: string) =>
    `${m}.claim_token = ${$("token", "text")} AND ${m}.status = 0
    AND EXISTS (SELECT 1 FROM ids WHERE ids.id_namespace = ${$("namespace", "text")})`;
  if (shape.sent) {
    ctes.push(
      keep
        ? `sent AS (UPDATE ${t} AS m SET status = 1, sent_at = clock_timestamp(), lease_until = NULL, claim_token = NULL
  WHERE m.id = ANY(${ids("sent")}) AND ${mine("m")} RETURNING 1)`
        : `sent AS (DELETE FROM ${t} AS m WHERE m.id = ANY(${ids("sent")}) AND ${mine("m")} RETURNING 1)`,
    );
  }
  if (shape.retry) {
    ctes.push(`retried AS (UPDATE ${t} AS m SET retries = m.retries + 1,
    available_at = now() + u.delay * interval '1 millisecond', last_error = u.e, lease_until = NULL, claim_token = NULL
  FROM jsonb_to_recordset(${$("retry", "text")}::jsonb) AS u(id bigint, delay float8, e text)
  WHERE m.id = u.id AND ${mine("m")} RETURNING 1)`);
  }
  if (shape.dead) {
    ctes.push(`dead AS (UPDATE ${t} AS m SET status = 3, last_error = u.e, lease_until = NULL, claim_token = NULL
  FROM jsonb_to_recordset(${$("dead", "text")}::jsonb) AS u(id bigint, e text)
  WHERE m.id = u.id AND ${mine("m")} RETURNING 1)`);
  }
  const count = (cte: string, present: boolean) => (present ? `(SELECT count(*) FROM ${cte})::integer` : "0");
  const counts = `${count("sent", shape.sent)}, ${count("retried", shape.retry)}, ${count("dead", shape.dead)}`;
  return { text: `WITH ${ctes.join(",\n")}\nSELECT ${counts}`, args };
}

/** The claim of {@link passStatement}: `ctes` holds the id fence; `$` numbers its arguments. */
function claimText(
  t: string,
  ctes: string[],
  raiseMark: string,
  keyed: boolean,
  $: (name: PassArg, type: string) => string,
): string {
  const older = keyed
    ? `\n    AND NOT EXISTS (SELECT 1 FROM ${t} AS o WHERE o.status = 0 AND ${KEY_HASH("o.key")} = ${KEY_HASH("c.key")}
      AND o.key = c.key AND o.id < c.id)`
    : "";
  ctes.push(`picked AS MATERIALIZED (SELECT c.id FROM ${t} AS c
  WHERE c.status = 0 AND c.available_at <= now() AND (c.lease_until IS NULL OR c.lease_until <= now())
    AND EXISTS (SELECT 1 FROM ids)${older}
  ORDER BY c.created_at, c.id LIMIT ${$("limit", "bigint")}
  FOR UPDATE OF c SKIP LOCKED)`);
  // A row whose lease ran out counts that lost attempt, exactly as MemoryStore does.
  ctes.push(`claimed AS (UPDATE ${t} AS m SET claim_token = ${$("claim", "text")},
    lease_until = clock_timestamp() + ${$("lease", "float8")} * interval '1 millisecond',
    retries = m.retries + (m.lease_until IS NOT NULL)::integer,
    last_error = CASE WHEN m.lease_until IS NULL THEN m.last_error ELSE 'lease expired before the outcome was recorded' END
  FROM picked WHERE m.id = picked.id
  RETURNING ${RECORD("m")})`);
  ctes.push(raiseMark);
  // An UPDATE returns its rows in no set order (the join with `picked` decides it), so the
  // claimed rows are ordered here as `picked` chose them: oldest first, then by id. created_ms
  // holds whole milliseconds (every created_at is written from a JavaScript Date), exact in a
  // float8; the id is compared as a number (its text form would put "10" before "9").
  return `WITH ${ctes.join(",\n")}
SELECT 0, 0, 0, (SELECT id_namespace FROM ids), (SELECT settled FROM ids), c.*
FROM (SELECT 1) AS one LEFT JOIN claimed AS c ON true
ORDER BY c.created_ms, c.id::bigint`;
}
