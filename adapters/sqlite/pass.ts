/**
 * The statements of one relay pass (the claim and the three marks) in the SQLite dialect, built
 * apart from running them so that every SQLite driver (libSQL, D1) and every store method
 * (the separate marks and `recordAndFetch`) share them.
 *
 * @module
 */
import {
  type Claim,
  type ClaimOptions,
  createMessage,
  type Message,
  type MessageRecord,
  type PassOutcome,
} from "../../mod.ts";
import { byAge, type ClaimedRecord, deadJson, type IdSpace, idsJson, publicId, retriesJson } from "./rows.ts";
import type { Statements } from "./sql.ts";

/** A value bound to a statement parameter; every SQLite driver takes these. */
export type SqlArg = string | number | null | Uint8Array;

/** A statement and its positional arguments (`?1` is `args[0]`). */
export interface SqlStatement {
  sql: string;
  args: SqlArg[];
}

/** A claim's statements (see `ClaimSql`) under a fresh random token. */
export interface ClaimStatements {
  token: string;
  /** The largest value the read carries. */
  inlined: number;
  /** Whether the read comes first (local) or the write does (remote). */
  readFirst: boolean;
  read: SqlStatement;
  write: SqlStatement;
  /** Locally, the write for the rows the read returned (`ids`, its JSON array of their ids). */
  writeByIds(ids: string): SqlStatement;
}

/**
 * The claim of `options` under a fresh token, read first (local clients) or written first
 * (remote ones); its read carries values of at most `inlined` bytes. `sentToken` is the
 * tombstone tag of a delete-mode sent mark just before it (its tombstone counts as sent), if any.
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
  statement: SqlStatement;
  counts: boolean;
}

/** The mark statements of an outcome; a group with no usable id has none. */
export interface MarkStatements {
  /** In order; delete mode has several (see `sql.ts`). */
  sent?: readonly MarkStatement[] | undefined;
  retry?: SqlStatement | undefined;
  dead?: SqlStatement | undefined;
  /** The tombstone tag of a delete-mode sent mark (the claim's read counts its tombstone by it). */
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
  // The tombstone a delete-mode sent mark may make is tagged as this write's own (see
  // `deleteSent`); no other write makes one, so none other needs a tag.
  // Stryker disable next-line ConditionalExpression,LogicalOperator: equivalent, a tag made for any other mark is never bound (only deleteSent's tagged step, built only for a delete-mode sent mark, takes it); the condition only saves a UUID
  const tag = sentIds !== undefined && !keepSent ? crypto.randomUUID() : null;
  const retries = outcome.retry === undefined ? undefined : retriesJson(namespace, outcome.retry);
  const dead = outcome.dead === undefined ? undefined : deadJson(namespace, outcome.dead);
  const sent =
    sentIds === undefined
      ? undefined
      : keepSent
        ? [{ statement: { sql: sql.keepSent, args: [sentIds, token] }, counts: true }]
        : sql.deleteSent.map((step) => ({
            statement: {
              sql: step.sql,
              args: step.tags ? [sentIds, token, tag] : step.counts ? [sentIds, token] : [],
            },
            counts: step.counts,
          }));
  return {
    sent,
    retry: retries === undefined ? undefined : { sql: sql.retry, args: [retries, token] },
    dead: dead === undefined ? undefined : { sql: sql.dead, args: [dead, token] },
    sentToken: tag,
  };
}
