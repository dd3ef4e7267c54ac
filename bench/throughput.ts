/**
 * Benchmark 1: relay throughput on a libSQL file database with a null sender, batch sizes 10,
 * 100 and 1000, against a hand-written minimal relay (lib/minimal-relay.ts) on the same client
 * and a table of the same schema (a second LibsqlStore table, so the indexes are the same).
 */

import { LibsqlStore } from "../adapters/libsql.ts";
import { Outbox } from "../mod.ts";
import { minimalRelayDrain } from "./lib/minimal-relay.ts";
import { type Benchmark, num, ratio, type Section, type Table } from "./lib/report.ts";
import { nullSender } from "./lib/senders.ts";
import { interleave, median } from "./lib/stats.ts";
import { openStore, timedDrain } from "./lib/store.ts";
import { claimByValueSize } from "./lib/value-size.ts";

/** The store alone, no relay: fetchAndLock + markAsSent until empty. Returns messages marked. */
async function storeLoop(store: LibsqlStore, batchSize: number): Promise<number> {
  let total = 0;
  for (;;) {
    const claim = await store.fetchAndLock({ batchSize, leaseDuration: 30_000, ordering: "none" });
    if (claim.messages.length === 0) return total;
    total += await store.markAsSent(
      claim.token,
      claim.messages.map((m) => m.id),
    );
  }
}

export const throughputBenchmark: Benchmark = {
  id: 1,
  slug: "throughput",
  title: "Relay throughput, libSQL file, null sender",
  async run({ quick, tmpDir }): Promise<Section> {
    // Many short rounds (about 20 passes each), the sides interleaved: on a shared machine with an
    // fsync at every commit, only that keeps the noise off the ratios.
    // Small batches make short rounds, so they get more of them: the same spread in less time.
    const planFor = (batchSize: number) =>
      quick
        ? { warmup: 1, rounds: 5 }
        : { warmup: 2, rounds: batchSize === 10 ? 61 : batchSize === 100 ? 31 : 21 };
    const fixture = await openStore(tmpDir, "throughput");
    const { client, store } = fixture;
    // Same schema and indexes as the store's table: made by a second LibsqlStore.
    const raw = new LibsqlStore(client, { table: "raw_outbox" });
    const bare = new LibsqlStore(client, { table: "store_only" });
    await raw.migrate();
    await bare.migrate();
    const rows: string[][] = [];
    let worst = Number.POSITIVE_INFINITY;
    let sizes: Table | undefined;
    try {
      for (const batchSize of [10, 100, 1000]) {
        const n = batchSize * (batchSize === 1000 ? 10 : 20);
        const outbox = new Outbox(store, nullSender, { batchSize });
        const [baseline, storeOnly, ours] = await interleave(planFor(batchSize), [
          () => timedDrain(raw, n, () => minimalRelayDrain(client, raw.table, batchSize)),
          () => timedDrain(bare, n, () => storeLoop(bare, batchSize)),
          () => timedDrain(store, n, async () => (await outbox.tick()).sent),
        ]);
        const base = median(baseline!);
        const r = median(ours!) / base;
        worst = Math.min(worst, r);
        rows.push([
          String(batchSize),
          num(n),
          num(base),
          `${num(median(storeOnly!))} (${ratio(median(storeOnly!) / base)})`,
          num(median(ours!)),
          ratio(r),
        ]);
      }
      sizes = await claimByValueSize(
        client,
        raw.table,
        bare,
        quick ? { warmup: 1, rounds: 3 } : { warmup: 2, rounds: 15 },
      );
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
            "LibsqlStore alone (msg/s, ratio)",
            "edge-outbox tick() (msg/s)",
            "ratio",
          ],
          rows,
        },
        ...(sizes === undefined ? [] : [sizes]),
      ],
      notes: [
        `Median of ${planFor(10).rounds} / ${planFor(100).rounds} / ${planFor(1000).rounds} rounds (batch 10 / 100 / 1000) after ${planFor(10).warmup} warm-up, the three sides interleaved (order rotated per round); each round loads 20 batches of messages (10 at batch size 1000; not timed), then drains them (timed). One client, one file (WAL, synchronous FULL), three tables of LibsqlStore's schema.`,
        "Minimal relay: one UPDATE ... RETURNING claim and one DELETE ... json_each mark per batch, rows used as the driver returns them; no message objects, no telemetry, no timeout.",
        "LibsqlStore alone: fetchAndLock + markAsSent in a loop, no Outbox (so two write transactions per pass, where tick() pipelines into one): splits the figure into store (SQL and decoding) and relay (orchestration, sender call, telemetry).",
        "By value size: one claim of a batch of random values, the minimal relay's UPDATE ... RETURNING vs fetchAndLock, interleaved, median of the rounds. The one-row read carries values up to 2 KiB; larger ones are read by id after the claim commits (concatenating them inside SQLite would copy more than reading rows).",
      ],
    };
  },
};
