/**
 * Benchmark 7: 1, 2 and 4 relay processes on one database file. Total throughput (messages
 * over the wall time from the common start to the last process done) and deliveries per id
 * across all processes: every message exactly once. The harness (`relayProcesses`,
 * `processesTable`) is shared with the PostgreSQL benchmark (pg-processes.ts).
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

/** What one run of `processes` relays measured. */
export interface ProcessesRun {
  rate: number;
  delivered: number;
  duplicates: number;
  errors: number;
  shares: number[];
}

/** One run: `n` messages, `processes` relays; returns throughput and delivery counts. */
async function runOnce(dir: string, n: number, processes: number, batchSize: number) {
  const fixture = await openStore(dir, `procs-${processes}`);
  await fillStore(fixture.store, n);
  fixture.close();
  return relayProcesses([fixture.path, String(batchSize)], n, processes);
}

/**
 * Starts `processes` relay children (lib/relay-child.ts with `args`: the database, the batch
 * size, and for PostgreSQL the table), lets them drain `n` loaded messages from a common start,
 * and counts deliveries per id across all of them.
 */
export async function relayProcesses(args: string[], n: number, processes: number): Promise<ProcessesRun> {
  const children = await Promise.all(
    Array.from({ length: processes }, () => spawnTs(benchFile("lib/relay-child.ts"), args)),
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
    const { table, allExact } = await processesTable(n, rounds, (processes) =>
      runOnce(tmpDir, n, processes, batchSize),
    );
    return {
      id: 7,
      title: this.title,
      target: "zero duplicates and nothing missing with any number of processes; throughput reported",
      verdict: allExact ? "met" : "missed",
      tables: [table],
      notes: [
        `${num(n)} messages loaded first, then every process (node + tsx, own libSQL client) starts on a common signal and drains with tick(); batchSize ${batchSize}, a null sender that records ids; median of ${rounds} round(s). Deliveries are counted per id across all processes.`,
      ],
    };
  },
};

/** Runs 1, 2 and 4 processes `rounds` times each; the report's table, and whether every run delivered each message once. */
/**
 * Runs 1, 2 and 4 processes `rounds` times each: the report's table, and whether every run
 * delivered each message exactly once.
 */
export async function processesTable(
  n: number,
  rounds: number,
  runOnce: (processes: number) => Promise<ProcessesRun>,
): Promise<{ table: { header: string[]; rows: string[][] }; allExact: boolean }> {
  const rows: string[][] = [];
  let base = Number.NaN;
  let allExact = true;
  for (const processes of [1, 2, 4]) {
    const runs = [];
    for (let r = 0; r < rounds; r++) runs.push(await runOnce(processes));
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
    allExact,
    table: {
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
  };
}
