/**
 * Benchmark 6: resident set size while one relay moves 200k messages through a libSQL file
 * database. Sampled after every chunk (with a forced gc), the RSS must not grow with the total.
 */
import { benchFile, spawnTs } from "./lib/child.ts";
import { type Benchmark, num, ratio, type Section } from "./lib/report.ts";

interface Sample {
  relayed: number;
  rss: number;
  heap: number;
}

const MiB = 1024 * 1024;
const mib = (b: number) => num(b / MiB, 1);

/** Runs the relay child; `forceGc` adds --expose-gc so it collects before each sample. */
async function runChild(tmpDir: string, total: number, chunk: number, batchSize: number, forceGc: boolean) {
  const { hello } = await spawnTs(
    benchFile("lib/memory-child.ts"),
    [tmpDir, String(total), String(chunk), String(batchSize)],
    forceGc ? ["--expose-gc"] : [],
  );
  const { samples } = hello as { samples: Sample[] };
  // The first sample is before any work; the one after the first chunk is the warm baseline.
  const warm = samples[1]!;
  const last = samples[samples.length - 1]!;
  const max = Math.max(...samples.map((s) => s.rss));
  return { samples, warm, last, max, growth: last.rss / warm.rss };
}

export const memoryBenchmark: Benchmark = {
  id: 6,
  slug: "memory",
  title: "Memory: resident set while relaying 200k messages",
  async run({ quick, tmpDir }): Promise<Section> {
    const total = quick ? 20_000 : 200_000;
    const chunk = quick ? 2_000 : 10_000;
    const batchSize = 100;
    const kept = await runChild(tmpDir, total, chunk, batchSize, true);
    const natural = await runChild(tmpDir, total, chunk, batchSize, false);
    const picks = (samples: Sample[]) => [
      samples[1]!,
      samples[Math.floor(samples.length / 4)]!,
      samples[Math.floor(samples.length / 2)]!,
      samples[Math.floor((3 * samples.length) / 4)]!,
      samples[samples.length - 1]!,
    ];
    const byRelayed = picks(kept.samples).map((s, i) => {
      const n = picks(natural.samples)[i]!;
      return [num(s.relayed), mib(s.rss), mib(s.heap), mib(n.rss), mib(n.heap)];
    });
    const summary = (name: string, r: typeof kept) => [
      name,
      mib(r.warm.rss),
      mib(r.last.rss),
      mib(r.max),
      ratio(r.growth),
    ];
    return {
      id: 6,
      title: this.title,
      target: "flat: RSS after the last chunk within 1.10x of RSS after the first (forced gc)",
      verdict: kept.growth <= 1.1 ? "met" : "missed",
      tables: [
        {
          header: [
            "relayed so far",
            "RSS, forced gc (MiB)",
            "JS heap, forced gc (MiB)",
            "RSS, V8's own gc (MiB)",
            "JS heap, V8's own gc (MiB)",
          ],
          rows: byRelayed,
        },
        {
          header: [
            "run",
            "RSS after first chunk (MiB)",
            "last RSS (MiB)",
            "max RSS (MiB)",
            "growth last / first",
          ],
          rows: [summary("forced gc before each sample", kept), summary("V8's own gc schedule", natural)],
        },
      ],
      notes: [
        `${num(total)} messages in chunks of ${num(chunk)} (one transaction of addMessage each, then tick() with batchSize ${batchSize} and a null sender), ${kept.samples.length} samples per run, each run its own process and database.`,
        "Forced gc: node --expose-gc, two collections 20 ms apart before each sample (the libSQL driver frees a statement's native handle in a finalizer after a collection). V8's own gc: no forced collection, what a long-running relay actually holds.",
      ],
    };
  },
};
