/**
 * One relay pass on D1: the marks (split to D1's limits) and the claim as ONE batch (one round
 * trip, one implicit transaction), then the claim's large values read by id. D1 cannot feed
 * one statement's result into the next inside a batch, so the claim is the remote shape of the
 * dialect (`take` leases the batch, then `readTaken` returns it; see `ClaimSql`).
 *
 * @module
 */
import type { ClaimOptions, PassOutcome, RecordAndFetchResult } from "../../mod.ts";
import {
  claimStatements,
  markStatements,
  missingValues,
  type SqlStatement,
  toClaim,
} from "../sqlite/pass.ts";
import { type IdSpace, rowIdsJson, toRecords, toValues } from "../sqlite/rows.ts";
import type { Statements } from "../sqlite/sql.ts";
import type { D1Result } from "./binding.ts";
import { isTooBig } from "./errors.ts";
import { chunks, inlinedValueBytes, MARK_CHUNK, VALUE_READ_CHUNK } from "./limits.ts";
import { spaceFrom, versionQuery } from "./migrate.ts";
import type { D1Runner } from "./runner.ts";

/** Which count of a pass a mark statement's changed rows add to, if any. */
type Counts = "sent" | "failed" | "dead" | undefined;

/** One statement of a mark and the count its changed rows add to. */
export interface D1MarkStep {
  statement: SqlStatement;
  counts: Counts;
}

/** What a store knows to build marks: its statements and whether sent rows are kept. */
export interface MarkContext {
  sql: Statements;
  keepSent: boolean;
}

/**
 * The statements of `outcome`'s marks, failed then dead then sent, each group split into
 * statements of at most {@link MARK_CHUNK} messages (D1's string limit; see limits.ts). Only
 * rows still holding the token change.
 */
export function d1MarkSteps(
  context: MarkContext,
  namespace: string,
  outcome: Partial<PassOutcome> & { token: string },
): D1MarkStep[] {
  const { sql, keepSent } = context;
  const { token } = outcome;
  const steps: D1MarkStep[] = [];
  // Stryker disable next-line ArrayDeclaration: equivalent, an entry that is no message id of this outbox (not even an object with an id) makes no statement, as none does
  for (const retry of chunks(outcome.retry ?? [], MARK_CHUNK)) {
    const statement = markStatements(sql, namespace, { token, retry }, keepSent).retry;
    if (statement !== undefined) steps.push({ statement, counts: "failed" });
  }
  // Stryker disable next-line ArrayDeclaration: equivalent, as for retry above
  for (const dead of chunks(outcome.dead ?? [], MARK_CHUNK)) {
    const statement = markStatements(sql, namespace, { token, dead }, keepSent).dead;
    if (statement !== undefined) steps.push({ statement, counts: "dead" });
  }
  // Stryker disable next-line ArrayDeclaration: equivalent, a text that is no message id of this outbox makes no statement, as none does
  for (const sent of chunks(outcome.sent ?? [], MARK_CHUNK)) {
    for (const step of markStatements(sql, namespace, { token, sent }, keepSent).sent ?? [])
      steps.push({ statement: step.statement, counts: step.counts ? "sent" : undefined });
  }
  return steps;
}

/** The rows each count's statements changed, from the batch's first results. */
function recorded(
  steps: readonly D1MarkStep[],
  results: readonly D1Result[],
): RecordAndFetchResult["recorded"] {
  const counts = { sent: 0, failed: 0, dead: 0 };
  for (const [i, step] of steps.entries()) {
    // Stryker disable next-line OptionalChaining: equivalent, D1's batch answers one result per statement, in order, and results holds the mark steps' own
    if (step.counts !== undefined) counts[step.counts] += results[i]?.meta.changes ?? 0;
  }
  return counts;
}

/** Runs mark steps alone, as one batch; returns the rows the counting ones changed. */
export async function runMarks(run: D1Runner, doing: string, steps: readonly D1MarkStep[]): Promise<number> {
  const results = await run.batch(
    doing,
    steps.map((step) => step.statement),
  );
  const { sent, failed, dead } = recorded(steps, results);
  return sent + failed + dead;
}

/** A pass's result and the id space its claim's ids are in (read in the claim's batch). */
export interface D1PassResult extends RecordAndFetchResult {
  space: IdSpace;
}

/**
 * Runs `marks` and a claim in one batch, then reads the values the claim's read did not carry.
 * A read over D1's string limit (`SQLITE_TOOBIG`) rolls the whole batch back; it then runs
 * again with half the batch, down to one message.
 *
 * The batch also reads `table`'s id namespace, and the claim's ids are given in THAT one, never
 * in a store's cached copy: after the table was dropped and made again (a new namespace,
 * written by another Worker's `migrate()`), a cached one would label new rows with the ids of
 * old messages.
 */
export async function runPass(
  run: D1Runner,
  sql: Statements,
  table: string,
  doing: string,
  marks: readonly D1MarkStep[],
  options: ClaimOptions,
): Promise<D1PassResult> {
  for (let batchSize = options.batchSize; ; batchSize = Math.ceil(batchSize / 2)) {
    const inlined = inlinedValueBytes(batchSize);
    const claim = claimStatements(sql, { ...options, batchSize }, false, inlined, null);
    let results: D1Result[];
    try {
      results = await run.batch(doing, [
        versionQuery(table),
        ...marks.map((m) => m.statement),
        claim.write,
        claim.read,
      ]);
    } catch (error) {
      if (batchSize === 1 || !isTooBig(error)) throw error;
      continue;
    }
    // Stryker disable next-line OptionalChaining,ArrayDeclaration: equivalent, D1's batch answers one result per statement (here at least three), each with its rows array
    const records = toRecords({ rows: results.at(-1)?.results ?? [] }, inlined);
    // Values the read did not carry, read after the commit: a value never changes once written.
    const values = new Map<string, Uint8Array<ArrayBuffer>>();
    for (const group of chunks(missingValues(records), VALUE_READ_CHUNK)) {
      const rows = await run.rows("reading claimed values", {
        sql: sql.claimValues,
        args: [rowIdsJson(group)!],
      });
      for (const [id, value] of toValues({ rows })) values.set(id, value);
    }
    // Stryker disable next-line OptionalChaining,ArrayDeclaration: equivalent, as for the read's rows above (the version query's result comes first)
    const space = spaceFrom(table, results[0]?.results ?? []);
    return {
      recorded: recorded(marks, results.slice(1)),
      claim: toClaim(space, claim.token, records, values),
      space,
    };
  }
}
