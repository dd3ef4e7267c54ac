/**
 * Between JavaScript values and the store's PostgreSQL rows and arguments: public ids to row
 * ids and back, outcomes to the JSON the marks read, result rows (read by position) to message
 * records and stats.
 *
 * @module
 */

import {
  type DeadUpdate,
  formatMessageId,
  type MessageRecord,
  type OutboxStats,
  parseMessageId,
  type RetryUpdate,
  truncateText,
  ValidationError,
  wellFormedText,
} from "../../mod.ts";
import { storedHeaders } from "../sql/headers.ts";

/** Longest `last_error` kept, in UTF-16 code units; operators need the gist, not a novel. */
export const MAX_ERROR_LENGTH = 2000;

const MAX_DELAY = 100 * 365 * 24 * 3_600_000;

/** A result row, read by position. */
export type Row = readonly unknown[];

/** The row ids `ids` name in the outbox of `namespace`, comma-separated; undefined when none. */
export function rowIds(namespace: string, ids: readonly unknown[]): string | undefined {
  const rows: string[] = [];
  for (const id of ids) {
    const row = parseMessageId(namespace, id);
    if (row !== undefined) rows.push(row);
  }
  return rows.length === 0 ? undefined : rows.join(",");
}

/**
 * An error text as PostgreSQL can store it: well-formed, bounded, and without NUL, which
 * `text` (and JSON strings in `jsonb`) refuse. A NUL becomes U+FFFD: the text is for operators,
 * and refusing it would fail the mark and leave the message to wait out its lease.
 */
export function errorText(error: unknown): string | null {
  if (typeof error !== "string") return null;
  return truncateText(error, MAX_ERROR_LENGTH).replaceAll("\0", "\uFFFD");
}

/** `[{id, delay, e}]` for the retry mark, or undefined when no update names a row. */
export function retriesJson(namespace: string, updates: readonly RetryUpdate[]): string | undefined {
  const rows: string[] = [];
  for (const u of updates) {
    const id = parseMessageId(namespace, u?.id);
    if (id === undefined) continue;
    // Clamped to a century: beyond PostgreSQL's interval range the whole mark would fail.
    // Number.isFinite refuses every non-number (a JavaScript caller's "60000" too).
    const delay = Number.isFinite(u.delay) ? Math.min(Math.max(0, u.delay), MAX_DELAY) : 0;
    rows.push(`{"id":${id},"delay":${delay},"e":${JSON.stringify(errorText(u.error))}}`);
  }
  return rows.length === 0 ? undefined : `[${rows.join(",")}]`;
}

/** `[{id, e}]` for the dead mark, or undefined when no update names a row. */
export function deadJson(namespace: string, updates: readonly DeadUpdate[]): string | undefined {
  const rows: string[] = [];
  for (const u of updates) {
    const id = parseMessageId(namespace, u?.id);
    if (id !== undefined) rows.push(`{"id":${id},"e":${JSON.stringify(errorText(u.error))}}`);
  }
  return rows.length === 0 ? undefined : `[${rows.join(",")}]`;
}

function invalid(message: string): ValidationError {
  return new ValidationError(message, { code: "INVALID_MESSAGE" });
}

/**
 * The key as the store writes it. PostgreSQL `text` cannot hold U+0000, and a key is data the
 * receiver routes and orders by, so it is refused (before anything is written) rather than
 * silently changed; lone surrogates become U+FFFD as in every store.
 */
export function keyText(key: string): string {
  if (key.includes("\0")) {
    throw invalid(
      `message.key must not contain NUL (U+0000): PostgreSQL text cannot store it, got ${JSON.stringify(key.slice(0, 40))}`,
    );
  }
  return wellFormedText(key);
}

/**
 * The headers as the JSON text the store writes into `jsonb` (which refuses `\u0000`): a NUL
 * in a name or value is refused, as HTTP refuses it in fields (`prepareMessage` already does).
 */
export function headersJson(headers: Record<string, string>): string {
  const clean: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (typeof value !== "string") throw invalid(`message.headers["${name}"] must be a string`);
    if (name.includes("\0") || value.includes("\0")) {
      throw invalid(`message.headers["${name.replaceAll("\0", "\\0")}"] must not contain NUL (U+0000)`);
    }
    clean[wellFormedText(name)] = wellFormedText(value);
  }
  return JSON.stringify(clean);
}

function toBytes(value: unknown): Uint8Array<ArrayBuffer> {
  if (value instanceof Uint8Array) return new Uint8Array(value); // a copy, never the driver's buffer
  // A driver whose bytea parser was switched off hands bytea's text form: hex (`\x0a41`, the
  // default `bytea_output`) or escape (a printable byte as itself, `\\` for a backslash, `\ooo`
  // in octal for any other byte).
  const text = String(value);
  if (text.startsWith("\\x")) {
    const hex = text.slice(2);
    return new Uint8Array(hex.length >> 1).map((_, i) => Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16));
  }
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== "\\") {
      bytes.push(text.charCodeAt(i));
    } else if (text[i + 1] === "\\") {
      bytes.push(0x5c);
      i++;
    } else {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    }
  }
  return Uint8Array.from(bytes);
}

const toNumber = (value: unknown): number => Number(value ?? 0);

/**
 * Columns `RECORD` (sql.ts) from position `at` of `row` as a message record with its public id:
 * id, key, value, headers, created (ms), retries, last error.
 */
export function toRecord(namespace: string, row: Row, at = 0): MessageRecord {
  const lastError = row[at + 6];
  return {
    id: formatMessageId(namespace, String(row[at])),
    key: unguarded(row[at + 1]),
    value: toBytes(row[at + 2]),
    headers: storedHeaders(row[at + 3]),
    timestamp: new Date(Math.round(toNumber(row[at + 4]))),
    retries: toNumber(row[at + 5]),
    lastError: typeof lastError === "string" ? unguarded(lastError) : undefined,
  };
}

/** A text column read behind `RECORD`'s one-character guard (see sql.ts), without it. */
function unguarded(value: unknown): string {
  return String(value).slice(1);
}

/**
 * Claimed rows (the record columns from position `at`), in the statement's order (oldest first,
 * ties by row id: the claim's `ORDER BY`); a row of NULLs (a pass that claimed nothing) is left
 * out.
 */
export function claimedRows(rows: readonly Row[], at: number): Row[] {
  return rows.filter((row) => row[at] !== null);
}

/** The stats statement's one row as {@link OutboxStats}. */
export function toStats(row: Row | undefined): OutboxStats {
  // Stryker disable OptionalChaining: equivalent, the stats statement (scalar subqueries, no FROM) always answers exactly one row
  const inFlight = toNumber(row?.[1]);
  const oldest = row?.[3] ?? null;
  return {
    pending: toNumber(row?.[0]) - inFlight,
    inFlight,
    dead: toNumber(row?.[2]),
    // Stryker restore OptionalChaining
    oldestPendingAt: oldest === null ? null : new Date(Math.round(toNumber(oldest))),
  };
}

/** The first column of the first row as a number (the counts the marks return). */
export function countOf(rows: readonly Row[]): number {
  // Stryker disable next-line OptionalChaining: equivalent, every count statement is an aggregate without GROUP BY: always exactly one row
  return toNumber(rows[0]?.[0]);
}
