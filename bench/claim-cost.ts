/**
 * Benchmark 4: claim cost (`fetchAndLock` latency) with 1k, 100k and 1M pending rows in the
 * store's table. Rows are bulk-loaded with a recursive CTE straight into the migrated table;
 * each measured claim is released again (lease back in the past) so the backlog stays the size
 * it is meant to be.
 */
import type { Client } from "@libsql/client";
import type { LibsqlStore } from "../adapters/libsql.ts";
import type { Ordering } from "../mod.ts";
import { type Benchmark, num, ratio, type Section } from "./lib/report.ts";
import { median, percentile } from "./lib/stats.ts";
import { openStore } from "./lib/store.ts";

/** Adds pending rows until the table holds `target`; oldest first, 1 ms apart. */
async function loadUpTo(client: Client, table: string, from: number, target: number): Promise<void> {
  const base = Date.now() - 10_000_000;
  const value = new TextEncoder().encode(JSON.stringify({ type: "order.created", pad: "x".repeat(150) }));
  for (let start = from; start < target; start += 100_000) {
    const end = Math.min(target, start + 100_000);
    await client.execute({
      sql: `WITH RECURSIVE s(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?2)
INSERT INTO "${table}" (key, value, headers, created_at, available_at)
SELECT 'order:' || (i % 1000), ?3, '{}', ?4 + i, ?4 + i FROM s`,
      args: [start, end, value, base],
    });
  }
}

/** One claim of `batchSize`, released at once. Returns its latency in ms. */
async function claimOnce(store: LibsqlStore, batchSize: number, ordering: Ordering): Promise<number> {
  const started = performance.now();
  const claim = await store.fetchAndLock({ batchSize, leaseDuration: 30_000, ordering });
  const latency = performance.now() - started;
  if (claim.messages.length !== batchSize) throw new Error(`claimed ${claim.messages.length}`);
  // Release without counting an attempt, so the same head of the queue is claimed next time.
  const released = await store.release(
    claim.token,
    claim.messages.map((m) => m.id),
  );
  if (released !== batchSize) throw new Error(`released ${released}`);
  return latency;
}

export const claimCostBenchmark: Benchmark = {
  id: 4,
  slug: "claim",
  title: "Claim cost (fetchAndLock latency) vs pending rows",
  async run({ quick, tmpDir }): Promise<Section> {
    const sizes = quick ? [1_000, 10_000, 100_000] : [1_000, 100_000, 1_000_000];
    const rounds = quick ? 50 : 200;
    const shapes = [
      [100, "none"],
      [10, "none"],
      [100, "key"],
    ] as const;
    // One database per backlog size, and the claims interleaved across them, so that noise on
    // a shared machine (fsync stalls, other processes) falls on every size alike.
    const fixtures = await Promise.all(sizes.map((size) => openStore(tmpDir, `claim-${size}`)));
    const rows: string[][] = [];
    const medians = new Map<string, number[]>();
    const loadTimes: string[] = [];
    try {
      for (const [i, size] of sizes.entries()) {
        const { client, store } = fixtures[i]!;
        const t0 = performance.now();
        await loadUpTo(client, store.table, 0, size);
        loadTimes.push(`${num(size)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        await client.execute("PRAGMA wal_checkpoint(TRUNCATE)");
      }
      for (const [batchSize, ordering] of shapes) {
        const label = `batch ${batchSize}, ordering "${ordering}"`;
        const samples: number[][] = sizes.map(() => []);
        for (let r = -10; r < rounds; r++) {
          for (let k = 0; k < sizes.length; k++) {
            const i = (k + r + 10) % sizes.length; // rotate which size goes first
            const { store } = fixtures[i]!;
            const latency = await claimOnce(store, batchSize, ordering);
            if (r >= 0) samples[i]!.push(latency); // the first 10 rounds warm up
          }
        }
        medians.set(
          label,
          samples.map((xs) => median(xs)),
        );
        for (const [i, size] of sizes.entries()) {
          const xs = samples[i]!;
          rows.push([num(size), label, num(median(xs), 3), num(percentile(xs, 99), 3)]);
        }
      }
    } finally {
      for (const f of fixtures) f.close();
    }
    const ratios = [...medians].map(([label, xs]) => [label, ratio(xs[xs.length - 1]! / xs[0]!)]);
    const worst = Math.max(...[...medians.values()].map((xs) => xs[xs.length - 1]! / xs[0]!));
    return {
      id: 4,
      title: this.title,
      target: `flat: median claim at ${num(sizes[sizes.length - 1]!)} rows <= 1.5x the median at ${num(sizes[0]!)}`,
      verdict: worst <= 1.5 ? "met" : "missed",
      tables: [
        { header: ["pending rows", "claim", "median (ms)", "p99 (ms)"], rows },
        {
          header: ["claim", `ratio ${num(sizes[sizes.length - 1]!)} / ${num(sizes[0]!)} rows`],
          rows: ratios,
        },
      ],
      notes: [
        `${rounds} claims per cell after 10 warm-up rounds, interleaved across one database per size; each claim is released (lease cleared) with store.release, not timed. Bulk load (recursive CTE): ${loadTimes.join(", ")}.`,
        "The claim reads the state index's range of unfinished rows (schema version 3: `(status, CASE status WHEN 0 THEN created_at WHEN 1 THEN sent_at END)`, status 0 in created_at, id order) and stops after batchSize ready rows, so its cost should not depend on the backlog.",
      ],
    };
  },
};
