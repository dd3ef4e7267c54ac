/**
 * Turning libSQL failures into `StoreError`s, and retrying the store's own statements while
 * the database is busy.
 *
 * @module
 */
import { OutboxError, StoreError } from "../../mod.ts";

// Lock contention: another connection holds the write lock (BUSY, including BUSY_SNAPSHOT and
// BUSY_RECOVERY), a shared-cache table lock (LOCKED), or, on a single-connection client
// (`:memory:`), an open interactive transaction holding the only connection.
// Typed `unknown`: a code of any type can be looked up (only these strings are in them).
const BUSY_CODES: ReadonlySet<unknown> = new Set(["SQLITE_BUSY", "SQLITE_LOCKED", "TRANSACTION_ACTIVE"]);
// Transport failures of remote (Turso/sqld) clients: the statement may be retried later.
const TRANSIENT_CODES: ReadonlySet<unknown> = new Set([
  "HRANA_WEBSOCKET_ERROR",
  "HRANA_CLOSED_ERROR",
  "SERVER_ERROR",
  "STREAM_EXPIRED",
]);

interface LibsqlLike {
  code?: unknown;
  extendedCode?: unknown;
  rawCode?: unknown;
  message?: unknown;
}

/** Whether `error` is a libSQL busy/locked condition that a later attempt gets past. */
export function isBusy(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, extendedCode, rawCode } = error as LibsqlLike;
  if (BUSY_CODES.has(code)) return true;
  if (typeof extendedCode === "string" && /^SQLITE_(BUSY|LOCKED)/.test(extendedCode)) return true;
  // Base result codes 5 (BUSY) and 6 (LOCKED); extended codes keep them in the low byte.
  return typeof rawCode === "number" && ((rawCode & 0xff) === 5 || (rawCode & 0xff) === 6);
}

/**
 * Whether `error` (or the libSQL error a `StoreError` wraps) is `SQLITE_TOOBIG`: a string or
 * blob over SQLite's length limit (1e9 bytes unless the build says otherwise).
 */
export function isTooBig(error: unknown): boolean {
  const cause = (error instanceof OutboxError ? error.cause : error) as LibsqlLike | null | undefined;
  return cause?.code === "SQLITE_TOOBIG" || cause?.extendedCode === "SQLITE_TOOBIG" || cause?.rawCode === 18;
}

/**
 * `error` as an {@link OutboxError}: busy/locked conditions become a retryable `StoreError`
 * (code `STORE_BUSY`), dropped remote connections a retryable `STORE_ERROR`, anything else a
 * non-retryable `STORE_ERROR`. The libSQL error stays as `cause`.
 */
export function toStoreError(error: unknown, doing: string): OutboxError {
  if (error instanceof OutboxError) return error;
  const e = (typeof error === "object" && error !== null ? error : {}) as LibsqlLike;
  const detail = typeof e.message === "string" ? e.message : String(error);
  const code = typeof e.extendedCode === "string" ? e.extendedCode : typeof e.code === "string" ? e.code : "";
  if (isBusy(error)) {
    return new StoreError(
      `libSQL database busy or locked while ${doing} (${code || "busy"}): ${detail}; the next pass retries, nothing is lost`,
      { retryable: true, code: "STORE_BUSY", cause: error },
    );
  }
  const hint = /no such table/i.test(detail) ? " (did you run `await store.migrate()`?)" : "";
  return new StoreError(`libSQL failed while ${doing}${code ? ` (${code})` : ""}: ${detail}${hint}`, {
    retryable: TRANSIENT_CODES.has(e.code),
    code: "STORE_ERROR",
    cause: error,
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt`, trying again while it fails busy until `busyTimeout` ms have passed, then
 * throws the failure as a `StoreError`. Only for single autocommit statements or whole
 * batches: a busy statement did nothing, so running it again is safe. Waiting here rather
 * than in SQLite's busy handler keeps the event loop running (the native driver blocks while
 * it waits) and covers every connection of the client's pool.
 */
export async function retryBusy<R>(
  busyTimeout: number,
  doing: string,
  attempt: () => Promise<R>,
): Promise<R> {
  const deadline = Date.now() + busyTimeout;
  // Bounded: each failed round waits >= 2 ms and the loop ends at the deadline.
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    try {
      return await attempt();
    } catch (error) {
      const left = deadline - Date.now();
      if (!isBusy(error) || left <= 0) throw toStoreError(error, doing);
      await sleep(Math.min(left, wait + Math.random() * wait));
    }
  }
}
