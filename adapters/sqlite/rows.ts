/**
 * Between JavaScript values and SQLite rows and arguments, for every SQLite driver (libSQL,
 * D1): decoding claimed rows into message records and the stats and version rows into values,
 * and encoding id lists and per-row updates as JSON for `json_each`.
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
  wellFormedText,
} from "../../mod.ts";
import { storedHeaders } from "../sql/headers.ts";

/**
 * A column value as a SQLite driver hands it back: libSQL gives numbers, bigints, strings and
 * ArrayBuffers; D1 gives numbers, strings and BLOBs as arrays of byte values.
 */
type Value = unknown;
/** One row of a result, by column name. */
export type Row = Readonly<Record<string, Value>>;
/** What the decoders read of a driver's result: its rows. */
export interface ResultSet {
  readonly rows: readonly Row[];
}

/**
 * How a table's row ids become public ids: `msg_<namespace>_<row>`, except rows up to
 * `legacyMax` (written before the upgrade from schema version 1), which keep the bare decimal
 * ids receivers already saw.
 */
export interface IdSpace {
  namespace: string;
  /** 0n when the table has no rows from before the upgrade. */
  legacyMax: bigint;
}

/** The public id of row `row` (decimal text) in `space`. */
export function publicId(space: IdSpace, row: string): string {
  return space.legacyMax > 0n && BigInt(row) <= space.legacyMax ? row : formatMessageId(space.namespace, row);
}

/** Longest `last_error` kept, in UTF-16 code units; operators need the gist, not a novel. */
export const MAX_ERROR_LENGTH = 2000;

// The longest wait a retry mark records (about 274,000 years, the range of a Date): beyond it
// the database's integer clock arithmetic would lose meaning, and nothing waits that long.
const MAX_DELAY = 8.64e15;

/**
 * A JSON array of the rows `ids` name in the outbox of `namespace` (see `parseMessageId`:
 * another outbox's ids and malformed ones name none), written digit for digit (SQLite's JSON
 * reads them as exact 64-bit integers), or undefined when none does.
 */
export function idsJson(namespace: string, ids: readonly string[]): string | undefined {
  const rows: string[] = [];
  for (const id of ids) {
    const row = parseMessageId(namespace, id);
    if (row !== undefined) rows.push(row);
  }
  return rows.length === 0 ? undefined : `[${rows.join(",")}]`;
}

/** A row-id JSON array of ids that are row ids already (a claim's own). */
export function rowIdsJson(rows: readonly string[]): string | undefined {
  return rows.length === 0 ? undefined : `[${rows.join(",")}]`;
}

// Well-formed and bounded: a lone surrogate (or a cut inside a pair) would be stored as
// invalid UTF-8. JSON.stringify escapes nothing here that SQLite's JSON would not read back.
function errorJson(error: string | undefined): string {
  return typeof error === "string" ? JSON.stringify(truncateText(error, MAX_ERROR_LENGTH)) : "null";
}

/**
 * How long a failed message waits, in ms from the database's now: `delay`, or for a caller
 * that gave only `availableAt`, the time left until it on this machine's clock; 0 when neither
 * is a number. Never skips the update: a skipped mark would read as a lost lease.
 */
function delayOf(update: RetryUpdate): number {
  let delay = update.delay;
  if (typeof delay !== "number" || Number.isNaN(delay)) {
    const at = update.availableAt instanceof Date ? update.availableAt.getTime() : Number.NaN;
    delay = Number.isFinite(at) ? at - Date.now() : 0;
  }
  return Math.trunc(Math.min(Math.max(delay, 0), MAX_DELAY));
}

/** `[[row, delayMs, error], ...]` for the retry statement, or undefined when empty. */
export function retriesJson(namespace: string, updates: readonly RetryUpdate[]): string | undefined {
  const rows: string[] = [];
  for (const u of updates) {
    const row = parseMessageId(namespace, u?.id);
    if (row !== undefined) rows.push(`[${row},${delayOf(u)},${errorJson(u.error)}]`);
  }
  return rows.length === 0 ? undefined : `[${rows.join(",")}]`;
}

/** `[[row, error], ...]` for the dead statement, or undefined when empty. */
export function deadJson(namespace: string, updates: readonly DeadUpdate[]): string | undefined {
  const rows: string[] = [];
  for (const u of updates) {
    const row = parseMessageId(namespace, u?.id);
    if (row !== undefined) rows.push(`[${row},${errorJson(u.error)}]`);
  }
  return rows.length === 0 ? undefined : `[${rows.join(",")}]`;
}

/**
 * The headers as the JSON the store writes: well-formed (JSON.stringify escapes a lone
 * surrogate, which would come back as one; it is replaced instead, as in keys and errors).
 */
export function headersJson(headers: Readonly<Record<string, string>>): string {
  const json = JSON.stringify(headers);
  // A lone surrogate is the only thing JSON.stringify writes as a \ud8xx-\udfxx escape.
  // indexOf first: the regular expression alone cost about as much as the stringify.
  if (json.indexOf("\\u") === -1 || !/\\ud[89a-f]/i.test(json)) return json;
  // fromEntries defines own properties: a header named "__proto__" stays a header.
  return JSON.stringify(
    Object.fromEntries(
      Object.entries(headers).map(([name, value]) => [wellFormedText(name), wellFormedText(value)]),
    ),
  );
}

// Replaces invalid UTF-8 with U+FFFD and never throws; keeps a leading U+FEFF (a BOM is text
// here: the default decoder would drop it from a key or an error).
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Text read as bytes (see `ClaimSql`), decoded with replacement; null stays null. */
export function toText(value: Value | undefined): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return value;
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return decoder.decode(value);
  if (Array.isArray(value)) return decoder.decode(toBytes(value));
  return String(value);
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
  // D1 hands a BLOB back as an array of byte values.
  if (Array.isArray(value)) return Uint8Array.from(value as number[]);
  // A value written as text by hand (not through the store) still comes back as its UTF-8 bytes.
  if (typeof value === "string") return new TextEncoder().encode(value);
  return new Uint8Array(0);
}

/** A row of `RECORD_COLUMNS` as a message record of the outbox of `space`. */
export function toRecord(space: IdSpace, row: Row): MessageRecord {
  return {
    id: publicId(space, String(row.id)),
    key: toText(row.key) ?? "",
    value: toBytes(row.value),
    headers: storedHeaders(toText(row.headers)),
    timestamp: new Date(toNumber(row.created_at)),
    retries: toNumber(row.retries),
    lastError: toText(row.last_error) ?? undefined,
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

/**
 * A claimed record whose value is `undefined` until it is read by id (see `ClaimSql`). `id` is
 * still the row id; `toClaim` gives messages their public ids.
 */
export type ClaimedRecord = Omit<MessageRecord, "value"> & { value: Uint8Array<ArrayBuffer> | undefined };

/**
 * The records of a claim's read (one row: `records` JSON, `bytes` the values of at most
 * `inlined` bytes end to end; larger ones are left `undefined`). Each value is copied out, so a
 * message never exposes (or keeps alive) its batch's buffer.
 */
export function toRecords(result: ResultSet, inlined: number): ClaimedRecord[] {
  const row = result.rows[0];
  const records = toText(row?.records);
  if (records === null) return [];
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
      headers: storedHeaders(headers),
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

/**
 * The schema version, id namespace and legacy id boundary a version query read (version 0:
 * never migrated).
 */
export function versionOf(result: ResultSet): {
  version: number;
  namespace: string | null;
  legacyMax: bigint;
} {
  const row = result.rows[0];
  if (row === undefined) return { version: 0, namespace: null, legacyMax: 0n };
  const legacy = row.legacy_max_id;
  return {
    version: toNumber(row.version),
    namespace: toText(row.id_namespace),
    // Whatever the client's intMode made of it (number, bigint or string).
    legacyMax:
      typeof legacy === "bigint" || (typeof legacy === "number" && Number.isInteger(legacy))
        ? BigInt(legacy)
        : typeof legacy === "string" && /^[0-9]{1,19}$/.test(legacy)
          ? BigInt(legacy)
          : 0n,
  };
}
