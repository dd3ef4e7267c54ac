/**
 * Benchmark 15: commit-to-delivery latency on PostgreSQL, a relay woken by LISTEN/NOTIFY
 * (`store.listen(() => outbox.wake())`) against the same relay polling at the default period.
 * The writer commits orders on its own pool (as another process would, the NOTIFY goes through
 * the server); the sender notes when each message reaches it.
 */
import pg from "pg";
import { PostgresStore } from "../adapters/postgres.ts";
import { Outbox, prepareMessage } from "../mod.ts";
import { benchDatabase } from "./lib/postgres.ts";
import { type Benchmark, num, ratio, type Section } from "./lib/report.ts";
import { latencySender } from "./lib/senders.ts";
import { percentile, sleep } from "./lib/stats.ts";
import { orderMessage } from "./lib/workload.ts";

/** Outbox's default `period`: what a relay without a wake-up waits for. */
const DEFAULT_PERIOD = 5_000;

/** Commits `n` orders about `gapMs` apart; returns each one's commit-to-delivery latency in ms. */
async function measure(url: string, n: number, gapMs: number, listen: boolean): Promise<number[]> {
  const relayPool = new pg.Pool({ connectionString: url, max: 3 });
  const writerPool = new pg.Pool({ connectionString: url, max: 1 });
  const table = listen ? "latency_notify" : "latency_poll";
  const relayStore = new PostgresStore(relayPool, { table, notify: true });
  const writerStore = new PostgresStore<pg.PoolClient>(writerPool, { table, notify: true });
  await relayStore.migrate();
  await writerPool.query("CREATE TABLE IF NOT EXISTS orders (id integer PRIMARY KEY, body text NOT NULL)");
  const committedAt = new Map<string, number>();
  const latencies: number[] = [];
  const outbox = new Outbox(relayStore, latencySender(committedAt, latencies), { batchSize: 100 });
  outbox.start();
  const unlisten = listen ? await relayStore.listen(() => outbox.wake()) : undefined;
  try {
    for (let i = 0; i < n; i++) {
      const key = `latency:${listen ? "n" : "p"}:${i}`;
      const message = prepareMessage({ ...orderMessage(i), key }, { maxMessageBytes: 1 << 20 });
      await writerStore.withTransaction(async (tx) => {
        await tx.query("INSERT INTO orders (id, body) VALUES ($1, $2) ON CONFLICT DO NOTHING", [
          i,
          String(orderMessage(i).value),
        ]);
        await writerStore.addMessage(tx, message);
      });
      committedAt.set(key, performance.now());
      // Uneven gaps, so the commits fall at every phase of the polling period.
      await sleep(gapMs + ((i * 137) % 211));
    }
    const deadline = Date.now() + DEFAULT_PERIOD * 2;
    while (latencies.length < n && Date.now() < deadline) await sleep(10);
  } finally {
    await unlisten?.();
    await outbox.stop();
    await relayPool.end();
    await writerPool.end();
  }
  if (latencies.length < n) throw new Error(`only ${latencies.length} of ${n} messages delivered`);
  return latencies;
}

export const postgresLatencyBenchmark: Benchmark = {
  id: 15,
  slug: "pg-latency",
  title: "PostgreSQL commit-to-delivery latency: LISTEN/NOTIFY wake vs polling at the default period",
  async run({ quick }): Promise<Section> {
    const n = quick ? 12 : 40;
    const gap = 150;
    const database = await benchDatabase("latency");
    try {
      const polled = await measure(database.url, n, gap, false);
      const notified = await measure(database.url, n, gap, true);
      const row = (name: string, xs: number[]) => [
        name,
        num(percentile(xs, 50), 1),
        num(percentile(xs, 99), 1),
        num(Math.max(...xs), 1),
      ];
      return {
        id: 15,
        title: this.title,
        target: "informational (NOTIFY should cut latency to the cost of one pass)",
        verdict: "info",
        tables: [
          {
            header: ["wake-up", "p50 (ms)", "p99 (ms)", "max (ms)"],
            rows: [
              row(`polling, period ${num(DEFAULT_PERIOD)} ms (the default)`, polled),
              row("LISTEN/NOTIFY (`store.listen(() => outbox.wake())`)", notified),
            ],
          },
          {
            header: ["polling / NOTIFY (how many times sooner)", "p50", "p99"],
            rows: [
              [
                "",
                ratio(percentile(polled, 50) / percentile(notified, 50)),
                ratio(percentile(polled, 99) / percentile(notified, 99)),
              ],
            ],
          },
        ],
        notes: [
          `${n} orders per side, each committed alone (order row + message in one transaction on the writer's own node-postgres Pool), ${gap}-${gap + 210} ms apart; the relay's PostgresStore (notify: true) on another Pool, batchSize 100, a sender that marks sent; the local PostgreSQL 15.`,
          "Latency: from COMMIT resolving on the writer to the message reaching the relay's sender. The NOTIFY is sent by the writer's INSERT statement and delivered by the server at commit.",
        ],
      };
    } finally {
      await database.drop();
    }
  },
};
