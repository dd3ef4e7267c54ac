/**
 * Benchmark 2: `outbox.addMessage` inside a write transaction against a raw INSERT of the same
 * row (same table, same columns, same values) in the same kind of transaction. Two shapes: one
 * message per transaction (an order per request, the commit dominates) and 100 per transaction
 * (the per-message work shows).
 */
import type { Client, Transaction } from "@libsql/client";
import type { LibsqlTx } from "../adapters/libsql.ts";
import { Outbox } from "../mod.ts";
import { type Benchmark, num, ratio, type Section } from "./lib/report.ts";
import { nullSender } from "./lib/senders.ts";
import { interleaved, median } from "./lib/stats.ts";
import { openStore } from "./lib/store.ts";
import { orderMessage } from "./lib/workload.ts";

const encoder = new TextEncoder();

/** The row LibsqlStore writes for a message, written by hand. */
function rawInsert(tx: Transaction, table: string, i: number): Promise<unknown> {
  const m = orderMessage(i);
  const now = Date.now();
  return tx.execute({
    sql: `INSERT INTO "${table}" (key, value, headers, created_at, available_at) VALUES (?1, ?2, ?3, ?4, ?4)`,
    args: [m.key, encoder.encode(m.value as string), JSON.stringify(m.headers ?? {}), now],
  });
}

/** Runs `transactions` write transactions of `perTx` writes each; returns messages per second. */
async function run(
  client: Client,
  transactions: number,
  perTx: number,
  write: (tx: Transaction, i: number) => Promise<unknown>,
): Promise<number> {
  let i = 0;
  const started = performance.now();
  for (let t = 0; t < transactions; t++) {
    const tx = await client.transaction("write");
    try {
      for (let k = 0; k < perTx; k++) await write(tx, i++);
      await tx.commit();
    } finally {
      tx.close();
    }
  }
  return i / ((performance.now() - started) / 1000);
}

export const addMessageBenchmark: Benchmark = {
  id: 2,
  slug: "add",
  title: "addMessage in a transaction vs a raw INSERT of the same row",
  async run({ quick, tmpDir }): Promise<Section> {
    const plan = quick ? { warmup: 1, rounds: 3 } : { warmup: 1, rounds: 7 };
    const fixture = await openStore(tmpDir, "add");
    const { client, store } = fixture;
    const outbox = new Outbox<LibsqlTx>(store, nullSender);
    const rows: string[][] = [];
    let worst = Number.POSITIVE_INFINITY;
    try {
      for (const [transactions, perTx] of quick
        ? [
            [200, 1],
            [20, 100],
          ]
        : [
            [1_000, 1],
            [100, 100],
          ]) {
        const { a: raw, b: ours } = await interleaved(
          plan,
          () => run(client, transactions!, perTx!, (tx, i) => rawInsert(tx, store.table, i)),
          () => run(client, transactions!, perTx!, (tx, i) => outbox.addMessage(tx, orderMessage(i))),
        );
        const r = median(ours) / median(raw);
        worst = Math.min(worst, r);
        rows.push([String(perTx), num(transactions!), num(median(raw)), num(median(ours)), ratio(r)]);
        // Keep the table from growing across shapes.
        await client.execute(`DELETE FROM "${store.table}"`);
      }
    } finally {
      fixture.close();
    }
    return {
      id: 2,
      title: this.title,
      target: "addMessage >= 0.9x the raw INSERT",
      verdict: worst >= 0.9 ? "met" : "missed",
      tables: [
        {
          header: [
            "messages per transaction",
            "transactions per round",
            "raw INSERT (msg/s)",
            "addMessage (msg/s)",
            "ratio",
          ],
          rows,
        },
      ],
      notes: [
        `Each transaction: client.transaction("write"), the writes, commit (WAL, synchronous FULL: one fsync per commit). Median of ${plan.rounds} rounds, interleaved.`,
        "Raw INSERT: the same columns and values LibsqlStore writes (key, UTF-8 bytes, headers JSON, timestamps), no validation.",
      ],
    };
  },
};
