/**
 * Benchmark 5: commit-to-delivery latency, `wake()` after each commit against waiting for the
 * `start()` loop's period. One order message is committed at a time (a real write transaction
 * with its order row); the sender notes when each message reaches it.
 */
import type { LibsqlTx } from "../adapters/libsql.ts";
import { Outbox } from "../mod.ts";
import { type Benchmark, num, ratio, type Section } from "./lib/report.ts";
import { latencySender } from "./lib/senders.ts";
import { percentile, sleep } from "./lib/stats.ts";
import { openStore } from "./lib/store.ts";
import { orderMessage } from "./lib/workload.ts";

const PERIOD = 200;

/** Commits `n` orders `gapMs` apart; returns each one's commit-to-delivery latency in ms. */
async function measure(dir: string, n: number, gapMs: number, wake: boolean): Promise<number[]> {
  const fixture = await openStore(dir, wake ? "latency-wake" : "latency-period");
  const { client, store } = fixture;
  await client.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
  const committedAt = new Map<string, number>();
  const latencies: number[] = [];
  const outbox = new Outbox<LibsqlTx>(store, latencySender(committedAt, latencies), {
    period: PERIOD,
    batchSize: 100,
  });
  outbox.start();
  try {
    for (let i = 0; i < n; i++) {
      const message = orderMessage(i);
      const key = `latency:${i}`;
      // store.withTransaction waits (asynchronously) while the relay holds the write lock.
      await store.withTransaction(async (tx) => {
        await tx.execute({
          sql: "INSERT INTO orders (id, body) VALUES (?, ?)",
          args: [i, message.value as string],
        });
        await outbox.addMessage(tx, { ...message, key });
      });
      committedAt.set(key, performance.now());
      if (wake) outbox.wake();
      // Spread commits over the period so waiting for it shows its real distribution.
      await sleep(gapMs + (i % 7));
    }
    const deadline = Date.now() + 5_000;
    while (latencies.length < n && Date.now() < deadline) await sleep(10);
  } finally {
    await outbox.stop();
    fixture.close();
  }
  if (latencies.length < n) throw new Error(`only ${latencies.length} of ${n} messages delivered`);
  return latencies;
}

export const latencyBenchmark: Benchmark = {
  id: 5,
  slug: "latency",
  title: "Commit-to-delivery latency: wake() vs waiting for the period",
  async run({ quick, tmpDir }): Promise<Section> {
    const n = quick ? 40 : 200;
    const gap = 10;
    const period = await measure(tmpDir, n, gap, false);
    const woken = await measure(tmpDir, n, gap, true);
    const row = (name: string, xs: number[]) => [
      name,
      num(percentile(xs, 50), 1),
      num(percentile(xs, 99), 1),
      num(Math.max(...xs), 1),
    ];
    const p50 = percentile(woken, 50) / percentile(period, 50);
    const p99 = percentile(woken, 99) / percentile(period, 99);
    return {
      id: 5,
      title: this.title,
      target: "informational (wake() should cut latency to the cost of one pass)",
      verdict: "info",
      tables: [
        {
          header: ["trigger", "p50 (ms)", "p99 (ms)", "max (ms)"],
          rows: [row(`period ${PERIOD} ms (no wake)`, period), row("wake() after commit", woken)],
        },
        {
          header: ["ratio wake / period", "p50", "p99"],
          rows: [["", ratio(p50), ratio(p99)]],
        },
      ],
      notes: [
        `${n} orders, each committed alone (order row + message in one write transaction), about ${gap}-${gap + 6} ms apart; LibsqlStore on a file database, batchSize 100, a sender that marks sent.`,
        "Latency: from the commit resolving (store.withTransaction) to the message reaching the sender.",
      ],
    };
  },
};
