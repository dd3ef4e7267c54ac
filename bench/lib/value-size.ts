/**
 * Part of benchmark 1: what one claim costs as values grow. LibsqlStore returns a batch as one
 * row (small values end to end in one blob, which saves the driver's per-row work; values over
 * 2 KiB, which that would copy more than rows do, read by id after it); the minimal relay's
 * row-by-row `UPDATE ... RETURNING` is the baseline.
 */
import type { Client } from "@libsql/client";
import type { LibsqlStore } from "../../adapters/libsql.ts";
import { minimalClaimSql } from "./minimal-relay.ts";
import { num, ratio, type Table } from "./report.ts";
import { interleave, median, type RoundPlan } from "./stats.ts";

const SIZES = [
  { bytes: 200, batch: 100, label: "200 B" },
  { bytes: 8 << 10, batch: 100, label: "8 KiB" },
  { bytes: 64 << 10, batch: 100, label: "64 KiB" },
  { bytes: 1 << 20, batch: 10, label: "1 MiB" },
] as const;

/** Writes `batch` ready rows of `bytes` random bytes each into `table` (one statement). */
async function load(client: Client, table: string, batch: number, bytes: number): Promise<void> {
  const now = Date.now();
  await client.execute({
    sql: `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
INSERT INTO "${table}" (key, value, headers, created_at, available_at)
SELECT 'k:' || i, randomblob(?2), '{"content-type":"application/octet-stream"}', ?3 + i, ?3 + i FROM n`,
    args: [batch, bytes, now - batch - 1],
  });
}

/** Milliseconds for `claim` to take a batch loaded into `table`; the rows are deleted after. */
async function timedClaim(
  client: Client,
  table: string,
  size: (typeof SIZES)[number],
  claim: () => Promise<number>,
) {
  await load(client, table, size.batch, size.bytes);
  const started = performance.now();
  const claimed = await claim();
  const ms = performance.now() - started;
  if (claimed !== size.batch) throw new Error(`claimed ${claimed} of ${size.batch}`);
  await client.execute(`DELETE FROM "${table}"`);
  return ms;
}

/** The table of claim times by value size: minimal claim vs `store.fetchAndLock`. */
export async function claimByValueSize(
  client: Client,
  rawTable: string,
  store: LibsqlStore,
  plan: RoundPlan,
): Promise<Table> {
  const rows: string[][] = [];
  const minimal = minimalClaimSql(rawTable);
  for (const size of SIZES) {
    const [baseline, ours] = await interleave(plan, [
      () =>
        timedClaim(client, rawTable, size, async () => {
          const now = Date.now();
          const result = await client.execute({ sql: minimal, args: ["t", now + 30_000, now, size.batch] });
          return result.rows.length;
        }),
      () =>
        timedClaim(client, store.table, size, async () => {
          const claim = await store.fetchAndLock({
            batchSize: size.batch,
            leaseDuration: 30_000,
            ordering: "none",
          });
          return claim.messages.length;
        }),
    ]);
    const base = median(baseline!);
    const own = median(ours!);
    rows.push([size.label, String(size.batch), num(base, 2), num(own, 2), ratio(base / own)]);
  }
  return {
    caption:
      "One claim by value size (lower ms is better; ratio = minimal / LibsqlStore, above 1 is faster):",
    header: ["value size", "batch", "minimal claim (ms)", "LibsqlStore.fetchAndLock (ms)", "ratio"],
    rows,
  };
}
