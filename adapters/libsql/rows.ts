/**
 * Between JavaScript values and libSQL rows and arguments: decoding claimed rows into message
 * records and the stats and version rows into values, and encoding id lists and per-row
 * updates as JSON for `json_each`.
 *
 * @module
 */
import type { ResultSet, Row, Value } from "@libsql/client";
import type { DeadUpdate, MessageRecord, OutboxStats, RetryUpdate } from "../../mod.ts";

/** Longest `last_error` kept, in UTF-16 code units; operators need the gist, not a novel. */
export const MAX_ERROR_LENGTH = 2000;

// A decimal SQLite integer id: 1 to 2^63 - 1.
const ID = /^[1-9][0-9]{0,18}$/;
const MAX_ID = 9223372036854775807n;

/** Whether `id` can name a row (anything else names none, so marks skip it). */
export function isRowId(id: unknown): id is string {
  return typeof id === "string" && ID.test(id) && (id.length < 19 || BigInt(id) <= MAX_ID);
}

/**
 * A JSON array of the usable ids, written digit for digit (SQLite's JSON reads them as exact
 * 64-bit integers), or undefined when none is usable.
 */
export function idsJson(ids: readonly string[]): string | undefined {
  const usable = ids.filter(isRowId);
  return usable.length === 0 ? undefined : `[${usable.join(",")}]`;
}

function errorJson(error: string | undefined): string {
  if (typeof error !== "string") return "null";
  return JSON.stringify(error.length > MAX_ERROR_LENGTH ? `${error.slice(0, MAX_ERROR_LENGTH - 1)}…` : error);
}

/** `[[id, availableAtMs, error], ...]` for the retry statement, or undefined when empty. */
export function retriesJson(updates: readonly RetryUpdate[]): string | undefined {
  const rows: string[] = [];
  for (const u of updates) {
    const at = u.availableAt instanceof Date ? u.availableAt.getTime() : Number.NaN;
    if (!isRowId(u.id) || !Number.isFinite(at)) continue;
    rows.push(`[${u.id},${Math.trunc(at)},${errorJson(u.error)}]`);
  }
  return rows.length === 0 ? undefined : `[${rows.join(",")}]`;
}

/** `[[id, error], ...]` for the dead statement, or undefined when empty. */
export function deadJson(updates: readonly DeadUpdate[]): string | undefined {
  const rows: string[] = [];
  for (const u of updates) {
    if (isRowId(u.id)) rows.push(`[${u.id},${errorJson(u.error)}]`);
  }
  return rows.length === 0 ? undefined : `[${rows.join(",")}]`;
}

/** An integer column as a number, whatever the client's `intMode` made of it. */
export function toNumber(value: Value | undefined): number {
  if (value === null || value === undefined) return 0;
  return Number(value);
}

function toBytes(value: Value | undefined): Uint8Array<ArrayBuffer> {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    const view = value as ArrayBufferView;
    return new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice();
  }
  // A value written as text by hand (not through the store) still comes back as its UTF-8 bytes.
  if (typeof value === "string") return new TextEncoder().encode(value);
  return new Uint8Array(0);
}

// Headers are written as a JSON object of strings. Anything else (a hand-edited row) reads as
// no headers rather than failing the claim, which would hold up every message behind it.
function toHeaders(value: Value | undefined): Record<string, string> {
  if (typeof value !== "string" || value === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return {};
  }
  const headers: Record<string, string> = {};
  if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
    for (const [name, v] of Object.entries(parsed)) if (typeof v === "string") headers[name] = v;
  }
  return headers;
}

/** A row of `RECORD_COLUMNS` as a message record. */
export function toRecord(row: Row): MessageRecord {
  const lastError = row.last_error;
  return {
    id: String(row.id),
    key: String(row.key),
    value: toBytes(row.value),
    headers: toHeaders(row.headers),
    timestamp: new Date(toNumber(row.created_at)),
    retries: toNumber(row.retries),
    lastError: typeof lastError === "string" ? lastError : undefined,
  };
}

/** One entry of a claim's `records`: see `ClaimSql` in sql.ts. */
type ClaimedEntry = [
  id: string,
  key: string,
  valueLength: number,
  headers: string | null,
  createdAt: number,
  retries: number,
  lastError: string | null,
];

/** A claimed record whose value is `undefined` until it is read by id (see `ClaimSql`). */
export type ClaimedRecord = Omit<MessageRecord, "value"> & { value: Uint8Array<ArrayBuffer> | undefined };

/**
 * The records of a claim's read (one row: `records` JSON, `bytes` the values of at most
 * `inlined` bytes end to end; larger ones are left `undefined`). Each value is copied out, so a
 * message never exposes (or keeps alive) its batch's buffer.
 */
export function toRecords(result: ResultSet, inlined: number): ClaimedRecord[] {
  const row = result.rows[0];
  const records = row?.records;
  if (typeof records !== "string") return [];
  const entries = JSON.parse(records) as ClaimedEntry[];
  const bytes = toBytes(row?.bytes);
  let offset = 0;
  return entries.map(([id, key, valueLength, headers, createdAt, retries, lastError]) => {
    let value: Uint8Array<ArrayBuffer> | undefined;
    if (valueLength <= inlined) {
      value = bytes.slice(offset, offset + valueLength);
      offset += valueLength;
    }
    return {
      id,
      key,
      value,
      headers: toHeaders(headers),
      timestamp: new Date(createdAt),
      retries,
      lastError: lastError ?? undefined,
    };
  });
}

/** The values of rows read by `claimValues`, by id. */
export function toValues(result: ResultSet): Map<string, Uint8Array<ArrayBuffer>> {
  return new Map(result.rows.map((row) => [String(row.id), toBytes(row.value)]));
}

/** Orders records oldest first, ties by id (numerically: ids are decimal strings). */
export function byAge(
  a: Pick<MessageRecord, "id" | "timestamp">,
  b: Pick<MessageRecord, "id" | "timestamp">,
): number {
  return (
    a.timestamp.getTime() - b.timestamp.getTime() ||
    a.id.length - b.id.length ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

/** The stats statement's one row as {@link OutboxStats}. */
export function toStats(result: ResultSet): OutboxStats {
  const row = result.rows[0];
  const inFlight = toNumber(row?.in_flight);
  const oldest = row?.oldest;
  return {
    pending: toNumber(row?.unfinished) - inFlight,
    inFlight,
    dead: toNumber(row?.dead),
    oldestPendingAt: oldest === null || oldest === undefined ? null : new Date(toNumber(oldest)),
  };
}

/** The schema version a version query read (0: never migrated). */
export function versionOf(result: ResultSet): number {
  const row = result.rows[0];
  return row === undefined ? 0 : toNumber(row.version);
}
