/**
 * Statements with their arguments written into the SQL, for `executeMultiple`. On local files
 * `@libsql/client` spends about 20 µs of JavaScript and native calls on every `execute` (it
 * prepares, probes and wraps each statement anew) and about 3 µs on `executeMultiple` of the
 * same statement; a relay pass runs several statements whose results it does not need, and an
 * application's transaction may add hundreds of messages.
 *
 * Every literal written in stands for exactly the value it replaces, and nothing in it can end
 * it early: safe integers; text as a quoted string with its quotes doubled (SQLite's string
 * literals know no other escape), when it is well-formed UTF-16 (so that its UTF-8 form is
 * exact) and holds no NUL (where the SQL text would end); small byte arrays as `X'...'`. Any
 * other argument leaves the statement to run prepared, with its arguments bound.
 *
 * @module
 */
import type { InArgs, InStatement } from "@libsql/client";
import { wellFormedText } from "../../mod.ts";

/**
 * Byte arrays up to this length are written in as hex. SQLite reads a hex literal more slowly
 * than it binds a blob: measured on a local file, a 500-row transaction's INSERTs of 256 B
 * values took 12 µs per row written in against 29 µs prepared, 25 against 34 at 1 KiB, and
 * 60 against 35 at 4 KiB.
 */
export const MAX_INLINE_BYTES = 1024;

/**
 * Text up to this many UTF-16 code units is written in. Claims' and marks' JSON lists of ids
 * stay well below it; the bound keeps doubling the quotes of some huge text from needing
 * several times its size in memory.
 */
export const MAX_INLINE_TEXT = 1 << 20;

// Statement templates number their parameters (?1, ?2, ...) and hold no "?" in their literals.
const PARAMETER = /\?(\d+)/g;
const QUOTE = /'/g;
const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");
const ascii = new TextDecoder();

/** `value` as a SQL literal, or undefined when it cannot be written in exactly (see above). */
export function sqlLiteral(value: unknown): string | undefined {
  // Parenthesized when negative: written after a minus sign, "-5" would start a comment.
  if (typeof value === "number") {
    return Number.isSafeInteger(value) ? (value < 0 ? `(${value})` : String(value)) : undefined;
  }
  if (typeof value === "string") {
    if (value.length > MAX_INLINE_TEXT || value.includes("\0") || wellFormedText(value) !== value) {
      return undefined;
    }
    return `'${value.replace(QUOTE, "''")}'`;
  }
  // Plain Uint8Arrays only: a subclass may answer `byteLength` or `length` differently from
  // what the driver would bind.
  if (isPlainBytes(value) && value.byteLength <= MAX_INLINE_BYTES) return `X'${hex(value)}'`;
  return undefined;
}

function isPlainBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && Object.getPrototypeOf(value) === Uint8Array.prototype;
}

function hex(bytes: Uint8Array): string {
  const digits = new Uint8Array(bytes.byteLength * 2);
  for (let i = 0; i < bytes.byteLength; i++) {
    const byte = bytes[i] as number;
    digits[2 * i] = HEX_DIGITS[byte >> 4] as number;
    digits[2 * i + 1] = HEX_DIGITS[byte & 15] as number;
  }
  return ascii.decode(digits);
}

/**
 * `statement`'s SQL with each `?N` replaced by the literal of argument N, or undefined when an
 * argument cannot be written in (or is missing, or named).
 */
export function inlineStatement(statement: InStatement): string | undefined {
  if (typeof statement === "string") return statement;
  const args: InArgs = statement.args ?? [];
  if (!Array.isArray(args)) return undefined;
  const literals = args.map(sqlLiteral);
  let complete = true;
  const sql = statement.sql.replace(PARAMETER, (_, n: string) => {
    const literal = literals[Number(n) - 1];
    if (literal === undefined) complete = false;
    return literal ?? "NULL";
  });
  return complete ? sql : undefined;
}
