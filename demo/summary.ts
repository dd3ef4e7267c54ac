/** The demo's closing report, and the checks that decide its exit code. */
import type { Message } from "../mod.ts";
import type { Progress } from "./progress.ts";
import type { ReceiverCounts } from "./receiver.ts";

/** Everything the summary shows. */
export interface SummaryInput {
  ordersWritten: number;
  progress: Progress;
  counts: ReceiverCounts;
  dead: Message[];
  errors: unknown[];
  /** Messages the demo kills on purpose. */
  expectDead: number;
  /** Whether writes were spread out on purpose (then the rate says little about speed). */
  paced: boolean;
}

/** Prints the summary; returns false if the run broke a promise of the outbox. */
export function printSummary(input: SummaryInput): boolean {
  const { progress, counts, dead } = input;
  const decoder = new TextDecoder();
  const seconds = progress.elapsedMs / 1000;
  const lines = [
    "",
    "Summary",
    `  orders written        ${input.ordersWritten} (each with its message, in one transaction)`,
    `  messages delivered    ${counts.delivered}`,
    `  HTTP attempts         ${counts.requests} (${counts.failedOnPurpose} answered 503 on purpose and retried, ${counts.rejected} answered 422)`,
    `  dead messages         ${dead.length}`,
    ...dead.map(
      (m) =>
        `    id ${m.id}  key ${m.key}  attempts ${m.retries + 1}  error: ${m.error ?? m.lastError ?? "?"}\n` +
        `    payload ${decoder.decode(m.value)}`,
    ),
    `  duplicates received   ${counts.duplicates}`,
    `  bad signatures        ${counts.badSignatures}`,
    `  relay errors reported ${input.errors.length}`,
    `  elapsed               ${seconds.toFixed(2)} s (${Math.round(counts.delivered / seconds)} msg/s${input.paced ? "; writes paced over ~2 s so progress shows" : ""})`,
  ];
  console.log(lines.join("\n"));
  const problems: string[] = [];
  if (counts.delivered + dead.length !== input.ordersWritten) {
    problems.push(
      `${input.ordersWritten - counts.delivered - dead.length} message(s) neither delivered nor dead`,
    );
  }
  if (dead.length !== input.expectDead)
    problems.push(`expected ${input.expectDead} dead, got ${dead.length}`);
  if (counts.duplicates !== 0) problems.push(`${counts.duplicates} duplicate deliveries`);
  if (counts.badSignatures !== 0) problems.push(`${counts.badSignatures} requests with a bad signature`);
  for (const problem of problems) console.error(`PROBLEM: ${problem}`);
  if (problems.length === 0)
    console.log("\nAll committed orders accounted for: delivered once, or dead and listed.");
  return problems.length === 0;
}
