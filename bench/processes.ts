/**
 * Benchmark 7: 1, 2 and 4 relay processes on one database file. Total throughput (messages
 * over the wall time from the common start to the last process done) and deliveries per id
 * across all processes: every message exactly once.
 */
import type { ChildProcess } from "node:child_process";
import { benchFile, nextJson, spawnTs } from "./lib/child.ts";
import { type Benchmark, num, ratio, type Section } from "./lib/report.ts";
import { median } from "./lib/stats.ts";
import { fillStore, openStore } from "./lib/store.ts";

interface ChildResult {
  ids: string[];
  startedAt: number;
  endedAt: number;
  errors: number;
}

/** One run: `n` messages, `processes` relays; returns throughput and delivery counts. */
async function runOnce(dir: string, n: number, processes: number, batchSize: number) {
  const fixture = await openStore(dir, `procs-${processes}`);
  await fillStore(fixture.store, n);
  fixture.close();
  const children = await Promise.all(
    Array.from({ length: processes }, () =>
      spawnTs(benchFile("lib/relay-child.ts"), [fixture.path, String(batchSize)]),
    ),
  );
  for (const { child } of children) (child as ChildProcess).stdin?.write("go\n");
  const results = await Promise.all(children.map(({ lines }) => nextJson<ChildResult>(lines)));
  const counts = new Map<string, number>();
  for (const r of results) for (const id of r.ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  let duplicates = 0;
  for (const c of counts.values()) if (c > 1) duplicates += c - 1;
  const start = Math.min(...results.map((r) => r.startedAt));
  const end = Math.max(...results.map((r) => r.endedAt));
  return {
    rate: n / ((end - start) / 1000),
    delivered: counts.size,
    duplicates,
    errors: results.reduce((s, r) => s + r.errors, 0),
    shares: results.map((r) => r.ids.length),
  };
}

export const processesBenchmark: Benchmark = {
  id: 7,
  slug: "processes",
  title: "Relay processes 1, 2, 4 on one database file",
  async run({ quick, tmpDir }): Promise<Section> {
    const n = quick ? 5_000 : 30_000;
    const rounds = quick ? 1 : 3;
    const batchSize = 100;
    const rows: string[][] = [];
    let base = Number.NaN;
    let allExact = true;
    for (const processes of [1, 2, 4]) {
      const runs = [];
      for (let r = 0; r < rounds; r++) runs.push(await runOnce(tmpDir, n, processes, batchSize));
      const rate = median(runs.map((x) => x.rate));
      if (processes === 1) base = rate;
      const duplicates = runs.reduce((s, x) => s + x.duplicates, 0);
      const missing = runs.reduce((s, x) => s + (n - x.delivered), 0);
      if (duplicates !== 0 || missing !== 0) allExact = false;
      rows.push([
        String(processes),
        num(rate),
        ratio(rate / base),
        String(duplicates),
        String(missing),
        String(runs.reduce((s, x) => s + x.errors, 0)),
        runs[runs.length - 1]!.shares.map((s) => num(s)).join(" / "),
      ]);
    }
    return {
      id: 7,
      title: this.title,
      target: "zero duplicates and nothing missing with any number of processes; throughput reported",
      verdict: allExact ? "met" : "missed",
      tables: [
        {
          header: [
            "processes",
            "total (msg/s)",
            "ratio vs 1 process",
            "duplicates",
            "missing",
            "passes failed busy (retried)",
            "share per process (last round)",
          ],
          rows,
        },
      ],
      notes: [
        `${num(n)} messages loaded first, then every process (node + tsx, own libSQL client) starts on a common signal and drains with tick(); batchSize ${batchSize}, a null sender that records ids; median of ${rounds} round(s). Deliveries are counted per id across all processes.`,
      ],
    };
  },
};
