/**
 * Cloudflare D1's limits that the store relies on, and the checks that keep its statements
 * inside them.
 *
 * Source: https://developers.cloudflare.com/d1/platform/limits/ (last updated 2026-04-21):
 * - maximum string, BLOB or table row size: 2,000,000 bytes;
 * - maximum SQL statement length: 100,000 bytes;
 * - maximum bound parameters per query: 100; maximum arguments per SQL function: 32;
 * - maximum SQL query duration: 30 s; maximum query result size: 50 MB;
 * - queries per Worker invocation: 1,000 (Workers Paid) / 50 (Free). A relay pass is one
 *   batch call of 2 to 7 statements (more only when a mark is split, see {@link MARK_CHUNK}),
 *   a claim of large values one more query per {@link VALUE_READ_CHUNK} of them; the page does
 *   not say whether a batch counts once or per statement.
 *
 * How the store stays inside them: its statements are fixed text of a few kilobytes at most
 * (the longest, a claim, is under 2 KB) with at most 4 bound parameters (id lists and
 * per-message updates travel as ONE JSON parameter); a message whose row would exceed the row
 * size is refused before anything is written; marks are split so that no JSON parameter
 * approaches the string limit; a claim carries small values in its one-row read and reads
 * larger ones by id afterwards, and halves its batch when a read still comes out too big.
 *
 * @module
 */
import { type PreparedMessage, ValidationError } from "../../mod.ts";

/** D1's maximum string, BLOB or row size, in bytes. */
export const MAX_ROW_BYTES = 2_000_000;

/**
 * Room kept in a row for everything the store writes into it after the insert, at its worst: a
 * last error of 2,000 UTF-16 code units (`MAX_ERROR_LENGTH`) at 3 bytes each in UTF-8 (6,000;
 * a surrogate pair is 4 bytes for 2 units), a claim token (a 36-byte UUID), the 6 integer
 * columns at 8 bytes each (48; the id is the rowid, stored apart) and the record header (a
 * size and 12 serial types, at most 9 bytes each: 117). 6,201 bytes, rounded up: a message is
 * refused when its key, value and headers need more than `MAX_ROW_BYTES - ROW_OVERHEAD` bytes,
 * so no later mark can make its row exceed D1's row size (`SQLITE_TOOBIG`).
 */
export const ROW_OVERHEAD = 8192;

/**
 * Most messages a mark statement names. A retry entry holds at most a 2,000-code-unit error
 * escaped as JSON (at most 6 bytes per unit, `\u0001`) plus its id and delay: under 12.1 KB,
 * so 100 of them stay under 1.3 MB, inside the 2 MB string limit.
 */
export const MARK_CHUNK = 100;

/**
 * Most large values (those a claim's read does not carry) read in one query. D1 returns a BLOB
 * as a JSON array of byte values, up to 4 characters a byte: 5 values of at most 2 MB stay
 * under 40 MB, inside the 50 MB result limit.
 */
export const VALUE_READ_CHUNK = 5;

/**
 * The largest value a claim's one-row read carries, for a batch of `batchSize`: the values it
 * carries together stay under 1 MB (half the string limit, leaving the other half to the
 * read's JSON of keys, headers and errors). Larger values are read by id after the claim.
 */
export function inlinedValueBytes(batchSize: number): number {
  return Math.floor(1_000_000 / batchSize);
}

/**
 * Room a claim's one-row read needs for one message besides its key and headers: the id,
 * numbers and JSON framing, and a last error of at most 2,000 code units escaped as JSON (at
 * most 6 bytes each).
 */
const CLAIM_ENTRY_OVERHEAD = 16_384;

const encoder = new TextEncoder();
const utf8Bytes = (text: string) => encoder.encode(text).byteLength;

/**
 * Throws a `ValidationError` (code `INVALID_MESSAGE`) when `message` does not fit D1: its row
 * would exceed the row size, or its key and headers, which a claim's read carries escaped as
 * JSON strings (a `"` or `\` doubles, a control character takes 6 bytes), would exceed the
 * string limit even in a claim of one message. Such a message could never be claimed, and
 * would hold back every claim behind it; nothing is written then.
 */
export function checkMessageSize(message: PreparedMessage, headersJson: string): void {
  const text = utf8Bytes(message.key) + utf8Bytes(headersJson);
  const bytes = text + message.value.byteLength;
  if (bytes > MAX_ROW_BYTES - ROW_OVERHEAD) {
    throw new ValidationError(
      `message too large for D1: key, value and headers take ${bytes} bytes, D1 stores at most ${MAX_ROW_BYTES} bytes per row (${MAX_ROW_BYTES - ROW_OVERHEAD} for them); keep large payloads in R2 and send a reference`,
      { code: "INVALID_MESSAGE" },
    );
  }
  // Escaping grows text at most 6 times: below that, the escaped form surely fits.
  if (text * 6 + CLAIM_ENTRY_OVERHEAD <= MAX_ROW_BYTES) return;
  const escaped = utf8Bytes(JSON.stringify(message.key)) + utf8Bytes(JSON.stringify(headersJson));
  if (escaped + CLAIM_ENTRY_OVERHEAD > MAX_ROW_BYTES) {
    throw new ValidationError(
      `message too large for D1: its key and headers take ${escaped} bytes escaped as JSON in a claim's read, which D1 holds in one value of at most ${MAX_ROW_BYTES} bytes (${MAX_ROW_BYTES - CLAIM_ENTRY_OVERHEAD} for them); shorten the headers or the key`,
      { code: "INVALID_MESSAGE" },
    );
  }
}

/**
 * Most bytes of stored rows read back in one query (a listing of dead messages): as much as a
 * claim's {@link VALUE_READ_CHUNK} largest values, so a result stays under 40 MB as D1's JSON
 * arrays of byte values (the 50 MB result limit) and a Worker's memory holds it.
 */
export const READ_GROUP_BYTES = VALUE_READ_CHUNK * MAX_ROW_BYTES;

/** `items` in consecutive groups of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const groups: T[][] = [];
  for (let i = 0; i < items.length; i += size) groups.push(items.slice(i, i + size));
  return groups;
}
