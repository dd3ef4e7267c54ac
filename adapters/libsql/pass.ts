/**
 * The statements of one relay pass (the claim and the three marks), built apart from running
 * them so that the separate store methods and `recordAndFetch` share them.
 *
 * @module
 */
import type { InStatement, ResultSet } from "@libsql/client";
import {
  type Claim,
  type ClaimOptions,
  createMessage,
  type PassOutcome,
  type RecordAndFetchResult,
  StoreError,
} from "../../mod.ts";
import { inlineStatement } from "./inline.ts";
import { byAge, deadJson, idsJson, retriesJson, toNumber, toRecords } from "./rows.ts";
import type { WriteStep } from "./runner.ts";
import type { Statements } from "./sql.ts";

/** A claim's two statements (see `ClaimSql`) under a fresh random token. */
export interface ClaimStatements {
  token: string;
  read: InStatement;
  write: InStatement;
}

/** The claim of `options` at `now` (ms), under a fresh token. */
export function claimStatements(sql: Statements, options: ClaimOptions, now: number): ClaimStatements {
  const token = crypto.randomUUID();
  const { read, write } = options.ordering === "key" ? sql.claimByKey : sql.claim;
  const args = [token, now + options.leaseDuration, now, options.batchSize];
  return { token, read: { sql: read, args }, write: { sql: write, args } };
}

/** The claim a claim's read returned, messages oldest first. */
export function toClaim(token: string, read: ResultSet): Claim {
  // An aggregate's order is not promised: sort oldest first here.
  const records = toRecords(read).sort(byAge);
  return { token, messages: records.map((record) => createMessage(record)) };
}

/** The mark statements of an outcome; a group with no usable id has none. */
export interface MarkStatements {
  sent?: InStatement | undefined;
  retry?: InStatement | undefined;
  dead?: InStatement | undefined;
}

/**
 * The marks for `outcome` at `now`: sent rows are deleted, or kept (status sent) when
 * `keepSent`; failed and dead rows are updated. Each applies only to rows holding the token.
 */
export function markStatements(
  sql: Statements,
  outcome: Partial<PassOutcome> & { token: string },
  keepSent: boolean,
  now: number,
): MarkStatements {
  const { token } = outcome;
  const sentIds = outcome.sent === undefined ? undefined : idsJson(outcome.sent);
  const retries = outcome.retry === undefined ? undefined : retriesJson(outcome.retry);
  const dead = outcome.dead === undefined ? undefined : deadJson(outcome.dead);
  return {
    sent:
      sentIds === undefined
        ? undefined
        : keepSent
          ? { sql: sql.keepSent, args: [sentIds, token, now] }
          : { sql: sql.deleteSent, args: [sentIds, token] },
    retry: retries === undefined ? undefined : { sql: sql.retry, args: [retries, token] },
    dead: dead === undefined ? undefined : { sql: sql.dead, args: [dead, token] },
  };
}

/**
 * The steps of one write, in order: the failed and dead marks, the sent mark, the claim's read,
 * the claim's write. The sent mark and the claim's write run inlined where they can (their
 * results are not needed: the read reports the sent mark's count as `changes()`, which is why
 * the sent mark comes right before it); on the usual pass, all sent, the sent mark then takes
 * the write lock itself.
 */
export function passSteps(marks: MarkStatements, claim: ClaimStatements): WriteStep[] {
  const steps: WriteStep[] = [];
  for (const mark of [marks.retry, marks.dead]) if (mark !== undefined) steps.push({ statement: mark });
  if (marks.sent !== undefined) steps.push({ statement: marks.sent, script: inlineStatement(marks.sent) });
  steps.push({ statement: claim.read }, { statement: claim.write, script: inlineStatement(claim.write) });
  return steps;
}

/** Reads the results of {@link passSteps}: rows each mark changed, and the claim. */
export function passResult(
  marks: MarkStatements,
  claim: ClaimStatements,
  results: readonly (ResultSet | undefined)[],
): RecordAndFetchResult {
  let i = 0;
  const changed = (mark: InStatement | undefined) =>
    mark === undefined ? 0 : (results[i++]?.rowsAffected ?? 0);
  const failed = changed(marks.retry);
  const dead = changed(marks.dead);
  const sentResult = marks.sent === undefined ? undefined : results[i++];
  const read = results[i];
  if (read === undefined || results.length !== i + 2)
    throw new StoreError(`expected ${i + 2} statement results, got ${results.length}`, { retryable: false });
  const sent = marks.sent === undefined ? 0 : (sentResult?.rowsAffected ?? toNumber(read.rows[0]?.changed));
  return { recorded: { sent, failed, dead }, claim: toClaim(claim.token, read) };
}
