/**
 * Benchmark 1: relay throughput on a libSQL file database with a null sender, batch sizes 10,
 * 100 and 1000, against a hand-written minimal relay (lib/minimal-relay.ts) on the same client
 * and a table of the same schema (a second LibsqlStore table, so the indexes are the same).
 */

import { LibsqlStore } from "../adapters/libsql.ts";
import { Outbox } from "../mod.ts";
import { minimalRelayDrain } from "./lib/minimal-relay.ts";
import { type Benchmark, num, ratio, type Section } from "./lib/report.ts";
import { nullSender } from "./lib/senders.ts";
import { interleaved, median } from "./lib/stats.ts";
import { fillStore, openStore } from "./lib/store.ts";

export const throughputBenchmark: Benchmark = {
  id: 1,
  slug: "throughput",
  title: "Relay throughput, libSQL file, null sender",
  async run({ quick, tmpDir }): Promise<Section> {
    const plan = quick ? { warmup: 1, rounds: 3 } : { warmup: 1, rounds: 5 };
    const fixture = await openStore(tmpDir, "throughput");
    const { client, store } = fixture;
    const raw = new LibsqlStore(client, { table: "raw_outbox" });
    await raw.migrate();
    const rows: string[][] = [];
    let worst = Number.POSITIVE_INFINITY;
    try {
      for (const batchSize of [10, 100, 1000]) {
        const n = quick ? 2_000 : batchSize === 10 ? 10_000 : 20_000;
        const outbox = new Outbox(store, nullSender, { batchSize });
        const { a: baseline, b: ours } = await interleaved(
          plan,
          async () => {
            await fillStore(raw, n);
            const started = performance.now();
            const sent = await minimalRelayDrain(client, raw.table, batchSize);
            const seconds = (performance.now() - started) / 1000;
            if (sent !== n) throw new Error(`minimal relay sent ${sent} of ${n}`);
            return n / seconds;
          },
          async () => {
            await fillStore(store, n);
            const result = await outbox.tick();
            if (result.sent !== n) throw new Error(`outbox sent ${result.sent} of ${n}`);
            return n / (result.durationMs / 1000);
          },
        );
        const r = median(ours) / median(baseline);
        worst = Math.min(worst, r);
        rows.push([String(batchSize), num(n), num(median(baseline)), num(median(ours)), ratio(r)]);
      }
    } finally {
      fixture.close();
    }
    return {
      id: 1,
      title: this.title,
      target: "Outbox.tick() >= 1.0x the minimal relay",
      verdict: worst >= 1.0 ? "met" : "missed",
      tables: [
        {
          header: [
            "batch size",
            "messages per round",
            "minimal relay (msg/s)",
            "edge-outbox (msg/s)",
            "ratio",
          ],
          rows,
        },
      ],
      notes: [
        `Median of ${plan.rounds} rounds after ${plan.warmup} warm-up, the two sides interleaved; each round loads its messages first (not timed) and drains them (timed).`,
        "Minimal relay: one UPDATE ... RETURNING claim and one DELETE ... json_each mark per batch on a table with LibsqlStore's schema and indexes; no message objects, no telemetry, no timeout.",
      ],
    };
  },
};
