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
  type Message,
  type MessageRecord,
  type PassOutcome,
  type RecordAndFetchResult,
  StoreError,
} from "../../mod.ts";
import { inlineStatement } from "./inline.ts";
import {
  byAge,
  type ClaimedRecord,
  deadJson,
  type IdSpace,
  idsJson,
  publicId,
  retriesJson,
  toNumber,
  toRecords,
} from "./rows.ts";
import type { WriteStep } from "./runner.ts";
import type { Statements } from "./sql.ts";

/**
 * The largest value a local claim carries in its one-row read; larger ones are read by id
 * after it (see `ClaimSql`). Carrying every value, a claim measured 1.4x a row-wise claim at
 * 2 KiB per value but 0.7x at 8 KiB and 0.76x at 1 MiB (group_concat copies large values more
 * than reading rows does); with this limit, 0.85-1.02x from 8 KiB to 1 MiB (BENCHMARKS.md,
 * benchmark 1). Remote claims carry every value (a second request costs more than the copies).
 */
export const INLINED_VALUE_BYTES = 2048;

/** A claim's statements (see `ClaimSql`) under a fresh random token. */
export interface ClaimStatements {
  token: string;
  /** The largest value the read carries. */
  inlined: number;
  /** Whether the read comes first (local) or the write does (remote). */
  readFirst: boolean;
  read: InStatement;
  write: InStatement;
  /** Locally, the write for the rows the read returned (`ids`, its JSON array of their ids). */
  writeByIds(ids: string): InStatement;
}

/**
 * The claim of `options` under a fresh token, read first (local clients) or written first
 * (remote ones); its read carries values of at most `inlined` bytes. `sentToken` is the token
 * of a delete-mode sent mark just before it (its tombstone counts as sent), if any.
 */
export function claimStatements(
  sql: Statements,
  options: ClaimOptions,
  local: boolean,
  inlined: number,
  sentToken: string | null,
): ClaimStatements {
  const token = crypto.randomUUID();
  const { read, take } = options.ordering === "key" ? sql.claimByKey : sql.claim;
  const { batchSize, leaseDuration } = options;
  return {
    token,
    inlined,
    readFirst: local,
    read: local
      ? { sql: read, args: [batchSize, inlined, sentToken] }
      : { sql: sql.readTaken, args: [token, batchSize, inlined] },
    write: { sql: take, args: [token, leaseDuration, batchSize] },
    writeByIds: (ids) => ({ sql: sql.takeByIds, args: [token, leaseDuration, ids] }),
  };
}

/** The ids of claimed records whose values the read did not carry. */
export function missingValues(records: readonly ClaimedRecord[]): string[] {
  const ids: string[] = [];
  for (const record of records) if (record.value === undefined) ids.push(record.id);
  return ids;
}

/**
 * The claim, messages oldest first with their public ids in `space`, with the values read
 * by id filled in (`records` is sorted and completed in place). A record whose value was not
 * found has lost its row since (its lease ran out and another relay finished it): it is left
 * out.
 */
export function toClaim(
  space: IdSpace,
  token: string,
  records: ClaimedRecord[],
  values?: ReadonlyMap<string, Uint8Array<ArrayBuffer>>,
): Claim {
  const messages: Message[] = [];
  // An aggregate's order is not promised: sort oldest first here.
  for (const record of records.sort(byAge)) {
    record.value ??= values?.get(record.id);
    if (record.value === undefined) continue;
    record.id = publicId(space, record.id);
    messages.push(createMessage(record as MessageRecord));
  }
  return { token, messages };
}

/** One statement of a mark, and whether the rows it changes count as the mark's. */
export interface MarkStatement {
  statement: InStatement;
  counts: boolean;
}

/** The mark statements of an outcome; a group with no usable id has none. */
export interface MarkStatements {
  /** In order; delete mode has several (see `sql.ts`). */
  sent?: readonly MarkStatement[] | undefined;
  retry?: InStatement | undefined;
  dead?: InStatement | undefined;
  /** The token of a delete-mode sent mark (the claim's read counts its tombstone by it). */
  sentToken: string | null;
}

/**
 * The marks for `outcome`, its ids read in `namespace`: sent rows are deleted, or kept (status
 * sent) when `keepSent`; failed and dead rows are updated. Each applies only to rows holding
 * the token.
 */
export function markStatements(
  sql: Statements,
  namespace: string,
  outcome: Partial<PassOutcome> & { token: string },
  keepSent: boolean,
): MarkStatements {
  const { token } = outcome;
  const sentIds = outcome.sent === undefined ? undefined : idsJson(namespace, outcome.sent);
  const retries = outcome.retry === undefined ? undefined : retriesJson(namespace, outcome.retry);
  const dead = outcome.dead === undefined ? undefined : deadJson(namespace, outcome.dead);
  const sent =
    sentIds === undefined
      ? undefined
      : keepSent
        ? [{ statement: { sql: sql.keepSent, args: [sentIds, token] }, counts: true }]
        : sql.deleteSent.map((step) => ({
            statement: { sql: step.sql, args: step.counts ? [sentIds, token] : [] },
            counts: step.counts,
          }));
  return {
    sent,
    retry: retries === undefined ? undefined : { sql: sql.retry, args: [retries, token] },
    dead: dead === undefined ? undefined : { sql: sql.dead, args: [dead, token] },
    sentToken: sent !== undefined && !keepSent ? token : null,
  };
}

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
    if (marks.sent !== undefined) sent = toNumber(read.rows[0]?.changed);
  } else {
    for (const step of marks.sent ?? []) {
      const result = results[i++];
      if (step.counts) sent += result?.rowsAffected ?? 0;
    }
  }
  return { recorded: { sent, failed, dead }, records: toRecords(read, claim.inlined) };
}
