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

export const memoryBenchmark: Benchmark = {
  id: 6,
  slug: "memory",
  title: "Memory: resident set while relaying 200k messages",
  async run({ quick, tmpDir }): Promise<Section> {
    const total = quick ? 20_000 : 200_000;
    const chunk = quick ? 2_000 : 10_000;
    const batchSize = 100;
    const { hello } = await spawnTs(
      benchFile("lib/memory-child.ts"),
      [tmpDir, String(total), String(chunk), String(batchSize)],
      ["--expose-gc"],
    );
    const { samples, gc } = hello as { samples: Sample[]; gc: boolean };
    // The first sample is before any work; the one after the first chunk is the warm baseline.
    const warm = samples[1]!;
    const last = samples[samples.length - 1]!;
    const max = samples.reduce((m, s) => (s.rss > m.rss ? s : m), warm);
    const growth = last.rss / warm.rss;
    const mib = (b: number) => num(b / MiB, 1);
    const picks = [samples[0]!, warm, samples[Math.floor(samples.length / 2)]!, last];
    return {
      id: 6,
      title: this.title,
      target: "flat: RSS after the last chunk within 1.10x of RSS after the first",
      verdict: growth <= 1.1 ? "met" : "missed",
      tables: [
        {
          header: ["relayed so far", "RSS (MiB)", "JS heap used (MiB)"],
          rows: picks.map((s) => [num(s.relayed), mib(s.rss), mib(s.heap)]),
        },
        {
          header: ["first warm RSS (MiB)", "last RSS (MiB)", "max RSS (MiB)", "growth last / first warm"],
          rows: [[mib(warm.rss), mib(last.rss), mib(max.rss), ratio(growth)]],
        },
      ],
      notes: [
        `${num(total)} messages in chunks of ${num(chunk)} (one transaction of addMessage each, then tick() with batchSize ${batchSize} and a null sender), ${samples.length} samples; gc forced before each sample: ${gc ? "yes (node --expose-gc)" : "no"}.`,
      ],
    };
  },
};
