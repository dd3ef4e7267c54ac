/**
 * Running a relay pass's statements (built in `../sqlite/pass.ts`) on a store's runner: the claim with the
 * marks before it in one write, and a mark alone.
 *
 * @module
 */
import type { ClaimOptions, RecordAndFetchResult } from "../../mod.ts";
import {
  claimStatements,
  type MarkStatement,
  type MarkStatements,
  missingValues,
  toClaim,
} from "../sqlite/pass.ts";
import { type IdSpace, rowIdsJson, toValues } from "../sqlite/rows.ts";
import type { Statements } from "../sqlite/sql.ts";
import { isTooBig } from "./errors.ts";
import { INLINED_VALUE_BYTES, type PassRead, passResult, passSteps } from "./pass.ts";
import type { Runner } from "./runner.ts";

/**
 * Runs `marks` and a claim in one write, then completes the claim's values; its messages get
 * their public ids in the table's namespace as the claim read it: `space` when it still is that
 * one, else what `reread()` finds (the table was made again since `space` was read).
 */
export async function runClaim(
  run: Runner,
  sql: Statements,
  cached: IdSpace,
  reread: () => Promise<IdSpace>,
  doing: string,
  marks: MarkStatements,
  options: ClaimOptions,
): Promise<RecordAndFetchResult> {
  const { token, recorded, records, namespace } = await write(run, sql, doing, marks, options);
  const space = namespace === cached.namespace ? cached : await reread();
  // Values the read did not carry, read after the commit: a value never changes once written.
  const missing = rowIdsJson(missingValues(records));
  const values =
    missing === undefined
      ? undefined
      : toValues(await run.read("reading claimed values", { sql: sql.claimValues, args: [missing] }));
  return { recorded, claim: toClaim(space, token, records, values) };
}

/**
 * The write of {@link runClaim}. Its read returns the batch as one row, which SQLite refuses
 * above its length limit (1e9 bytes per value): then the whole write, which changed nothing,
 * runs again with half the batch, down to one message.
 */
async function write(
  run: Runner,
  sql: Statements,
  doing: string,
  marks: MarkStatements,
  options: ClaimOptions,
): Promise<PassRead & { token: string }> {
  const local = run.local;
  const inlined = local ? INLINED_VALUE_BYTES : Number.MAX_SAFE_INTEGER;
  for (let batchSize = options.batchSize; ; batchSize = Math.ceil(batchSize / 2)) {
    const claim = claimStatements(sql, { ...options, batchSize }, local, inlined, marks.sentToken);
    try {
      const results = await run.writeSteps(doing, passSteps(marks, claim));
      return { token: claim.token, ...passResult(marks, claim, results) };
    } catch (error) {
      if (batchSize === 1 || !isTooBig(error)) throw error;
    }
  }
}

/** A mark of several statements in one write; returns the rows its counting statements changed. */
export async function runMark(run: Runner, doing: string, steps: readonly MarkStatement[]): Promise<number> {
  // Prepared, not inlined: the count comes from each statement's result.
  const results = await run.writeSteps(
    doing,
    steps.map(({ statement }) => ({ statement })),
  );
  let changed = 0;
  for (const [i, step] of steps.entries()) if (step.counts) changed += results[i]?.rowsAffected ?? 0;
  return changed;
}
