/**
 * Turning D1 failures into `StoreError`s.
 *
 * @module
 */
import { OutboxError, StoreError } from "../../mod.ts";

// Failures Cloudflare documents as transient (https://developers.cloudflare.com/d1/observability/debug-d1/):
// the statement (or batch, all or nothing) did not run and a later attempt may succeed.
const TRANSIENT =
  /Network connection lost|transient issue|overloaded|reset because its code was updated|storage caused object to be reset|Internal error|storage operation exceeded timeout|Cannot resolve D1 DB/i;
const BUSY = /SQLITE_BUSY|database is locked|overloaded/i;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether `error` (or the D1 error a `StoreError` wraps) is `SQLITE_TOOBIG`. */
export function isTooBig(error: unknown): boolean {
  const cause = error instanceof OutboxError ? error.cause : error;
  return /SQLITE_TOOBIG|string or blob too big/i.test(messageOf(cause));
}

/**
 * `error` as an {@link OutboxError}: D1's transient failures become a retryable `StoreError`
 * (code `STORE_BUSY` when the database is busy or overloaded), anything else a non-retryable
 * `STORE_ERROR`. The D1 error stays as `cause`.
 */
export function toStoreError(error: unknown, doing: string): OutboxError {
  if (error instanceof OutboxError) return error;
  const detail = messageOf(error);
  const hint = /no such table/i.test(detail) ? " (did you run `await store.migrate()`?)" : "";
  if (BUSY.test(detail)) {
    return new StoreError(
      `D1 database busy while ${doing}: ${detail}; the next pass retries, nothing is lost`,
      {
        retryable: true,
        code: "STORE_BUSY",
        cause: error,
      },
    );
  }
  return new StoreError(`D1 failed while ${doing}: ${detail}${hint}`, {
    retryable: TRANSIENT.test(detail),
    code: "STORE_ERROR",
    cause: error,
  });
}
