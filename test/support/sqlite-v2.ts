/**
 * A database made by schema version 2 of the SQLite stores (LibsqlStore, D1Store), its DDL
 * verbatim as edge-outbox ran it before version 3 (kept here, not in the library, so that the
 * upgrade is tested against what old code really made), with rows in every state.
 */

/** A valid id namespace (16 characters of the alphabet of `src/ids.ts`), as version 2 drew one. */
export const V2_NAMESPACE = "v2v2abcdefghjkmn";

/** Version 2's DDL for table `t` and its version row (namespace {@link V2_NAMESPACE}), statement by statement. */
export function v2Schema(t: string, options: { keyIndex?: boolean } = {}): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS edge_outbox_schema (
  table_name TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  migrated_at INTEGER NOT NULL,
  id_namespace TEXT,
  legacy_max_id INTEGER
)`,
    `CREATE TABLE IF NOT EXISTS "${t}" (
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
)`,
    `CREATE INDEX IF NOT EXISTS "edge_outbox_${t}_ready" ON "${t}" (created_at) WHERE status = 0`,
    `CREATE INDEX IF NOT EXISTS "edge_outbox_${t}_dead" ON "${t}" (status) WHERE status = 3`,
    `CREATE INDEX IF NOT EXISTS "edge_outbox_${t}_sent" ON "${t}" (sent_at) WHERE status = 1`,
    ...(options.keyIndex
      ? [`CREATE INDEX IF NOT EXISTS "edge_outbox_${t}_key" ON "${t}" (key) WHERE status = 0`]
      : []),
    `INSERT INTO edge_outbox_schema (table_name, version, migrated_at, id_namespace) VALUES ('${t}', 2, 0, '${V2_NAMESPACE}')`,
  ];
}

/**
 * Rows in every state as version 2's code left them, relative to `now` (ms): 1 pending, 2
 * retried once, 3 leased until `now + leaseMs`, 4 and 6 dead, 5 sent and kept (delivered a
 * minute ago), 7 the newest row, delivered and kept as the tombstone that keeps its id from
 * coming back. Created 1 ms apart in id order, except 2, created first (claims go oldest first).
 */
export function v2Rows(t: string, now: number, leaseMs: number): string[] {
  const row = (
    id: number,
    key: string,
    createdAt: number,
    rest: { status?: number; retries?: number; lease?: number; error?: string; sentAt?: number } = {},
  ) =>
    `INSERT INTO "${t}" (id, key, value, headers, created_at, available_at, lease_until, claim_token, retries, status, last_error, sent_at)
VALUES (${id}, '${key}', CAST('${key}' AS BLOB), '{"h":"2"}', ${createdAt}, ${createdAt}, ${rest.lease ?? "NULL"},
  ${rest.lease ? "'old-token'" : "NULL"}, ${rest.retries ?? 0}, ${rest.status ?? 0}, ${rest.error ? `'${rest.error}'` : "NULL"}, ${rest.sentAt ?? "NULL"})`;
  const at = now - 10_000;
  return [
    row(1, "pending", at + 1),
    row(2, "retried", at, { retries: 1, error: "HTTP 503" }),
    row(3, "leased", at + 3, { lease: now + leaseMs }),
    row(4, "dead", at + 4, { status: 3, retries: 4, error: "HTTP 404" }),
    row(5, "kept-sent", at + 5, { status: 1, sentAt: now - 60_000 }),
    row(6, "dead-too", at + 2, { status: 3, retries: 4, error: "HTTP 410" }),
    row(7, "tombstone", at + 7, { status: 1, sentAt: now - 60_000 }),
  ];
}
