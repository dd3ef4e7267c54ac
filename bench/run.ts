/**
 * Runs the benchmarks of issue 7 and prints their results as Markdown (the body of
 * BENCHMARKS.md).
 *
 *   npm run bench                       # every benchmark, full sizes (a few minutes on 2 cores)
 *   npm run bench -- --quick            # every benchmark, small sizes and fewer rounds
 *   npm run bench -- --only 1,http      # some benchmarks, by number or slug
 *   npm run bench -- --out results.md   # also write the Markdown to a file
 *   npm run bench -- --list             # the benchmarks and their slugs
 */
import { writeFileSync } from "node:fs";
import { arch, cpus, platform, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { benchmarks } from "./all.ts";
import { tempDir } from "./lib/db.ts";
import { type Benchmark, markdownSection, type Section } from "./lib/report.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string" },
    list: { type: "boolean", default: false },
  },
});

if (values.list) {
  for (const b of benchmarks) console.log(`${b.id}  ${b.slug.padEnd(12)} ${b.title}`);
  process.exit(0);
}

function select(only: string | undefined): Benchmark[] {
  if (!only) return benchmarks;
  const wanted = only.split(",").map((s) => s.trim());
  const chosen = benchmarks.filter((b) => wanted.includes(String(b.id)) || wanted.includes(b.slug));
  const unknown = wanted.filter((w) => !benchmarks.some((b) => String(b.id) === w || b.slug === w));
  if (unknown.length > 0) {
    console.error(`unknown benchmark(s): ${unknown.join(", ")}; see --list`);
    process.exit(2);
  }
  return chosen;
}

/**
 * Lets the previous benchmark's garbage (and the libSQL driver's finalizers, which run after a
 * collection) go before the next one starts, so that one benchmark's heap does not bill the
 * next. `npm run bench` starts Node with --expose-gc.
 */
async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 2; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const chosen = select(values.only);
const quick = values.quick ?? false;
const tmp = tempDir();
const sections: Section[] = [];
const started = performance.now();
const argv = process.argv.slice(2).join(" ");
const header = [
  `Command: \`npm run bench${argv ? ` -- ${argv}` : ""}\``,
  `Machine: ${cpus().length} x ${cpus()[0]?.model.trim() ?? "unknown CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${platform()} ${arch()}, Node ${process.version}`,
  `Date: ${new Date().toISOString()}`,
];
console.log(header.map((l) => `${l}  `).join("\n"));
try {
  for (const benchmark of chosen) {
    await settle();
    const t0 = performance.now();
    console.error(`# ${benchmark.id}. ${benchmark.title} ...`);
    const section = await benchmark.run({ quick, tmpDir: tmp.dir });
    sections.push(section);
    console.log(`\n${markdownSection(section)}\n`);
    console.error(`# ${benchmark.id} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
} finally {
  tmp.cleanup();
}
const total = `Total time: ${((performance.now() - started) / 1000).toFixed(1)} s`;
console.log(total);
if (values.out) {
  const body = [header.map((l) => `${l}  `).join("\n"), ...sections.map(markdownSection), total].join("\n\n");
  writeFileSync(values.out, `${body}\n`);
}
