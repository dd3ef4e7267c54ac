/**
 * How the libSQL store runs one relay pass's statements (built in `../sqlite/pass.ts`): their
 * order in one write, inlined where that pays locally, and reading their results.
 *
 * @module
 */
import type { InStatement, ResultSet } from "@libsql/client";
import { type RecordAndFetchResult, StoreError } from "../../mod.ts";
import type { ClaimStatements, MarkStatements } from "../sqlite/pass.ts";
import { type ClaimedRecord, toNumber, toRecords, toText } from "../sqlite/rows.ts";
import { inlineStatement } from "./inline.ts";
import type { WriteStep } from "./runner.ts";

/**
 * The largest value a local claim carries in its one-row read; larger ones are read by id
 * after it (see `ClaimSql`). Carrying every value, a claim measured 1.4x a row-wise claim at
 * 2 KiB per value but 0.7x at 8 KiB and 0.76x at 1 MiB (group_concat copies large values more
 * than reading rows does); with this limit, 0.85-1.02x from 8 KiB to 1 MiB (BENCHMARKS.md,
 * benchmark 1). Remote claims carry every value (a second request costs more than the copies).
 */
export const INLINED_VALUE_BYTES = 2048;

/**
 * The steps of one write, in order: the failed and dead marks, the sent mark, then the claim
 * (read then write locally, write then read remotely). The sent mark and the claim's write run
 * inlined where they can (their results are not needed: the local read reports the sent mark's
 * count, which is why the sent mark comes right before it); on the usual pass, all sent, the
 * sent mark then takes the write lock itself. Run locally, the write takes the ids the read
 * returned rather than picking the rows again.
 */
export function passSteps(marks: MarkStatements, claim: ClaimStatements): WriteStep[] {
  const steps: WriteStep[] = [];
  for (const mark of [marks.retry, marks.dead]) if (mark !== undefined) steps.push({ statement: mark });
  const sent = marks.sent ?? [];
  const scripts = sent.map(({ statement }) => inlineStatement(statement));
  if (!claim.readFirst || scripts.some((script) => script === undefined)) {
    for (const [i, { statement }] of sent.entries()) steps.push({ statement, script: scripts[i] });
  } else if (sent.length > 0) {
    // Locally, one call for the whole sent mark (the read counts what it changed).
    steps.push({ statement: sent[0]!.statement, script: scripts.join(";\n") });
  }
  if (!claim.readFirst) return [...steps, { statement: claim.write }, { statement: claim.read }];
  steps.push(
    { statement: claim.read },
    {
      statement: claim.write,
      script: (results) => {
        // Stryker disable next-line OptionalChaining: called after the read ran, whose one-row answer (an aggregate) is then last
        const ids = results.at(-1)?.rows[0]?.ids;
        return typeof ids === "string" ? inlineStatement(claim.writeByIds(ids)) : undefined;
      },
    },
  );
  return steps;
}

/** What one write recorded, and the records its claim read (values maybe still to read). */
export interface PassRead {
  recorded: RecordAndFetchResult["recorded"];
  records: ClaimedRecord[];
  /** The table's id namespace as the claim's read saw it (null: no version row). */
  namespace: string | null;
}

/** Reads the results of {@link passSteps}: rows each mark changed, and the claimed records. */
export function passResult(
  marks: MarkStatements,
  claim: ClaimStatements,
  results: readonly (ResultSet | undefined)[],
): PassRead {
  let i = 0;
  const changed = (mark: InStatement | undefined) =>
    mark === undefined ? 0 : (results[i++]?.rowsAffected ?? 0);
  const failed = changed(marks.retry);
  const dead = changed(marks.dead);
  // Locally the claim's read is second to last and counts the sent mark (which may have run
  // as one script); remotely it is last, and each sent statement has its result.
  const read = results.at(claim.readFirst ? -2 : -1);
  if (read === undefined || results.length < i + 2)
    throw new StoreError(`expected at least ${i + 2} statement results, got ${results.length}`, {
      retryable: false,
    });
  let sent = 0;
  if (claim.readFirst) {
    // Stryker disable next-line OptionalChaining: the read is an aggregate: always exactly one row
    if (marks.sent !== undefined) sent = toNumber(read.rows[0]?.changed);
  } else {
    for (const step of marks.sent ?? []) {
      const result = results[i++];
      if (step.counts) sent += result?.rowsAffected ?? 0;
    }
  }
  return {
    recorded: { sent, failed, dead },
    records: toRecords(read, claim.inlined),
    // Stryker disable next-line OptionalChaining: the read is an aggregate: always exactly one row
    namespace: toText(read.rows[0]?.id_namespace),
  };
}
