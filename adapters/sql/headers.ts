/**
 * Reading a stored headers column, shared by the SQL stores. Internal: no subpath export.
 *
 * @module
 */

/**
 * The headers of a stored row: a JSON object of strings, as text (libSQL) or already parsed
 * (PostgreSQL `jsonb`). Anything else (a hand-edited row) reads as no headers rather than
 * failing the claim, which would hold up every message behind it; non-string values are left out.
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
  const headers: Record<string, string> = {};
  if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
    for (const [name, v] of Object.entries(parsed)) if (typeof v === "string") headers[name] = v;
  }
  return headers;
}
