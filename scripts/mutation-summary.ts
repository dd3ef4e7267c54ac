/**
 * Merges Stryker JSON reports into per-file mutation scores for the code as it is now.
 *
 *   npm run test:mutation:summary -- reports/mutation/a.json reports/mutation/b.json [--survivors]
 *
 * A mutant (same place, mutator and replacement) counts as detected (killed or timed out) when
 * any report detected it, but only reports whose copy of a file is the file as it is in the
 * working tree count for that file: a run on older code says nothing about the current one.
 * Ignored mutants (static ones, or marked with a `Stryker disable` comment) are left out of the
 * score and counted apart. Used for TESTING.md's figures, which come from several runs, each
 * over some files with the suites that exercise them.
 */
import { readFileSync } from "node:fs";

interface Mutant {
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number }; end: { line: number; column: number } };
}

interface Report {
  files: Record<string, { source: string; mutants: Mutant[] }>;
}

const DETECTED = new Set(["Killed", "Timeout"]);
const OUT_OF_SCORE = new Set(["Ignored", "CompileError", "RuntimeError"]);

const args = process.argv.slice(2);
const showSurvivors = args.includes("--survivors");
const reports = args.filter((a) => !a.startsWith("--"));
if (reports.length === 0) {
  console.error("usage: npm run test:mutation:summary -- <report.json>... [--survivors]");
  process.exit(2);
}

function currentSource(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

const merged = new Map<string, Map<string, Mutant>>();
const stale: string[] = [];
for (const path of reports) {
  const report = JSON.parse(readFileSync(path, "utf8")) as Report;
  for (const [file, { source, mutants }] of Object.entries(report.files)) {
    if (source !== currentSource(file)) {
      stale.push(`${file} in ${path}`);
      continue;
    }
    const byKey = merged.get(file) ?? new Map<string, Mutant>();
    merged.set(file, byKey);
    for (const mutant of mutants) {
      const { start, end } = mutant.location;
      const key = `${start.line}:${start.column}-${end.line}:${end.column} ${mutant.mutatorName} ${mutant.replacement}`;
      const before = byKey.get(key);
      if (before === undefined || (!DETECTED.has(before.status) && DETECTED.has(mutant.status))) {
        byKey.set(key, mutant);
      }
    }
  }
}

let total = 0;
let detected = 0;
for (const [file, byKey] of [...merged].sort(([a], [b]) => a.localeCompare(b))) {
  const scored = [...byKey.values()].filter((m) => !OUT_OF_SCORE.has(m.status));
  const found = scored.filter((m) => DETECTED.has(m.status)).length;
  const ignored = byKey.size - scored.length;
  total += scored.length;
  detected += found;
  const score = scored.length === 0 ? "-" : `${((100 * found) / scored.length).toFixed(1)}%`;
  console.log(
    `${file.padEnd(42)} ${`${found}/${scored.length}`.padStart(9)}  ${score}${ignored ? `  (${ignored} ignored)` : ""}`,
  );
  if (!showSurvivors) continue;
  const left = scored.filter((m) => !DETECTED.has(m.status));
  left.sort(
    (a, b) =>
      a.location.start.line - b.location.start.line || a.location.start.column - b.location.start.column,
  );
  for (const m of left) {
    const where = `${m.location.start.line}:${m.location.start.column}`;
    const note = m.status === "NoCoverage" ? " (no coverage)" : "";
    console.log(`    ${where} ${m.mutatorName}${note}: ${JSON.stringify(m.replacement ?? "").slice(0, 100)}`);
  }
}
console.log(
  `${"all".padEnd(42)} ${`${detected}/${total}`.padStart(9)}  ${((100 * detected) / Math.max(1, total)).toFixed(1)}%`,
);
if (stale.length > 0) console.log(`\nleft out (the file changed since that run):\n  ${stale.join("\n  ")}`);
