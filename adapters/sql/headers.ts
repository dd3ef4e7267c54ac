/**
 * Reading a stored headers column, shared by the SQL stores. Internal: no subpath export.
 *
 * @module
 */

/**
 * The headers of a stored row: a JSON object of strings, as text (both stores read the column as
 * text; a hand-edited SQLite row may hold NULL). Anything else (a hand-edited row) reads as no
 * headers rather than failing the claim, which would hold up every message behind it; non-string
 * values are left out.
 */
export function storedHeaders(value: unknown): Record<string, string> {
  let parsed: unknown = value;
  if (typeof value === "string") {
    try {
      parsed = JSON.parse(value);
    } catch {
      return {};
    }
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return {};
  // fromEntries defines own properties: a header named "__proto__" stays a header.
  return Object.fromEntries(Object.entries(parsed).filter(([, v]) => typeof v === "string"));
}
