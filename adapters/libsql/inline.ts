/**
 * Statements with their arguments written into the SQL, for `executeMultiple`. On local files
 * `@libsql/client` spends about 20 µs of JavaScript and native calls on every `execute` (it
 * prepares, probes and wraps each statement anew) and about 3 µs on `executeMultiple` of the
 * same statement; a relay pass runs several statements whose results it does not need.
 *
 * Only values that cannot change the meaning of the SQL are written in: safe integers, and
 * strings of letters, digits and `-_.:,[]` (claim tokens, JSON arrays of ids). Anything else
 * leaves the statement to run prepared, with its arguments bound.
 *
 * @module
 */
import type { InArgs, InStatement } from "@libsql/client";

const PLAIN_STRING = /^[A-Za-z0-9_.:,[\]-]*$/;
// Statement templates number their parameters (?1, ?2, ...) and hold no "?" in their literals.
const PARAMETER = /\?(\d+)/g;

/** `value` as a SQL literal, or undefined when it is not one of the plain values above. */
export function sqlLiteral(value: unknown): string | undefined {
  // Parenthesized when negative: written after a minus sign, "-5" would start a comment.
  if (typeof value === "number") {
    return Number.isSafeInteger(value) ? (value < 0 ? `(${value})` : String(value)) : undefined;
  }
  if (typeof value === "string") return PLAIN_STRING.test(value) ? `'${value}'` : undefined;
  return undefined;
}

/**
 * `statement`'s SQL with each `?N` replaced by the literal of argument N, or undefined when an
 * argument is not plain (or is missing, or named).
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
