/**
 * The baseline of benchmark 1: the least a relay on the same table can do. One claim statement
 * (`UPDATE ... RETURNING`, the same lease columns and the same ready index as LibsqlStore) and
 * one mark statement per batch, rows handed to the "sender" as the driver returns them: no
 * message objects, no validation, no backoff bookkeeping, no telemetry, no timeout.
 */
import type { Client } from "@libsql/client";

/** The minimal relay's claim of `table`: ?1 token, ?2 lease end, ?3 now, ?4 limit. */
export function minimalClaimSql(table: string): string {
  const q = `"${table}"`;
  return `UPDATE ${q} SET claim_token = ?1, lease_until = ?2
WHERE id IN (SELECT id FROM ${q} WHERE status = 0 AND available_at <= ?3
  AND (lease_until IS NULL OR lease_until <= ?3) ORDER BY created_at, id LIMIT ?4)
RETURNING id, key, value, headers, created_at, retries`;
}

/** Drains `table` with batches of `batchSize`; returns how many rows it marked sent. */
export async function minimalRelayDrain(client: Client, table: string, batchSize: number): Promise<number> {
  const q = `"${table}"`;
  const claim = minimalClaimSql(table);
  const mark = `DELETE FROM ${q} WHERE id IN (SELECT value FROM json_each(?1)) AND claim_token = ?2`;
  let total = 0;
  let token = 0;
  for (;;) {
    const now = Date.now();
    const t = `raw-${++token}`;
    const claimed = await client.execute({ sql: claim, args: [t, now + 30_000, now, batchSize] });
    if (claimed.rows.length === 0) return total;
    // The "send": a null sender needs nothing but the ids.
    const ids = claimed.rows.map((row) => row.id);
    const marked = await client.execute({ sql: mark, args: [`[${ids.join(",")}]`, t] });
    total += marked.rowsAffected;
  }
}
