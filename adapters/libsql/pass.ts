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
import { byAge, deadJson, idsJson, retriesJson, toRecord } from "./rows.ts";
import type { Statements } from "./sql.ts";

/** A claim statement under a fresh random token. */
export interface ClaimStatement {
  token: string;
  statement: InStatement;
}

/** The claim of `options` at `now` (ms), under a fresh token. */
export function claimStatement(sql: Statements, options: ClaimOptions, now: number): ClaimStatement {
  const token = crypto.randomUUID();
  const text = options.ordering === "key" ? sql.claimByKey : sql.claim;
  return {
    token,
    statement: { sql: text, args: [token, now + options.leaseDuration, now, options.batchSize] },
  };
}

/** The claim a claim statement's result holds, messages oldest first. */
export function toClaim(token: string, result: ResultSet): Claim {
  // RETURNING gives rows in no promised order: sort oldest first here.
  const records = result.rows.map(toRecord).sort(byAge);
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

/** The statements of `recordAndFetch`, in order: the non-empty marks, then the claim. */
export function passStatements(marks: MarkStatements, claim: ClaimStatement): InStatement[] {
  const statements: InStatement[] = [];
  for (const mark of [marks.sent, marks.retry, marks.dead]) if (mark !== undefined) statements.push(mark);
  statements.push(claim.statement);
  return statements;
}

/** Reads the results of {@link passStatements}: rows each mark changed, and the claim. */
export function passResult(
  marks: MarkStatements,
  claim: ClaimStatement,
  results: ResultSet[],
): RecordAndFetchResult {
  let i = 0;
  const changed = (mark: InStatement | undefined) =>
    mark === undefined ? 0 : (results[i++]?.rowsAffected ?? 0);
  const recorded = { sent: changed(marks.sent), failed: changed(marks.retry), dead: changed(marks.dead) };
  const rows = results[i];
  if (rows === undefined)
    throw new StoreError(`expected ${i + 1} statement results, got ${results.length}`, { retryable: false });
  return { recorded, claim: toClaim(claim.token, rows) };
}
