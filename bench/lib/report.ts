/** What a benchmark hands back, and how the runner prints it as Markdown. */

/** One table of results: a header row and rows of already formatted cells. */
export interface Table {
  caption?: string;
  header: string[];
  rows: string[][];
}

/** One benchmark's results. `verdict` says whether its target was met. */
export interface Section {
  id: number;
  title: string;
  target: string;
  verdict: "met" | "missed" | "info";
  tables: Table[];
  /** Short lines: setup, what the baseline is, what the figure means. */
  notes: string[];
}

/** Settings every benchmark receives from the runner. */
export interface BenchConfig {
  /** A fast pass: fewer rounds and smaller sizes (for a smoke run, not for publishing). */
  quick: boolean;
  /** Where temporary databases go (one fresh directory per run). */
  tmpDir: string;
}

/** A benchmark: its number in issue 7, a slug for `--only`, and its run. */
export interface Benchmark {
  id: number;
  slug: string;
  title: string;
  run(config: BenchConfig): Promise<Section>;
}

/** Formats a number with thousands separators and `digits` decimals. */
export function num(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return "n/a";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Formats a ratio as `1.03x`. */
export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : "n/a";
}

/** Renders a table as GitHub Markdown. */
export function markdownTable(table: Table): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const out: string[] = [];
  if (table.caption) out.push(`${table.caption}`, "");
  out.push(line(table.header), line(table.header.map(() => "---")));
  for (const row of table.rows) out.push(line(row));
  return out.join("\n");
}

/** Renders a section as Markdown. */
export function markdownSection(section: Section): string {
  const parts = [
    `## ${section.id}. ${section.title}`,
    "",
    `Target: ${section.target}. Result: **${section.verdict}**.`,
    "",
  ];
  for (const table of section.tables) parts.push(markdownTable(table), "");
  for (const note of section.notes) parts.push(`- ${note}`);
  return parts.join("\n").trimEnd();
}
